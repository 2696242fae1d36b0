// Package sealed fills test archives the way production does: records
// appended to a real edge journal (journal/segment), sealed into signed
// batches, and ingested by the control plane's archive (journal/archive).
// The tests of exports and searches start from one. It is apart from
// journaltest, whose generator the journal's own packages test with: they
// cannot import the archive back.
package sealed

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/segment"
)

// Options say whose journal it is.
type Options struct {
	UAI string
	// Key signs the batches; the archive takes it as the edge's key.
	Key ed25519.PrivateKey
	// Now is the archive's clock at ingest.
	Now time.Time
	// Chain, when set, fixes a stream's chain identity (at most 32 hex
	// digits), so that golden files stay the same from run to run.
	Chain func(journal.Stream) uint64
}

// Archive journals each stream's batches in order, sealing a batch after
// each, ingests every sealed batch into a new SQLite archive in a
// temporary directory, and returns it with its path. The archive is closed
// when t ends.
func Archive(t testing.TB, o Options, batches map[journal.Stream][][]journal.Record) (*archive.SQLite, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "archive.db")
	st, err := archive.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub := o.Key.Public().(ed25519.PublicKey)
	arch, err := archive.New(archive.Options{Store: st, Now: func() time.Time { return o.Now },
		EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) { return pub, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// In stream order, whatever the map's: the archive's rows, and so
	// the golden files, do not depend on the run.
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		bs, ok := batches[s]
		if !ok {
			continue
		}
		sdir := filepath.Join(dir, s.String())
		if o.Chain != nil {
			if err := os.MkdirAll(sdir, 0o750); err != nil {
				t.Fatal(err)
			}
			id := fmt.Appendf(nil, `{"uai":%q,"stream":%q,"chain":"%032x"}`, o.UAI, s, o.Chain(s))
			if err := os.WriteFile(filepath.Join(sdir, "chain.json"), id, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		l, err := segment.Open(segment.Options{Dir: sdir, UAI: o.UAI, Stream: s, Key: o.Key,
			CommitInterval: time.Millisecond, MinFreeBytes: -1, MaxPending: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			for i := range b {
				l.Append(&b[i])
			}
			if err := l.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		l.WaitSealed(ctx)
		segs, err := l.Sealed()
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range segs {
			data, err := os.ReadFile(sg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := arch.Ingest(ctx, data); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	}
	return st, path
}

// Put stores recs (canonicalized here) in st as records 1, 2… of a new
// chain named chain, with the rows journal/archive's Ingest makes, without
// an edge journal or signatures: for the tests of what reads an archive.
// The school and the stream are the first record's.
func Put(t testing.TB, st archive.Store, chain string, recs ...journal.Record) {
	t.Helper()
	ctx := context.Background()
	uai, s := recs[0].UAI, recs[0].Stream
	var id journal.ChainID
	copy(id[:], chain)
	c, _, err := st.Chain(ctx, archive.ChainKey{UAI: uai, Stream: s, ID: id}, true)
	if err != nil {
		t.Fatal(err)
	}
	link := journal.Genesis(uai, s, id)
	rows := make([]archive.Stored, 0, len(recs))
	for i, r := range recs {
		journal.Canonicalize(&r)
		p := journal.AppendRecord(nil, &r)
		seq := uint64(i + 1)
		link = journal.Link(link, seq, p)
		rows = append(rows, archive.Stored{Seq: seq, Time: r.Time, Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: p})
	}
	if _, err := st.Put(ctx, c, rows, archive.Gap{First: 1, Last: uint64(len(rows))}); err != nil {
		t.Fatal(err)
	}
}
