package publish

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"vigie/controlplane/store"
	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/tstest"
)

// readCounter is the real store with its section reads counted, and one
// section's bytes optionally damaged on the way out (a corrupt row).
type readCounter struct {
	store.Store
	sections atomic.Int64
	damage   atomic.Pointer[[32]byte]
}

func (r *readCounter) Section(ctx context.Context, hash [32]byte) ([]byte, error) {
	r.sections.Add(1)
	data, err := r.Store.Section(ctx, hash)
	if d := r.damage.Load(); err == nil && d != nil && *d == hash {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	return data, err
}

// changedSections lists the sections of serial that serial-1 lacks.
func changedSections(t *testing.T, st store.Store, serial uint64) (changed [][32]byte, total int) {
	t.Helper()
	ctx := context.Background()
	prev, err := st.Version(ctx, serial-1)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := st.Version(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	_, ps, _ := bundle.ReadHeader(prev.Manifest, nil)
	_, cs, _ := bundle.ReadHeader(cur.Manifest, nil)
	had := map[[32]byte]bool{}
	for _, s := range ps {
		had[s.Hash] = true
	}
	for _, s := range cs {
		if !had[s.Hash] {
			changed = append(changed, s.Hash)
		}
	}
	return changed, len(cs)
}

// A follower replica told of another's publication reads the new version's
// manifest and only the sections it does not hold, wakes its edges with
// the same manifest and delta the publisher serves, and joins the whole
// bundle from memory only when asked, byte-identical to the publisher's.
func TestFollowerReadsOnlyChangedSections(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.p.Publish(ctx, rssi, "première version", false); err != nil {
		t.Fatal(err)
	}
	rc := &readCounter{Store: f.st}
	follower, err := New(ctx, rc, Config{DataDir: f.dir, Key: f.key, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	if follower.Head().Serial != 1 {
		t.Fatalf("follower starts at %d", follower.Head().Serial)
	}

	woke := make(chan *Head, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		woke <- follower.Wait(wctx, 1)
	}()
	tstest.Eventually(t, 10*time.Second, func() bool { return follower.Waiting() != 0 }, "the long-poll never waited")
	f.addDomain(t, "academie-bloque", "nouveau-site.example")
	f.now = f.now.Add(time.Minute)
	if _, err := f.p.Publish(ctx, rssi, "bloque un site", false); err != nil {
		t.Fatal(err)
	}
	changed, total := changedSections(t, f.st, 2)
	if len(changed) == 0 || len(changed) >= total {
		t.Fatalf("a one-domain change touches %d of %d sections: this test tests nothing", len(changed), total)
	}

	rc.sections.Store(0)
	if err := follower.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	h := <-woke
	if h == nil || h.Serial != 2 {
		t.Fatalf("the follower's long-poll woke with %+v", h)
	}
	if got := rc.sections.Load(); got != int64(len(changed)) {
		t.Fatalf("the follower read %d sections to wake its edges, want the %d changed of %d", got, len(changed), total)
	}
	lead := f.p.Head()
	if !bytes.Equal(h.Manifest.Raw, lead.Manifest.Raw) || h.Hash != lead.Hash {
		t.Fatal("the follower serves another manifest than the publisher's")
	}
	if h.Delta == nil || lead.Delta == nil || h.DeltaFrom != 1 || !bytes.Equal(h.Delta.Raw, lead.Delta.Raw) {
		t.Fatal("the follower's delta from serial 1 differs from the publisher's")
	}
	for _, hash := range changed {
		b, err := follower.Section(ctx, hash)
		if err != nil || b != h.sections[hash] {
			t.Fatalf("changed section %x not served from memory: %v", hash[:8], err)
		}
	}

	// The whole bundle, on demand: joined from memory, once, identical.
	b, err := follower.Bundle(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.p.Bundle(ctx, 2)
	if !bytes.Equal(b.Raw, want.Raw) || b.ETag != want.ETag {
		t.Fatal("the follower's joined bundle differs from the publisher's")
	}
	if again, _ := follower.Bundle(ctx, 2); again != b {
		t.Fatal("the bundle was joined twice")
	}
	if got := rc.sections.Load(); got != int64(len(changed)) {
		t.Fatalf("joining the bundle read %d more sections from the store", got-int64(len(changed)))
	}
	if _, hdr, err := rules.DecodeBundle(b.Raw, f.p.PublicKey()); err != nil || hdr.Serial != 2 {
		t.Fatalf("the follower's bundle does not verify: %v", err)
	}

	// Nothing new: no section read.
	if err := follower.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rc.sections.Load(); got != int64(len(changed)) {
		t.Fatalf("a refresh with nothing new read %d sections", got-int64(len(changed)))
	}

	// A changed section whose stored bytes do not match the manifest is
	// refused: the follower keeps serving serial 2 and edges stay asleep,
	// until the store answers right.
	f.addDomain(t, "academie-bloque", "autre-site.example")
	f.now = f.now.Add(time.Minute)
	if _, err := f.p.Publish(ctx, rssi, "bloque un autre site", false); err != nil {
		t.Fatal(err)
	}
	changed3, _ := changedSections(t, f.st, 3)
	rc.damage.Store(&changed3[0])
	if err := follower.Refresh(ctx); !errors.Is(err, bundle.ErrHash) {
		t.Fatalf("refresh over a damaged section: %v, want ErrHash", err)
	}
	if s := follower.Head().Serial; s != 2 {
		t.Fatalf("after a damaged section the follower serves %d", s)
	}
	rc.damage.Store(nil)
	if err := follower.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if s := follower.Head().Serial; s != 3 {
		t.Fatalf("after the store healed the follower serves %d", s)
	}
}
