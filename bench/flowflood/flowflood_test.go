package flowflood

import (
	"context"
	"os"
	"testing"
	"time"

	"vigie/tstest"
)

func TestMain(m *testing.M) {
	// The flood's senders are this binary, re-executed in the pupil's
	// namespace.
	if IsSender() {
		os.Exit(SenderMain())
	}
	os.Exit(m.Run())
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if tstest.InCI() {
			t.Fatal("CI must run the flood as root")
		}
		t.Skip("the flood needs root (network namespaces, raw sockets); CI runs it")
	}
}

func TestTuplesDistinct(t *testing.T) {
	seen := map[[2]uint16]bool{}
	for g := uint64(0); g < 200000; g++ {
		s, d := tuple(g)
		if s < 1024 || d == 0 {
			t.Fatalf("flow %d: ports %d → %d", g, s, d)
		}
		if seen[[2]uint16{s, d}] {
			t.Fatalf("flow %d repeats ports %d → %d", g, s, d)
		}
		seen[[2]uint16{s, d}] = true
	}
}

func TestShownEvents(t *testing.T) {
	for in, want := range map[string]int64{
		"conntrack v1.4.7 (conntrack-tools): 1234 flow events have been shown.\n": 1234,
		"WARNING: We have hit ENOBUFS! We are losing events.\n":                   -1,
		"": -1,
	} {
		if got := shownEvents(in); got != want {
			t.Errorf("shownEvents(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestFloodAccounted runs one slow step: every datagram becomes one flow
// in the gateway's table, and every flow is either seen by the recorder
// or declared lost by its socket's overrun, never missing silently.
func TestFloodAccounted(t *testing.T) {
	needRoot(t)
	tstest.RequireCommand(t, "conntrack", "conntrack")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Rates: []float64{2000}, Step: time.Second, Senders: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Steps[0]
	t.Logf("%+v", s)
	if s.Sent != 2000 || s.Created != s.Sent {
		t.Fatalf("%d datagrams sent, %d flows made: want 2000 of each", s.Sent, s.Created)
	}
	if s.Recorder != s.Created && s.Overruns == 0 {
		t.Fatalf("the recorder saw %d of %d flows and declared no overrun", s.Recorder, s.Created)
	}
	if s.Destroyed < s.Created && s.DestroyOverruns == 0 {
		t.Fatalf("the flush ended %d flows, the recorder saw %d destroys and declared no overrun", s.Created, s.Destroyed)
	}
}

// BenchmarkConntrackFloodSteps runs the whole ladder once, whatever b.N
// (run it with -benchtime 1x): the highest rate each listener took with
// nothing lost, and their CPU per flow there. Root only:
//
//	go test -run '^$' -bench ConntrackFloodSteps -benchtime 1x ./bench/flowflood/
//
// VIGIE_FLOOD_SHORT=1 runs three short steps.
func BenchmarkConntrackFloodSteps(b *testing.B) {
	needRoot(b)
	o := Options{Log: benchLog{b}}
	if os.Getenv("VIGIE_FLOOD_SHORT") != "" {
		o.Rates, o.Step = []float64{20000, 50000, 0}, time.Second
	}
	res, err := Run(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.RecorderBest, "recorder-lossless-flows/s")
	b.ReportMetric(res.PeerBest, "conntrack-E-lossless-flows/s")
	b.ReportMetric(res.GeneratorMax, "generator-max-flows/s")
	// µs of CPU per flow is ms of CPU per second at 1,000 flows/s.
	b.ReportMetric(res.RecorderNewCPU.Seconds()*1e6, "recorder-new-cpu-ms-per-s-per-1k-flows")
	b.ReportMetric(res.RecorderFlowCPU.Seconds()*1e6, "recorder-cpu-ms-per-s-per-1k-flows")
	b.ReportMetric(res.PeerCPU.Seconds()*1e6, "conntrack-E-cpu-ms-per-s-per-1k-flows")
	b.ReportMetric(res.SenderCPU.Seconds()*1e6, "kernel-path-cpu-ms-per-s-per-1k-flows")
	b.ReportMetric(res.TopRate, "top-step-flows/s")
	b.ReportMetric(res.TopRecorderShare, "top-step-recorder-seen-share")
	b.ReportMetric(res.TopPeerShare, "top-step-conntrack-E-seen-share")
	b.Logf("load average %s before, %s after; %s", res.LoadBefore, res.LoadAfter, res.ConntrackVersion)
}

type benchLog struct{ b *testing.B }

func (l benchLog) Write(p []byte) (int, error) { l.b.Log(string(p)); return len(p), nil }
