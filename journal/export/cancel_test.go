package export

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"vigie/journal/archive"
	"vigie/tstest"
)

// cancellingStore is the real SQLite store, cancelling the export's
// context after a given number of scanned records.
type cancellingStore struct {
	archive.Store
	after  int64
	seen   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancellingStore) Scan(ctx context.Context, q archive.Query, fn func(archive.Chain, *archive.Stored) error) error {
	return c.Store.Scan(ctx, q, func(ch archive.Chain, r *archive.Stored) error {
		if c.seen.Add(1) == c.after {
			c.cancel()
		}
		return fn(ch, r)
	})
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct{ limit int }

var errDiskFull = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errDiskFull
	}
	f.limit -= len(p)
	return len(p), nil
}

// waitGoroutines waits (generously: the machine is shared) until no more
// goroutines run than before the export.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	if !tstest.WaitFor(20*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left, %d before the export:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
	}
}

func TestExportStopsCleanly(t *testing.T) {
	w := newWorld(t, 8000, 2, 3)
	req := baseRequest(day0, day0.Add(24*time.Hour))
	// A whole export first: the database's own goroutines are running.
	full, _ := export(t, w, req)
	for _, tc := range []struct {
		name   string
		after  int64 // cancel after this many records (0: before)
		out    io.Writer
		target error
	}{
		{"cancelled before", 0, io.Discard, context.Canceled},
		{"cancelled at the first record", 1, io.Discard, context.Canceled},
		{"cancelled with chunks in flight", 9000, io.Discard, context.Canceled},
		{"output fails in the data files", -1, &failingWriter{limit: len(full) / 2}, errDiskFull},
		{"output fails at the signature", -1, &failingWriter{limit: len(full) - 10}, errDiskFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.after == 0 {
				cancel()
			}
			st := &cancellingStore{Store: w.store, after: tc.after, cancel: cancel}
			tmp := t.TempDir()
			_, err := Write(ctx, tc.out, st, req, Options{Key: cpKey, Now: fixedNow, Academie: "Académie de Strasbourg", TempDir: tmp})
			if !errors.Is(err, tc.target) {
				t.Fatalf("Write: %v, want %v", err, tc.target)
			}
			waitGoroutines(t, base)
			left, _ := os.ReadDir(tmp)
			if len(left) != 0 {
				t.Fatalf("%d temporary files left", len(left))
			}
		})
	}
	// And the store still serves a whole export, byte for byte the same.
	again, _ := export(t, w, req)
	if !bytes.Equal(again, full) {
		t.Fatal("an export after the failed ones differs")
	}
}
