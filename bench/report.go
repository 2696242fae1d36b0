package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"vigie/bench/benchenv"
)

// Better says which direction of a figure is good.
type Better string

const (
	Higher Better = "higher"
	Lower  Better = "lower"
)

// Figure is one measured quantity of Vigie, with the same quantity of its
// peer measured in the same run (when there is one) and the target the
// issue set (when there is one).
type Figure struct {
	// Name says what was measured, e.g. "QPS, dnsperf -c10, 370k list".
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Better is the good direction for Value.
	Better Better `json:"better"`
	// Peer is what Vigie is compared with ("unbound", "squid+squidguard",
	// "map[string] baseline"), measured in the same run.
	Peer      string  `json:"peer,omitempty"`
	PeerValue float64 `json:"peer_value,omitempty"`
	// Ratio is Value / PeerValue (so 2.0 means twice the peer's figure;
	// read it with Better).
	Ratio float64 `json:"ratio,omitempty"`
	// Target is the goal, as a ratio to the peer when Peer is set
	// (TargetRatio) or as an absolute value otherwise (TargetValue).
	TargetRatio float64 `json:"target_ratio,omitempty"`
	TargetValue float64 `json:"target_value,omitempty"`
	// Met is nil when there is no target.
	Met *bool `json:"met,omitempty"`
	// Source names the benchmark or command the figure comes from, as
	// the style guide asks of every performance claim.
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
	// BaselineRuns are the repeated measurements of the baseline (the
	// peer, or Vigie's own reference run) that bracket this figure, and
	// BaselineSpread their relative spread (max−min)/min: a baseline that
	// moved by more than 15 % within the run says the machine was not
	// quiet, whatever the ratio says.
	BaselineRuns   []float64 `json:"baseline_runs,omitempty"`
	BaselineSpread float64   `json:"baseline_spread,omitempty"`
	// Noisy ("bruité") is set when the figure was measured in conditions
	// that make it unquotable (load, baseline spread) even after the
	// runner's repeats; NoisyWhy says which.
	Noisy    bool   `json:"noisy,omitempty"`
	NoisyWhy string `json:"noisy_why,omitempty"`
}

// finish computes Ratio and Met from the other fields.
func (f *Figure) finish() {
	f.BaselineSpread = benchenv.Spread(f.BaselineRuns)
	// A part may give its own ratio (e.g. against the baseline runs next
	// to each peer run, which drift less than a mean over the whole run).
	if f.Ratio == 0 && f.Peer != "" && f.PeerValue != 0 && !math.IsNaN(f.Value) {
		f.Ratio = f.Value / f.PeerValue
	}
	var met bool
	switch {
	case f.TargetRatio != 0 && f.Peer != "" && f.PeerValue != 0:
		met = compare(f.Ratio, f.TargetRatio, f.Better)
	case f.TargetValue != 0:
		met = compare(f.Value, f.TargetValue, f.Better)
	default:
		f.Met = nil
		return
	}
	f.Met = &met
}

func compare(v, target float64, b Better) bool {
	if b == Lower {
		return v <= target
	}
	return v >= target
}

// PartResult is what one part of the run produced.
type PartResult struct {
	Name string `json:"name"`
	// Status is ok, failed or skipped.
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	Seconds  float64  `json:"seconds"`
	Figures  []Figure `json:"figures"`
	Notes    []string `json:"notes,omitempty"`
	Peers    string   `json:"peers,omitempty"`
	Commands []string `json:"commands,omitempty"`
	// LoadBefore and LoadAfter are the load averages around the attempt
	// kept; Attempts is how many times the part ran (more than one when
	// an earlier attempt was noisy).
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
}

