package identity

import (
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t13 = time.Date(2026, 3, 12, 13, 0, 0, 0, time.UTC)

func TestTableHistory(t *testing.T) {
	tb := NewTable()
	a := netip.MustParseAddr("10.10.0.10")
	// A neighbour entry, then a RADIUS session, then another device on
	// the same address after the session ended.
	tb.Put(Binding{Addr: a, MAC: "02-00-5E-00-00-10", From: t13, Source: FromNeighbour})
	tb.Put(Binding{Addr: a, MAC: "02:00:5e:00:00:10", User: "eleve.dupont", From: t13.Add(time.Minute), Source: FromRADIUS, Key: "nas/1"})
	tb.Close(a, FromRADIUS, "nas/1", t13.Add(time.Hour))
	tb.Put(Binding{Addr: a, MAC: "02:00:5e:00:00:99", From: t13.Add(2 * time.Hour), Source: FromNeighbour})
	for _, tc := range []struct {
		at        time.Time
		mac, user string
	}{
		{t13.Add(-time.Hour), "", ""},
		{t13.Add(30 * time.Second), "02:00:5e:00:00:10", ""},
		{t13.Add(30 * time.Minute), "02:00:5e:00:00:10", "eleve.dupont"},
		{t13.Add(90 * time.Minute), "02:00:5e:00:00:10", ""},
		{t13.Add(3 * time.Hour), "02:00:5e:00:00:99", ""},
	} {
		mac, user := tb.Lookup(a, tc.at)
		if mac != tc.mac || user != tc.user {
			t.Errorf("at %s: %q %q, want %q %q", tc.at.Sub(t13), mac, user, tc.mac, tc.user)
		}
	}
	tb.Prune(t13.Add(48 * time.Hour))
	if mac, _ := tb.Lookup(a, t13.Add(30*time.Minute)); mac != "" {
		t.Errorf("pruned history still answers %q", mac)
	}
	if mac, _ := tb.Lookup(a, t13.Add(48*time.Hour)); mac != "02:00:5e:00:00:99" {
		t.Errorf("the open neighbour binding was pruned (%q)", mac)
	}
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"02-00-5E-00-01-02":         "02:00:5e:00:01:02",
		"0200.5e00.0102":            "02:00:5e:00:01:02",
		"02005E000102":              "02:00:5e:00:01:02",
		"02-00-5E-00-01-02:eduroam": "02:00:5e:00:01:02",
		"pas une adresse":           "pas une adresse",
	} {
		if got := NormalizeMAC(in); got != want {
			t.Errorf("NormalizeMAC(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLeaseFiles(t *testing.T) {
	ap := netip.MustParseAddr
	for _, tc := range []struct {
		format, file string
		want         []Lease
	}{
		{FormatISC, "testdata/dhcpd.leases", []Lease{
			{Addr: ap("10.10.0.21"), MAC: "02:00:5e:00:00:21", Start: t13, End: t13.Add(2 * time.Hour)},
			{Addr: ap("10.10.0.23"), MAC: "02:00:5e:00:00:23", Start: t13},
		}},
		{FormatKea, "testdata/kea-leases4.csv", []Lease{
			{Addr: ap("10.10.0.31"), MAC: "02:00:5e:00:00:31", Start: t13, End: t13.Add(time.Hour)},
		}},
		{FormatDnsmasq, "testdata/dnsmasq.leases", []Lease{
			{Addr: ap("10.10.0.41"), MAC: "02:00:5e:00:00:41", End: t13.Add(time.Hour)},
			{Addr: ap("10.10.0.42"), MAC: "02:00:5e:00:00:42"},
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseLeases(tc.format, tc.file, f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseLeasesErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		format, text, want string
	}{
		{FormatDnsmasq, "1773324000 02:00:5e:00:00:41 10.10.0.41 x *\nabc 02:00:5e:00:00:41 10.10.0.41\n", "leases:2: bad expiry"},
		{FormatDnsmasq, "1773324000 zz 10.10.0.41 x *\n", "leases:1: bad MAC"},
		{FormatISC, "lease 10.10.0.1 {\n  starts 4 2026/13/12 13:00:00;\n}\n", "leases:2: bad time"},
		{FormatISC, "lease 10.10.0.1 {\n  binding state active;\n", "lease block not closed"},
		{FormatISC, "lease nope {\n}\n", "leases:1: bad lease address"},
		{FormatKea, "address,hwaddr\n", "no \"valid_lifetime\" column"},
		{FormatKea, "address,hwaddr,valid_lifetime,expire\n10.10.0.1,02:00:5e:00:00:01,x,1\n", "leases:2: bad expire"},
		{"squid", "", "unknown lease format"},
	} {
		_, err := ParseLeases(tc.format, "leases", strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v, want an error with %q", tc.format, tc.text, err, tc.want)
		}
	}
}
