package httpbench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The closed-loop wrk runs keep 50 connections busy: each one sends its
// next request as soon as the previous answer arrives, so on a machine
// the proxy shares with wrk and the origin the latency they report is
// mostly 50 / throughput, a queue the benchmark itself builds. A school's
// traffic does not wait for the proxy: pupils' requests arrive at their
// own pace. The open-loop runs send requests on a fixed schedule at a
// given rate (helper -role load, the way wrk2 does, latency counted from
// each request's due time) and report the latency a request sees at that
// load, through the proxy and straight to the origin.

// OpenLoopSample is one fixed-rate run.
type OpenLoopSample struct {
	Rate int
	// Achieved is the rate of successful answers over the measured part.
	Achieved            float64
	Sent, OK, Errors    int64
	P50, P99, P999, Max time.Duration
	CPU                 time.Duration
}

// OpenLoopResult is one peer at one rate: medians over the paired runs.
type OpenLoopResult struct {
	Peer   string
	Size   string // origin path: "1k", "100k"
	Rate   int
	Peer1  OpenLoopSample
	Direct OpenLoopSample
	// AddedP50, AddedP99 and AddedP999 are medians of peer minus paired
	// direct percentiles.
	AddedP50, AddedP99, AddedP999 time.Duration
	// CPUPerReq is the proxy's CPU time per answered request at that rate.
	CPUPerReq time.Duration
	Err       string
}

// openLoop runs every open-loop size and rate through pr, each run after
// a direct one.
func (e *benchEnv) openLoop(ctx context.Context, pr *proc, name string) []OpenLoopResult {
	var out []OpenLoopResult
	for _, size := range e.o.OpenLoopSizes {
		out = append(out, e.openLoopSize(ctx, pr, name, size)...)
	}
	return out
}

func (e *benchEnv) openLoopSize(ctx context.Context, pr *proc, name, size string) []OpenLoopResult {
	var out []OpenLoopResult
	for _, rate := range e.o.OpenLoopRates {
		r := OpenLoopResult{Peer: name, Size: size, Rate: rate}
		var peers, directs []OpenLoopSample
		var a50, a99, a999 []float64
		for i := range e.o.Reps {
			d, err := e.load(ctx, nil, size, rate)
			if err != nil {
				r.Err = "direct: " + err.Error()
				break
			}
			s, err := e.load(ctx, pr, size, rate)
			if err != nil {
				r.Err = err.Error()
				break
			}
			fmt.Fprintf(e.o.Log, "  open loop %s %d req/s rep %d: direct p50 %v p99 %v p99.9 %v | %s p50 %v p99 %v p99.9 %v cpu %v errors %d\n",
				size, rate, i+1, d.P50, d.P99, d.P999, name, s.P50, s.P99, s.P999, s.CPU, s.Errors+d.Errors)
			peers, directs = append(peers, s), append(directs, d)
			a50 = append(a50, float64(s.P50-d.P50))
			a99 = append(a99, float64(s.P99-d.P99))
			a999 = append(a999, float64(s.P999-d.P999))
		}
		if len(peers) > 0 {
			r.Peer1, r.Direct = medianOpen(peers), medianOpen(directs)
			r.AddedP50, r.AddedP99, r.AddedP999 = time.Duration(median(a50)), time.Duration(median(a99)), time.Duration(median(a999))
			// Every scheduled request, warm-up included, cost CPU.
			if n := int64(float64(rate) * e.o.OpenLoopDuration.Seconds()); n > 0 {
				r.CPUPerReq = r.Peer1.CPU / time.Duration(n)
			}
		}
		if r.Err != "" {
			fmt.Fprintf(e.o.Log, "  open loop %s %d req/s: %s\n", size, rate, r.Err)
		}
		out = append(out, r)
	}
	return out
}

