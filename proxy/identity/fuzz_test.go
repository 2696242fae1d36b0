package identity

import (
	"bytes"
	"os"
	"testing"
)

func fuzzLeases(f *testing.F, format, seedFile string) {
	if b, err := os.ReadFile(seedFile); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		leases, err := ParseLeases(format, "leases", bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, l := range leases {
			if !l.Addr.IsValid() || !isMAC(l.MAC) {
				t.Fatalf("accepted a lease without address or MAC: %+v", l)
			}
		}
	})
}

func FuzzISCLeases(f *testing.F)     { fuzzLeases(f, FormatISC, "testdata/dhcpd.leases") }
func FuzzKeaLeases(f *testing.F)     { fuzzLeases(f, FormatKea, "testdata/kea-leases4.csv") }
func FuzzDnsmasqLeases(f *testing.F) { fuzzLeases(f, FormatDnsmasq, "testdata/dnsmasq.leases") }
