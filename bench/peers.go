package main

import (
	"context"
	"fmt"
	"io"
	"time"

	dnsbench "vigie/bench/dns"
	httpbench "vigie/bench/http"
)

// dnsPart runs bench/dns: Vigie's DNS filter, dnsmasq and a bare miekg/dns
// server, each alternated with Unbound, driven by dnsperf.
func dnsPart() part {
	return part{Name: "dns",
		About: "DNS filter with the 370k-name UT1 + adult-top1m list, dnsperf -c10 (bench/dns)",
		Peers: "Unbound (baseline), dnsmasq, bare miekg/dns",
		Run: func(ctx context.Context, opt options, log io.Writer) (partOutput, error) {
			o := dnsbench.Options{Root: opt.Root, Log: log}
			if opt.Short {
				o.Rounds, o.Duration, o.Queries, o.Drain = 1, 3*time.Second, 50000, time.Second
			}
			res, err := dnsbench.Run(ctx, o)
			out := partOutput{Commands: res.Commands, Notes: res.Notes}
			out.Figures = dnsFigures(res.Summaries())
			if res.Entries > 0 {
				out.Notes = append(out.Notes, fmt.Sprintf("%d blocklist entries, each blocking its subdomains", res.Entries))
			}
			return out, err
		}}
}

// dnsFigures turns the per-peer summaries (ratios to the Unbound runs next
// to each run) into figures: Vigie against Unbound with the issue's
// targets, and against the other peers through their own Unbound ratios.
func dnsFigures(sums []dnsbench.Summary) []Figure {
	by := map[string]dnsbench.Summary{}
	for _, s := range sums {
		by[s.Peer] = s
	}
	v, ok := by[dnsbench.PeerVigie]
	base, okb := by[dnsbench.PeerUnbound]
	if !ok || !okb || v.Runs == 0 {
		return nil
	}
	src := "bench/dns"
	figs := []Figure{
		{Name: "QPS", Value: v.QPS, Unit: "q/s", Better: Higher, Peer: "unbound", PeerValue: base.QPS, Ratio: v.QPSRatio, TargetRatio: 1.0, Source: src},
		{Name: "average latency", Value: v.AvgLatency * 1e3, Unit: "ms", Better: Lower, Peer: "unbound", PeerValue: base.AvgLatency * 1e3, Ratio: v.LatencyRatio, Source: src},
		{Name: "server CPU per query", Value: v.CPUPerQuery * 1e6, Unit: "µs", Better: Lower, Peer: "unbound", PeerValue: base.CPUPerQuery * 1e6, Ratio: v.CPURatio, Source: src},
		{Name: "resident memory after load", Value: v.RSS, Unit: "B", Better: Lower, Peer: "unbound", PeerValue: base.RSS, Ratio: v.RSSRatio, TargetRatio: 0.25, Source: src},
		{Name: "startup with the list (to first answer)", Value: v.Startup, Unit: "s", Better: Lower, Peer: "unbound", PeerValue: base.Startup, Ratio: v.StartupRatio, Source: src},
		{Name: "startup with the bundle ≤ 0.2 s", Value: v.Startup, Unit: "s", Better: Lower, TargetValue: 0.2, Source: src},
	}
	for _, name := range []string{dnsbench.PeerDnsmasq, dnsbench.PeerBare} {
		p, ok := by[name]
		if !ok || p.QPSRatio == 0 || p.RSSRatio == 0 {
			continue
		}
		figs = append(figs,
			Figure{Name: "QPS", Value: v.QPS, Unit: "q/s", Better: Higher, Peer: name, PeerValue: p.QPS, Ratio: v.QPSRatio / p.QPSRatio, Source: src,
				Note: "ratio of the two ratios to their neighbouring Unbound runs"},
			Figure{Name: "resident memory after load", Value: v.RSS, Unit: "B", Better: Lower, Peer: name, PeerValue: p.RSS, Ratio: v.RSSRatio / p.RSSRatio, Source: src})
	}
	return figs
}

