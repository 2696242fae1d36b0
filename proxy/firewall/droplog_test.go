package firewall

import (
	"strings"
	"testing"

	plan "vigie/rules/firewall"
)

// TestDropLogGroup: with DropLogGroup set, every counted drop rule also
// logs to the NFLOG group with its counter as prefix, in the text a
// person reviews and in what the kernel holds (nft lists the same table
// for both, and Verify reads every rule back).
func TestDropLogGroup(t *testing.T) {
	tc := goldenCases(t)[0]
	cfg := tc.cfg
	cfg.DropLogGroup = 7
	rs, err := plan.Build(tc.src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := plan.Render(&text, rs); err != nil {
		t.Fatal(err)
	}
	drops, logged := 0, 0
	for _, line := range strings.Split(text.String(), "\n") {
		if strings.Contains(line, "counter name") && strings.HasSuffix(strings.TrimSpace(line), "drop") {
			drops++
			if strings.Contains(line, " group 7 ") {
				logged++
			}
		}
	}
	if drops == 0 || logged != drops {
		t.Fatalf("%d of %d counted drops log to the group:\n%s", logged, drops, text.String())
	}
	requireRoot(t)
	viaNetlink, viaText := newNS(t), newNS(t)
	fw, err := New(Options{NetNS: viaNetlink.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if err := fw.Verify(rs); err != nil {
		t.Fatal(err)
	}
	nft(t, viaText, text.String(), "-f", "-")
	if got, want := listing(t, viaNetlink), listing(t, viaText); got != want {
		t.Fatalf("netlink and nft -f disagree:\nnetlink: %s\nnft -f:  %s", got, want)
	}
}
