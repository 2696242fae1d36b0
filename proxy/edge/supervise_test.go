package edge

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSupervise: a listener that dies while the edge runs is reported on
// Failed and its gauge drops to 0; one stopped by Shutdown is not a death.
func TestSupervise(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		stopping bool
		wantDead bool
	}{
		{"accept fails", errors.New("accept tcp: too many open files"), false, true},
		{"listener closed under the edge", fmt.Errorf("serve: %w", net.ErrClosed), false, true},
		{"closed by shutdown", fmt.Errorf("serve: %w", net.ErrClosed), true, false},
		{"http server shut down", http.ErrServerClosed, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Edge{log: slog.New(slog.NewTextHandler(io.Discard, nil)), reg: prometheus.NewRegistry()}
			e.stopping.Store(tc.stopping)
			release := make(chan struct{})
			e.supervise("transparent_https", func() error { <-release; return tc.err })
			gauge := e.listenerUp().WithLabelValues("transparent_https")
			if v := testutil.ToFloat64(gauge); v != 1 {
				t.Fatalf("gauge %v while serving, want 1", v)
			}
			close(release)
			e.supervised.Wait() // the verdict on the stop is taken
			select {
			case err := <-e.Failed():
				if !tc.wantDead {
					t.Fatalf("an orderly stop was reported as a death: %v", err)
				}
				if v := testutil.ToFloat64(gauge); v != 0 {
					t.Errorf("gauge %v after the death, want 0", v)
				}
			default:
				if tc.wantDead {
					t.Fatal("a dead listener was not reported")
				}
				if v := testutil.ToFloat64(gauge); v != 1 {
					t.Errorf("gauge %v after an orderly stop, want 1", v)
				}
			}
		})
	}
}