// httpPart runs bench/http: Vigie's proxy against Squid, Squid +
// squidGuard, E2Guardian and goproxy, each paired with a direct run.
func httpPart() part {
	return part{Name: "http",
		About: "HTTP proxy with the UT1 lists, wrk -t2 -c50 through each proxy, 1 KiB and 100 KiB (bench/http)",
		Peers: "direct (no proxy), Squid, Squid + squidGuard, E2Guardian (with and without phrase filtering), goproxy",
		Run: func(ctx context.Context, opt options, log io.Writer) (partOutput, error) {
			// README "-": the combined run writes bench/results only and
			// leaves bench/http/README.md to its own command.
			o := httpbench.Options{Root: opt.Root, Install: true, README: "-", Log: log}
			if opt.Short {
				o.Duration, o.Reps, o.Drain = 4*time.Second, 1, 2*time.Second
			}
			rep, err := httpbench.Run(ctx, o)
			var out partOutput
			if rep == nil {
				return out, err
			}
			out.Notes = append(out.Notes, rep.Notes...)
			out.Figures = httpFigures(rep)
			return out, err
		}}
}

// httpFigures compares Vigie with each peer through their ratios to the
// direct runs paired with them.
func httpFigures(rep *httpbench.Report) []Figure {
	find := func(peer, size string) (httpbench.Result, bool) {
		for _, r := range rep.Results {
			if r.Peer == peer && r.Size == size && r.Err == "" {
				return r, true
			}
		}
		return httpbench.Result{}, false
	}
	src := "bench/http"
	var figs []Figure
	targets := map[string]map[string]float64{
		"1k":   {"squid+squidguard": 2, "squid": 1.2},
		"100k": {"squid+squidguard": 3},
	}
	for _, size := range rep.Options.Sizes {
		v, ok := find("vigie", size)
		if !ok {
			continue
		}
		for _, peer := range httpbench.PeerNames {
			p, ok := find(peer, size)
			if peer == "vigie" || !ok || p.Ratio == 0 {
				continue
			}
			figs = append(figs, Figure{Name: "req/s, " + size + " responses", Value: v.Peer1.RPS, Unit: "req/s", Better: Higher,
				Peer: peer, PeerValue: p.Peer1.RPS, Ratio: v.Ratio / p.Ratio, TargetRatio: targets[size][peer], Source: src,
				Note: "ratio of the two proxies' ratios to their paired direct runs"})
		}
		if d := v.Direct; d.RPS > 0 {
			figs = append(figs, Figure{Name: "req/s, " + size + ", through Vigie vs direct", Value: v.Peer1.RPS, Unit: "req/s", Better: Higher,
				Peer: "direct (no proxy)", PeerValue: d.RPS, Ratio: v.Ratio, Source: src})
		}
		figs = append(figs,
			Figure{Name: "p99 added over direct, " + size, Value: float64(v.AddedP99) / 1e6, Unit: "ms", Better: Lower, TargetValue: 2, Source: src},
			Figure{Name: "proxy CPU per request, " + size, Value: float64(v.CPUPerReq) / 1e3, Unit: "µs", Better: Lower, Source: src})
		if sg, ok := find("squid+squidguard", size); ok && sg.CPUPerReq > 0 {
			figs[len(figs)-1].Peer, figs[len(figs)-1].PeerValue = "squid+squidguard", float64(sg.CPUPerReq)/1e3
		}
		if sg, ok := find("squid+squidguard", size); ok && size == rep.Options.Sizes[0] && sg.Peer1.RSS > 0 {
			figs = append(figs, Figure{Name: "proxy memory (peak RSS of the process tree)", Value: float64(v.Peer1.RSS), Unit: "B", Better: Lower,
				Peer: "squid+squidguard", PeerValue: float64(sg.Peer1.RSS), TargetRatio: 0.5, Source: src})
		}
	}
	return figs
}
