package who

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/netip"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/journaltest/sealed"
)

const uai = "0671234X"

var (
	edgeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	day0    = time.Date(2026, 3, 12, 7, 0, 0, 0, time.UTC)
	at      = time.Date(2026, 3, 12, 13, 32, 5, 0, time.UTC)
)

// archiveOf seals records into real batches and ingests them.
func archiveOf(t testing.TB, streams map[journal.Stream][]journal.Record) *archive.SQLite {
	t.Helper()
	batches := map[journal.Stream][][]journal.Record{}
	for s, recs := range streams {
		batches[s] = [][]journal.Record{recs}
	}
	st, _ := sealed.Archive(t, sealed.Options{UAI: uai, Key: edgeKey, Now: day0.Add(48 * time.Hour)}, batches)
	return st
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// traffic is a morning of a school with the requisition's flow in it: a
// pupil's TCP flow to 8443 as 198.51.100.1:40123, an upstream flow of the
// proxy as 198.51.100.1:50000 serving another pupil, and their navigation.
func traffic() map[journal.Stream][]journal.Record {
	g := journaltest.New(3, uai, at.Add(-3*time.Minute))
	var conn, nav []journal.Record
	for g.Time().Before(at.Add(-time.Minute)) {
		r := g.Flow()
		if r.NAT.Port() == 40123 || r.NAT.Port() == 50000 {
			r.NAT = netip.AddrPortFrom(r.NAT.Addr(), 1000)
		}
		conn = append(conn, r)
		nav = append(nav, g.Next(journal.Navigation))
	}
	// The pupil's flow, live at the requisition's instant, journalled at
	// its end with its start time.
	conn = append(conn, journal.Record{Stream: journal.Connexions, Time: at.Add(-30 * time.Second), UAI: uai, Proto: "tcp",
		Client: ap("10.10.0.10:51000"), MAC: "02:00:5e:00:00:10", User: "eleve.dupont", NAT: ap("198.51.100.1:40123"),
		Dest: ap("203.0.113.80:8443"), Duration: 40 * time.Second, BytesIn: 900, BytesOut: 300, Verdict: "allow", Zone: "pedagogique"})
	nav = append(nav, journal.Record{Stream: journal.Navigation, Time: at.Add(-31 * time.Second), UAI: uai, Proto: "dns",
		Client: ap("10.10.0.10:40000"), MAC: "02:00:5e:00:00:10", User: "eleve.dupont", Host: "labo.exemple.fr", QType: "A", RCode: "NOERROR", Verdict: "allow"})
	// The proxy's record of another pupil's HTTPS connection, and the
	// proxy's upstream flow it used.
	conn = append(conn, journal.Record{Stream: journal.Connexions, Time: at.Add(-5 * time.Second), UAI: uai, Proto: "https",
		Client: ap("10.10.0.11:52000"), User: "eleve.martin", Dest: ap("203.0.113.9:443"), Duration: 10 * time.Second, Host: "www.exemple.fr", Verdict: "allow"})
	conn = append(conn, journal.Record{Stream: journal.Connexions, Time: at.Add(-4 * time.Second), UAI: uai, Proto: "tcp",
		Client: ap("198.51.100.1:50000"), NAT: ap("198.51.100.1:50000"), Dest: ap("203.0.113.9:443"), Duration: 8 * time.Second,
		Verdict: "allow", Zone: "edge", Link: "proxy"})
	nav = append(nav, journal.Record{Stream: journal.Navigation, Time: at.Add(-5 * time.Second), UAI: uai, Proto: "https",
		Client: ap("10.10.0.11:52000"), User: "eleve.martin", Host: "www.exemple.fr", Verdict: "allow"})
	for g.Time().Before(at.Add(3 * time.Minute)) {
		conn = append(conn, g.Flow())
	}
	for i := range conn {
		journal.Canonicalize(&conn[i])
	}
	for i := range nav {
		journal.Canonicalize(&nav[i])
	}
	return map[journal.Stream][]journal.Record{journal.Connexions: conn, journal.Navigation: nav}
}

func TestFind(t *testing.T) {
	st := archiveOf(t, traffic())
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		q          Query
		matches    int
		user, host string
		client     string
	}{
		{"pupil's flow", Query{Addr: netip.MustParseAddr("198.51.100.1"), Port: 40123, At: at}, 1, "eleve.dupont", "labo.exemple.fr", "10.10.0.10"},
		{"within the tolerance after the end", Query{Addr: netip.MustParseAddr("198.51.100.1"), Port: 40123, At: at.Add(11 * time.Second)}, 1, "eleve.dupont", "labo.exemple.fr", "10.10.0.10"},
		{"outside the tolerance", Query{Addr: netip.MustParseAddr("198.51.100.1"), Port: 40123, At: at.Add(13 * time.Second)}, 0, "", "", ""},
		{"proxy upstream", Query{Addr: netip.MustParseAddr("198.51.100.1"), Port: 50000, At: at}, 1, "eleve.martin", "www.exemple.fr", "10.10.0.11"},
		{"another school's address", Query{Addr: netip.MustParseAddr("203.0.113.200"), Port: 40123, At: at}, 0, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Schools = []string{uai, "0679999Z"}
			ans, err := Find(ctx, st, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ans.Matches) != tc.matches {
				t.Fatalf("%d matches, want %d: %+v", len(ans.Matches), tc.matches, ans.Matches)
			}
			if tc.matches == 0 {
				return
			}
			m := ans.Matches[0]
			if m.UAI != uai || m.Client().String() != tc.client {
				t.Fatalf("match %+v leads to %v", m, m.Client())
			}
			user := m.Flow.User
			if m.Flow.Zone == "edge" {
				user = m.Candidates[0].User
			}
			if user != tc.user {
				t.Fatalf("user %q, want %q", user, tc.user)
			}
			found := false
			for _, n := range m.Navigation {
				found = found || n.Host == tc.host
			}
			if !found {
				t.Fatalf("navigation %+v lacks %s", m.Navigation, tc.host)
			}
		})
	}
}
