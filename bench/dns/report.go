package dnsbench

import (
	"fmt"
	"slices"
	"strings"
)

// Summary is one peer's figures over the rounds: medians of the runs, and
// medians of the per-run ratios to the adjacent baseline runs.
type Summary struct {
	Peer        string  `json:"peer"`
	Runs        int     `json:"runs"`
	QPS         float64 `json:"qps"`
	AvgLatency  float64 `json:"avg_latency_s"`
	CPUPerQuery float64 `json:"cpu_per_query_s"`
	RSS         float64 `json:"rss_bytes"`
	Startup     float64 `json:"startup_s"`
	LostShare   float64 `json:"lost_share"`
	// Ratios to the baseline (Unbound) in the same run.
	QPSRatio, LatencyRatio, CPURatio, RSSRatio, StartupRatio float64
}

// Summaries returns the baseline first, then each peer in the order given.
func (r Result) Summaries() []Summary {
	var base []Measurement
	byPeer := map[string][]Measurement{}
	var order []string
	for _, m := range r.Runs {
		if m.Peer == PeerUnbound {
			base = append(base, m)
			continue
		}
		if _, ok := byPeer[m.Peer]; !ok {
			order = append(order, m.Peer)
		}
		byPeer[m.Peer] = append(byPeer[m.Peer], m)
	}
	out := []Summary{summarize(PeerUnbound, base, nil)}
	out[0].QPSRatio, out[0].LatencyRatio, out[0].CPURatio, out[0].RSSRatio, out[0].StartupRatio = 1, 1, 1, 1, 1
	for _, p := range order {
		out = append(out, summarize(p, byPeer[p], base))
	}
	return out
}

func summarize(peer string, runs, base []Measurement) Summary {
	s := Summary{Peer: peer, Runs: len(runs)}
	if len(runs) == 0 {
		return s
	}
	pick := func(f func(Measurement) float64) float64 {
		var v []float64
		for _, m := range runs {
			v = append(v, f(m))
		}
		return median(v)
	}
	s.QPS = pick(func(m Measurement) float64 { return m.QPS })
	s.AvgLatency = pick(func(m Measurement) float64 { return m.AvgLatency })
	s.CPUPerQuery = pick(func(m Measurement) float64 { return m.CPUPerQuery })
	s.RSS = pick(func(m Measurement) float64 { return float64(m.RSS) })
	s.Startup = pick(func(m Measurement) float64 { return m.Startup })
	s.LostShare = pick(func(m Measurement) float64 { return float64(m.Lost) / float64(max(1, m.Completed+m.Lost)) })
	if base == nil {
		return s
	}
	ratio := func(f func(Measurement) float64) float64 {
		var v []float64
		for _, m := range runs {
			if b, ok := neighbours(m, base, f); ok && b != 0 {
				v = append(v, f(m)/b)
			}
		}
		return median(v)
	}
	s.QPSRatio = ratio(func(m Measurement) float64 { return m.QPS })
	s.LatencyRatio = ratio(func(m Measurement) float64 { return m.AvgLatency })
	s.CPURatio = ratio(func(m Measurement) float64 { return m.CPUPerQuery })
	s.RSSRatio = ratio(func(m Measurement) float64 { return float64(m.RSS) })
	s.StartupRatio = ratio(func(m Measurement) float64 { return m.Startup })
	return s
}

