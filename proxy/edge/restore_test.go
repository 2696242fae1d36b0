package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/demo"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/segment"
)

// TestRestoredControlPlaneConverges is the restore scenario on real parts:
// back up the control plane, publish, ship, restore the backup, publish.
// The restored control plane flags the edge's version as unknown, never
// reuses its serial, the edge converges on the new version, and the
// archive ends with no gap: the edge ships again the records the backup
// had lost.
func TestRestoredControlPlaneConverges(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	upstream := syncUpstream(t)
	dnsAddr := syncFreePort(t)
	cfg := Config{
		UAI: demo.UAI, StateDir: t.TempDir(), PublicKey: cp.PublicKeyFile,
		ControlPlane: ControlPlaneConfig{URL: cp.URL, Token: cp.EdgeToken, PollTimeout: 3 * time.Second,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond},
		DNS:     DNSConfig{Listen: dnsAddr, Upstreams: []string{upstream}},
		Journal: JournalConfig{ShipInterval: 100 * time.Millisecond, SegmentRecords: 40, CommitInterval: time.Millisecond},
	}
	e, err := New(cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	nav := e.journal.(*segment.Journal).Log(journal.Navigation)
	traffic := func(tag string) {
		for i := 0; i < 100; i++ {
			syncResolves(t, dnsAddr, fmt.Sprintf("%s-%d.example.org", tag, i))
		}
	}
	// shipped waits until the archive acknowledged everything durable.
	shipped := func(what string) {
		t.Helper()
		var gaps struct {
			Gaps []archive.Gap `json:"gaps"`
		}
		cptest.Eventually(t, 20*time.Second, what, func() bool {
			cp.Call("GET", "/api/v1/logs/gaps?uai="+demo.UAI, nil, &gaps)
			return len(gaps.Gaps) == 0 && archivedThrough(t, cp) >= nav.Durable()
		})
	}
	status := func() map[string]any { return cp.EdgeStatus("monnet-1") }

	cptest.Eventually(t, 15*time.Second, "serial 1 applied", func() bool { return e.Generation().Serial() == 1 })
	traffic("avant")
	shipped("first traffic archived")

	backup := cp.Backup()
	lost := cp.Block("perdu-a-la-restauration.example")
	cptest.Eventually(t, 10*time.Second, "the publication applied", func() bool { return e.Generation().Serial() == lost })
	lostHash := e.Generation().Load().Hash
	traffic("apres-sauvegarde")
	shipped("traffic after the backup archived")
	beforeRestore := nav.Durable()

	cp.Restore(backup)
	// The edge keeps the version the restored control plane forgot, and
	// says so: version inconnue, not "up to date". The claim is the
	// edge's error, not its state (a control plane stores as applied
	// only what it published).
	cptest.Eventually(t, 15*time.Second, "the edge flagged version inconnue", func() bool {
		st := status()
		msg, _ := st["last_error"].(string)
		return st["unknown_version"] == true && st["up_to_date"] == false &&
			strings.Contains(msg, "version inconnue") && strings.Contains(msg, fmt.Sprint(lost))
	})
	var page struct {
		Items []map[string]any `json:"items"`
	}
	cp.Call("GET", "/api/v1/edges", nil, &page)
	if len(page.Items) != 1 || page.Items[0]["unknown_version"] != true {
		t.Fatalf("edges listing: %v", page.Items)
	}

	// Publish after the restore: the serial jumps past the edge's.
	next := cp.Block("apres-restauration.example")
	if next <= lost {
		t.Fatalf("the restored control plane published serial %d, reusing the edge's %d", next, lost)
	}
	cptest.Eventually(t, 15*time.Second, "the edge converged", func() bool {
		g := e.Generation().Load()
		st := status()
		return g.Serial == next && g.Hash != lostHash && st["up_to_date"] == true && st["unknown_version"] != true
	})

	// New traffic ships; the archive, which lost what was acknowledged
	// after the backup, asks for it and gets it again.
	traffic("apres-restauration")
	shipped("the archive refilled")
	cp.Stop()
	st, err := archive.OpenSQLite(filepath.Join(cp.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chains, err := st.Chains(context.Background(), demo.UAI)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if c.Stream != journal.Navigation {
			continue
		}
		n := uint64(0)
		st.Scan(context.Background(), archive.Query{UAI: demo.UAI, From: time.Unix(0, 0), To: time.Now().Add(time.Hour),
			Streams: []journal.Stream{journal.Navigation}}, func(archive.Chain, *archive.Stored) error { n++; return nil })
		if c.MaxSeq < beforeRestore || n != c.MaxSeq {
			t.Fatalf("archive holds %d records of navigation chain ending at %d (edge had %d before the restore)", n, c.MaxSeq, beforeRestore)
		}
	}
	if gaps, _ := st.Gaps(context.Background(), demo.UAI); len(gaps) != 0 {
		t.Fatalf("archive gaps after the refill: %+v", gaps)
	}
}

// archivedThrough is the end of the demo school's navigation chain in the
// control plane's archive.
func archivedThrough(t *testing.T, cp *cptest.CP) uint64 {
	st, err := archive.OpenSQLite(filepath.Join(cp.DataDir, "journal.db"))
	if err != nil {
		return 0
	}
	defer st.Close()
	chains, _ := st.Chains(context.Background(), demo.UAI)
	for _, c := range chains {
		if c.Stream == journal.Navigation {
			return c.MaxSeq
		}
	}
	return 0
}