// Report is the whole run, written as latest.json and latest.md.
type Report struct {
	Machine  Machine      `json:"machine"`
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished"`
	Args     []string     `json:"args"`
	Short    bool         `json:"short"`
	Parts    []PartResult `json:"parts"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report as the table a person reads.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Vigie benchmarks: latest run\n\n")
	b.WriteString("Written by `go run ./bench` " + argsText(r.Args) + "; do not edit by hand.\n")
	b.WriteString("Every ratio compares two figures measured in the same run on the same machine\n")
	b.WriteString("(these machines drift by 20–35 % within an hour, so absolute figures from\n")
	b.WriteString("different runs do not compare; ratios do).\n\n")
	m := r.Machine
	fmt.Fprintf(&b, "| machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s |\n| cores | %d |\n| memory | %s |\n| kernel | %s |\n| OS | %s |\n| Go | %s |\n| commit | %s |\n| started | %s |\n| duration | %s |\n",
		mdEscape(m.CPU), m.Cores, humanBytes(float64(m.MemoryBytes)), mdEscape(m.Kernel), mdEscape(m.OS), m.GoVersion, mdEscape(m.Commit),
		r.Started.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
	if r.Short {
		b.WriteString("\n**Short run** (`-short`): fewer repetitions and shorter loads; figures are indicative only.\n")
	}
	b.WriteString("\n## Summary\n\n")
	b.WriteString("| part | figure | Vigie | peer (same run) | ratio | target | met | conditions |\n|---|---|---:|---|---:|---|---|---|\n")
	for _, p := range r.Parts {
		if p.Status != "ok" {
			fmt.Fprintf(&b, "| %s | **%s**: %s | | | | | | |\n", p.Name, p.Status, mdEscape(firstLine(p.Error)))
			continue
		}
		if len(p.Figures) == 0 {
			note := "no figure"
			if len(p.Notes) > 0 {
				note = p.Notes[0]
			}
			fmt.Fprintf(&b, "| %s | %s | | | | | | %s |\n", p.Name, mdEscape(note), conditionsText(p, Figure{}))
		}
		for _, f := range p.Figures {
			ratio, met := ratioText(f), metText(f.Met)
			if f.Noisy {
				// Not quoted: the value stays in the part's section and
				// in latest.json, but no ratio or verdict is claimed.
				ratio, met = "**bruité**", ""
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p.Name, mdEscape(f.Name), formatValue(f.Value, f.Unit),
				peerText(f), ratio, targetText(f), met, conditionsText(p, f))
		}
	}
	for _, p := range r.Parts {
		fmt.Fprintf(&b, "\n## %s (%s, %.0f s)\n\n", p.Name, p.Status, p.Seconds)
		if p.Peers != "" {
			fmt.Fprintf(&b, "Peers: %s\n\n", p.Peers)
		}
		if p.LoadBefore != "" {
			fmt.Fprintf(&b, "Load average before %s, after %s; %d attempt(s).\n\n", p.LoadBefore, p.LoadAfter, max(p.Attempts, 1))
		}
		if p.Error != "" {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.TrimSpace(p.Error))
		}
		for _, f := range p.Figures {
			fmt.Fprintf(&b, "- %s", mdEscape(f.Name))
			if f.Peer != "" {
				fmt.Fprintf(&b, " vs %s", mdEscape(f.Peer))
			}
			fmt.Fprintf(&b, ": %s", formatValue(f.Value, f.Unit))
			if f.Source != "" {
				fmt.Fprintf(&b, " (`%s`)", f.Source)
			}
			if f.Note != "" {
				fmt.Fprintf(&b, "; %s", f.Note)
			}
			if f.Noisy {
				fmt.Fprintf(&b, "; **bruité**: %s", f.NoisyWhy)
			}
			b.WriteString("\n")
		}
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		if len(p.Commands) > 0 {
			fmt.Fprintf(&b, "\n<details><summary>%d commands</summary>\n\n", len(p.Commands))
			for _, c := range p.Commands {
				fmt.Fprintf(&b, "- `%s`\n", c)
			}
			b.WriteString("\n</details>\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// conditionsText is the summary's last column: the load the part ran at,
// the spread of the figure's baseline runs, and the attempts it took.
func conditionsText(p PartResult, f Figure) string {
	var parts []string
	if p.LoadBefore != "" {
		parts = append(parts, "load "+firstField(p.LoadBefore)+"→"+firstField(p.LoadAfter))
	}
	if len(f.BaselineRuns) > 1 {
		parts = append(parts, fmt.Sprintf("spread %.0f %%", f.BaselineSpread*100))
	}
	if p.Attempts > 1 {
		parts = append(parts, fmt.Sprintf("%d attempts", p.Attempts))
	}
	if f.Noisy {
		parts = append(parts, mdEscape(f.NoisyWhy))
	}
	return strings.Join(parts, ", ")
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

func argsText(args []string) string {
	if len(args) == 0 {
		return "(all parts, default lengths)"
	}
	return "`" + strings.Join(args, " ") + "`"
}

func peerText(f Figure) string {
	if f.Peer == "" {
		return ""
	}
	return mdEscape(f.Peer) + ": " + formatValue(f.PeerValue, f.Unit)
}

func ratioText(f Figure) string {
	if f.Ratio == 0 {
		return ""
	}
	if math.Abs(f.Ratio) < 0.1 {
		return strconv.FormatFloat(f.Ratio, 'g', 2, 64) + "×"
	}
	return strconv.FormatFloat(f.Ratio, 'f', 2, 64) + "×"
}

func targetText(f Figure) string {
	op := "≥"
	if f.Better == Lower {
		op = "≤"
	}
	switch {
	case f.TargetRatio != 0:
		return op + " " + strconv.FormatFloat(f.TargetRatio, 'g', 3, 64) + "× peer"
	case f.TargetValue != 0:
		return op + " " + formatValue(f.TargetValue, f.Unit)
	}
	return ""
}

func metText(m *bool) string {
	switch {
	case m == nil:
		return ""
	case *m:
		return "yes"
	}
	return "**no**"
}

// formatValue prints a figure with three significant digits and its unit,
// bytes in binary multiples.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if unit == "B" {
		return humanBytes(v)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	switch a := math.Abs(v); {
	case a >= 1e6:
		s = strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case a >= 1e4:
		s = strconv.FormatFloat(v/1e3, 'f', 1, 64) + " k"
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	case a > 0:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if unit == "" {
		return s
	}
	if strings.HasSuffix(s, " M") || strings.HasSuffix(s, " k") {
		return s + unit
	}
	return s + " " + unit
}

func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', -1, 64) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
