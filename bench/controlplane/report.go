package controlplane

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Markdown renders the figures as the README's table.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s, load average %s before the run and %s after. Policy: full UT1 snapshot + adult top list, %d domains, bundle %s (manifest %d bytes).\n\n",
		r.Machine, r.LoadBefore, r.LoadAfter, r.Domains, mib(r.BundleBytes), r.ManifestBytes)
	fmt.Fprintf(&b, "| figure | delta (%d edges) | whole bundle, baseline (%d edges) | ratio delta/baseline | target |\n|---|---|---|---|---|\n", r.Delta.Edges, r.Full.Edges)
	row := func(name, d, f, ratio, target string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, d, f, ratio, target)
	}
	ratio := func(a, c float64) string {
		if c == 0 {
			return ""
		}
		return fmt.Sprintf("%.4f", a/c)
	}
	row("bytes received per edge, one-domain change", fmt.Sprintf("%.0f B (%.3f %% of the bundle)", r.Delta.BytesPerEdge, 100*r.Delta.BytesPerEdge/float64(r.BundleBytes)),
		fmt.Sprintf("%.0f B", r.Full.BytesPerEdge), ratio(r.Delta.BytesPerEdge, r.Full.BytesPerEdge), "≤ 1 % of the bundle")
	row("publish → applied, p50", ms(r.Delta.AppliedP50), ms(r.Full.AppliedP50), ratio(float64(r.Delta.AppliedP50), float64(r.Full.AppliedP50)), "")
	row("publish → applied, p100", ms(r.Delta.AppliedP100), ms(r.Full.AppliedP100), ratio(float64(r.Delta.AppliedP100), float64(r.Full.AppliedP100)), "≤ 2000 ms for 1000 edges")
	row("control plane CPU, fan-out (per publication)", ms(r.Delta.CPUFanout), ms(r.Full.CPUFanout), "", "")
	row("control plane CPU, publication request (compile, sign, store)", ms(r.Delta.CPUPublish), ms(r.Full.CPUPublish), "", "")
	row("simulated edges' CPU (this process) during the fan-out", ms(r.Delta.CPUEdges), ms(r.Full.CPUEdges), "", "")
	if r.Backend == "postgres" {
		row("PostgreSQL CPU (server and backends) during the fan-out", ms(r.Delta.CPUDatabase), ms(r.Full.CPUDatabase), "", "")
	}
	pub := func(m Mode) string {
		var s []string
		for _, d := range m.Publish {
			s = append(s, ms(d))
		}
		return strings.Join(s, ", ")
	}
	row("publication request duration", pub(r.Delta), pub(r.Full), "", "")
	fmt.Fprintf(&b, "\nControl plane memory (%s, %d process(es)): %s resident with %d edges parked on long-polls, peak %s over the run.\n",
		r.Backend, len(r.Replicas), mib(r.RSSIdle), r.Edges, mib(r.RSSPeak))
	for i, m := range r.Replicas {
		fmt.Fprintf(&b, "Process %d: %d edges, %s before they arrived, %s with them parked (%.1f KiB per edge).\n",
			i+1, m.Edges, mib(m.RSSBefore), mib(m.RSSParked), float64(m.RSSParked-m.RSSBefore)/1024/float64(max(1, m.Edges)))
	}
	fmt.Fprintf(&b, "Each real edge then verifies and loads the bundle on its own CPU: %s here (rules.DecodeBundle of the whole bundle).\n", ms(r.EdgeApply))
	var per []string
	met := 0
	for _, d := range r.Delta.AppliedMax {
		per = append(per, ms(d))
		if d <= 2*time.Second {
			met++
		}
	}
	fmt.Fprintf(&b, "Delta p100 per round (each publication reaching all %d edges): %s; median %s; %d of %d rounds within 2 s.\n",
		r.Delta.Edges, strings.Join(per, ", "), ms(pct(r.Delta.AppliedMax, 50)), met, len(r.Delta.AppliedMax))
	return b.String()
}
