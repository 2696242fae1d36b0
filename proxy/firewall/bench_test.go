package firewall

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	plan "vigie/rules/firewall"

	"vigie/testlab/netns"
	"vigie/tstest"
)

// BenchmarkApply times replacing the table in a real kernel: Vigie's
// netlink batch with its read-back check, against the peer a technician
// would use, "nft -f" of the same rendered text (one process per apply).
// Run as root: go test -run '^$' -bench Apply ./proxy/firewall
func BenchmarkApply(b *testing.B) {
	tstest.RequireRoot(b)
	cases := []struct {
		name string
		src  plan.Source
	}{
		{"demo", loadSource(b, "demo", "0671234X")},
	}
	for _, n := range []int{1000, 10000} {
		src, _, _ := bigZone(n, n/10)
		cases = append(cases, struct {
			name string
			src  plan.Source
		}{fmt.Sprintf("zone-%d-prefixes", n+n/10), src})
	}
	for _, tc := range cases {
		rs, err := plan.Build(tc.src, testConfig)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"/netlink+verify", func(b *testing.B) {
			ns := benchNS(b)
			fw, err := New(Options{NetNS: ns.Fd()})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := fw.Apply(rs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rs.Rules()), "rules")
		})
		b.Run(tc.name+"/nft-f", func(b *testing.B) {
			if _, err := exec.LookPath("nft"); err != nil {
				b.Fatal(err)
			}
			ns := benchNS(b)
			var text strings.Builder
			plan.Render(&text, rs)
			for b.Loop() {
				cmd := ns.Command(context.Background(), "nft", "-f", "-")
				cmd.Stdin = strings.NewReader(text.String())
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}

func benchNS(b *testing.B) *netns.NS {
	ns, err := netns.Add(context.Background(), fmt.Sprintf("vfwb-%d-%d", os.Getpid(), nsSeq.Add(1)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Delete() })
	return ns
}