// neighbours is the mean of f over the baseline runs just before and just
// after m.
func neighbours(m Measurement, base []Measurement, f func(Measurement) float64) (float64, bool) {
	var sum float64
	n := 0
	var before, after *Measurement
	for i := range base {
		b := &base[i]
		if b.Seq < m.Seq && (before == nil || b.Seq > before.Seq) {
			before = b
		}
		if b.Seq > m.Seq && (after == nil || b.Seq < after.Seq) {
			after = b
		}
	}
	for _, b := range []*Measurement{before, after} {
		if b != nil {
			sum += f(*b)
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Targets, as ratios to Unbound measured in the same run and an absolute
// startup time: QPS with the journal on (issue 20; issue 3 asked for
// 1.0× with it off), memory and startup (issue 3).
const (
	TargetQPSRatio = 1.5
	TargetRSSRatio = 0.25
	TargetStartup  = 0.2 // seconds, with the bundle
)

// Markdown renders the results as the tables of bench/dns/README.md.
func (r Result) Markdown() string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "Run of %s, %s; blocklist of %d names; dnsperf -c %d, %s per run, %d rounds, server on CPU %q, dnsperf on CPU %q, both at nice %d.\n\n",
		r.Started.Format("2006-01-02 15:04 MST"), max(0, r.Finished.Sub(r.Started)).Round(1e9), r.Entries, o.Clients, o.Duration, o.Rounds, o.ServerCPU, o.LoadCPU, o.Nice)
	fmt.Fprintf(&b, "Machine: %d CPUs, load average %s at the start and %s at the end (other work was running: absolute figures move with it, ratios less).\n\n", r.CPUs, r.LoadBefore, r.LoadAfter)
	b.WriteString("Medians over the rounds. Ratios divide each run's figure by the mean of the Unbound runs just before and after it, then take the median.\n\n")
	b.WriteString("| server | QPS | QPS / Unbound | avg latency | latency / Unbound | CPU per query | CPU / Unbound | RSS after load | RSS / Unbound | startup | lost |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Summaries() {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.3f ms | %.2f | %.2f µs | %.2f | %.1f MB | %.2f | %.3f s | %.3f %% |\n",
			s.Peer, s.QPS, s.QPSRatio, s.AvgLatency*1e3, s.LatencyRatio, s.CPUPerQuery*1e6, s.CPURatio,
			s.RSS/(1<<20), s.RSSRatio, s.Startup, s.LostShare*100)
	}
	b.WriteString("\nTargets (issues 3 and 20): ")
	for _, s := range r.Summaries() {
		if s.Peer != PeerVigie {
			continue
		}
		fmt.Fprintf(&b, "QPS ≥ %.2f× Unbound: **%s** (%.2f×); memory ≤ %.2f× Unbound: **%s** (%.2f×); startup with the bundle ≤ %.1f s: **%s** (%.3f s).\n",
			TargetQPSRatio, met(s.QPSRatio >= TargetQPSRatio), s.QPSRatio,
			TargetRSSRatio, met(s.RSSRatio <= TargetRSSRatio), s.RSSRatio,
			TargetStartup, met(s.Startup <= TargetStartup), s.Startup)
	}
	b.WriteString("\n<details><summary>Every run, in order</summary>\n\n| # | round | server | QPS | avg latency | CPU per query | RSS | startup | completed | lost |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Runs {
		fmt.Fprintf(&b, "| %d | %d | %s | %.0f | %.3f ms | %.2f µs | %.1f MB | %.3f s | %d | %d |\n",
			m.Seq, m.Round, m.Peer, m.QPS, m.AvgLatency*1e3, m.CPUPerQuery*1e6, float64(m.RSS)/(1<<20), m.Startup, m.Completed, m.Lost)
	}
	b.WriteString("\nCommands:\n\n")
	for _, c := range r.Commands {
		fmt.Fprintf(&b, "    %s\n", c)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// Figure mirrors the figure type of `go run ./bench` (bench/report.go), so
// that its DNS part can copy these field by field.
type Figure struct {
	Name        string  `json:"name"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit"`
	Better      string  `json:"better"`
	Peer        string  `json:"peer,omitempty"`
	PeerValue   float64 `json:"peer_value,omitempty"`
	TargetRatio float64 `json:"target_ratio,omitempty"`
	TargetValue float64 `json:"target_value,omitempty"`
	Source      string  `json:"source,omitempty"`
	Note        string  `json:"note,omitempty"`
}

// Figures are Vigie's figures against its peers, medians of the rounds.
// PeerValue is the peer's median; the ratio the harness computes from them
// may differ slightly from the per-run median ratio of Markdown.
func (r Result) Figures() []Figure {
	sums := map[string]Summary{}
	for _, s := range r.Summaries() {
		sums[s.Peer] = s
	}
	v, ok := sums[PeerVigie]
	if !ok {
		return nil
	}
	u := sums[PeerUnbound]
	src := "bench/dns (dnsperf -c" + fmt.Sprint(r.Options.Clients) + ")"
	list := fmt.Sprintf("%dk-name list", (r.Entries+500)/1000)
	figs := []Figure{
		{Name: "DNS QPS, " + list, Value: v.QPS, Unit: "QPS", Better: "higher", Peer: "unbound", PeerValue: u.QPS, TargetRatio: TargetQPSRatio, Source: src},
		{Name: "DNS resident memory after load", Value: v.RSS, Unit: "B", Better: "lower", Peer: "unbound", PeerValue: u.RSS, TargetRatio: TargetRSSRatio, Source: src},
		{Name: "DNS startup with the bundle", Value: v.Startup, Unit: "s", Better: "lower", TargetValue: TargetStartup, Source: src, Note: "exec to first NXDOMAIN for a listed name"},
		{Name: "DNS average latency", Value: v.AvgLatency, Unit: "s", Better: "lower", Peer: "unbound", PeerValue: u.AvgLatency, Source: src},
		{Name: "DNS server CPU per query", Value: v.CPUPerQuery, Unit: "s", Better: "lower", Peer: "unbound", PeerValue: u.CPUPerQuery, Source: src},
	}
	if d, ok := sums[PeerDnsmasq]; ok {
		figs = append(figs,
			Figure{Name: "DNS QPS, " + list, Value: v.QPS, Unit: "QPS", Better: "higher", Peer: "dnsmasq", PeerValue: d.QPS, Source: src},
			Figure{Name: "DNS resident memory after load", Value: v.RSS, Unit: "B", Better: "lower", Peer: "dnsmasq", PeerValue: d.RSS, Source: src})
	}
	if m, ok := sums[PeerBare]; ok {
		figs = append(figs, Figure{Name: "DNS QPS, " + list, Value: v.QPS, Unit: "QPS", Better: "higher", Peer: "bare miekg/dns, fixed answer", PeerValue: m.QPS, Source: src})
	}
	return figs
}