// load runs the helper's open-loop generator through pr (nil: straight to
// the origin) and measures pr's CPU meanwhile.
func (e *benchEnv) load(ctx context.Context, pr *proc, size string, rate int) (OpenLoopSample, error) {
	s := OpenLoopSample{Rate: rate}
	args := []string{"-role", "load", "-url", "http://" + e.origin + "/" + size, "-rate", strconv.Itoa(rate),
		"-d", e.o.OpenLoopDuration.String(), "-conns", strconv.Itoa(e.o.OpenLoopConns)}
	if pr != nil {
		args = append(args, "-target", pr.addr, "-proxied")
	} else {
		args = append(args, "-target", e.origin)
	}
	var cpu0 time.Duration
	if pr != nil {
		cpu0 = treeCPU(pr.root)
	}
	out, err := exec.CommandContext(ctx, e.helper, args...).Output()
	if pr != nil {
		s.CPU = treeCPU(pr.root) - cpu0
	}
	if err != nil {
		return s, fmt.Errorf("load generator: %w", err)
	}
	// The helper's loadResult, one JSON line.
	var res struct {
		Achieved float64 `json:"achieved"`
		Sent     int64   `json:"sent"`
		OK       int64   `json:"ok"`
		Errors   int64   `json:"errors"`
		P50ns    int64   `json:"p50_ns"`
		P99ns    int64   `json:"p99_ns"`
		P999ns   int64   `json:"p999_ns"`
		MaxNs    int64   `json:"max_ns"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return s, fmt.Errorf("load generator output %q: %w", out, err)
	}
	s.Achieved, s.Sent, s.OK, s.Errors = res.Achieved, res.Sent, res.OK, res.Errors
	s.P50, s.P99, s.P999, s.Max = time.Duration(res.P50ns), time.Duration(res.P99ns), time.Duration(res.P999ns), time.Duration(res.MaxNs)
	if s.OK == 0 {
		return s, fmt.Errorf("load generator: no request answered (%d errors)", s.Errors)
	}
	return s, nil
}

// medianOpen is the run of median p99 (its other figures come with it).
func medianOpen(ss []OpenLoopSample) OpenLoopSample {
	c := slices.Clone(ss)
	slices.SortFunc(c, func(a, b OpenLoopSample) int { return cmp.Compare(a.P99, b.P99) })
	return c[len(c)/2]
}

// OpenLoopTable renders the open-loop runs as Markdown.
func (r *Report) OpenLoopTable() string {
	if len(r.OpenLoop) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| peer | size | rate req/s | direct p50 / p99 / p99.9 ms | through the peer p50 / p99 / p99.9 ms | added p50 / p99 / p99.9 ms | errors | CPU µs/req |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.OpenLoop {
		if x.Err != "" {
			fmt.Fprintf(&b, "| %s | %s | %d | failed: %s | | | | |\n", x.Peer, x.Size, x.Rate, firstLine(x.Err))
			continue
		}
		d, p := x.Direct, x.Peer1
		fmt.Fprintf(&b, "| %s | %s | %d | %s / %s / %s | %s / %s / %s | %+.2f / %+.2f / %+.2f | %d | %.1f |\n",
			x.Peer, x.Size, x.Rate, ms(d.P50), ms(d.P99), ms(d.P999), ms(p.P50), ms(p.P99), ms(p.P999),
			float64(x.AddedP50)/1e6, float64(x.AddedP99)/1e6, float64(x.AddedP999)/1e6, p.Errors+d.Errors, float64(x.CPUPerReq)/1e3)
	}
	return b.String()
}

// OpenLoopNote sums the open-loop runs up in one line.
func (r *Report) OpenLoopNote() string {
	var parts []string
	for _, x := range r.OpenLoop {
		if x.Err != "" {
			parts = append(parts, fmt.Sprintf("%s, %s at %d req/s failed: %s", x.Peer, x.Size, x.Rate, firstLine(x.Err)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s, %s at %d req/s: p50/p99/p99.9 %s/%s/%s ms vs direct %s/%s/%s ms, p99 added %+.2f ms, CPU %.0f µs/req",
			x.Peer, x.Size, x.Rate, ms(x.Peer1.P50), ms(x.Peer1.P99), ms(x.Peer1.P999), ms(x.Direct.P50), ms(x.Direct.P99), ms(x.Direct.P999),
			float64(x.AddedP99)/1e6, float64(x.CPUPerReq)/1e3))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Open-loop latency, fixed schedule (not the issue's closed-loop wrk -c50 measure): " + strings.Join(parts, "; ") + "."
}
