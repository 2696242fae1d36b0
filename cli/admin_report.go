package cli

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"vigie/atomicfile"
	"vigie/controlplane/report"
	"vigie/controlplane/ui"
)

// report prints the yearly joint review's figures and, with --out, writes
// the printable French report the UI shows (the same HTML, standing
// alone: its style inline, its charts inline SVG).
func (a *admin) report(args []string) error {
	fs := a.flagsFor("report", "report --year YEAR (--uai UAI | --departement 67) [--out FILE]")
	year := fs.Int("year", 0, "calendar year (required)")
	uai := fs.String("uai", "", "one school")
	dep := fs.String("departement", "", "or one département (67, 68, or a 3-digit UAI prefix)")
	out := fs.String("out", "", "write the printable HTML report to FILE")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *year == 0 {
		return usageError("--year is required")
	}
	if (*uai == "") == (*dep == "") {
		return usageError("give --uai UAI or --departement NUMBER (one of them)")
	}
	rep, err := a.c.YearlyReport(a.ctx, *year, *uai, *dep)
	if err != nil {
		return err
	}
	if *out != "" {
		var buf bytes.Buffer
		if err := ui.RenderReport(&buf, &rep); err != nil {
			return err
		}
		if err := atomicfile.Write(*out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(a.err, "wrote %s (%d bytes)\n", *out, buf.Len())
	}
	return a.emit(rep, func(tw *tabwriter.Writer) { reportTable(tw, &rep) })
}

func reportTable(tw *tabwriter.Writer, r *report.Report) {
	day := func(t time.Time) string { return t.Local().Format("2006-01-02") }
	since := func(c report.Coverage) string {
		switch {
		case c.Full:
			return "whole period"
		case c.Empty():
			return "not recorded in this period"
		}
		return "since " + day(c.From)
	}
	who := r.Title + " (" + r.UAI + ")"
	if r.UAI == "" {
		who = fmt.Sprintf("département %s (%d schools)", r.Departement, len(r.Schools))
	}
	fmt.Fprintf(tw, "yearly review %d\t%s\t%s to %s\n", r.Year, who, day(r.From), day(r.Until))
	fmt.Fprintf(tw, "versions published\t%d\t\n", len(r.Versions.Published))
	fmt.Fprintf(tw, "applications recorded\t%d\t%s\n", len(r.Versions.Applied), since(r.Versions.Coverage))
	outages := 0
	for _, e := range r.Availability.Edges {
		outages += e.Outages
	}
	fmt.Fprintf(tw, "availability\t%.1f %% (%d edges, %d outages)\t%s\n", float64(r.Availability.Permille)/10, len(r.Availability.Edges), outages, since(r.Availability.Coverage))
	if b := r.Blocked; b != nil && !b.Unavailable {
		trunc := ""
		if b.Truncated {
			trunc = " (at least)"
		}
		fmt.Fprintf(tw, "blocked requests\t%d%s\t%s\n", b.Total, trunc, since(b.Coverage))
	} else if b == nil {
		fmt.Fprintf(tw, "blocked requests\thidden for your role\t\n")
	}
	e := r.Exports
	fmt.Fprintf(tw, "requisition exports\t%d completed, %d interrupted, %d denied, %d transmitted, %d downloaded\t\n", e.Completed, e.Interrupted, e.Denied, e.Transmitted, e.Downloaded)
	fmt.Fprintf(tw, "refused bundles\t%d\t%s\n", len(r.Incidents.Refused), since(r.Incidents.RefusedCoverage))
	fmt.Fprintf(tw, "journal gaps\t%d (%d records missing, %d still open)\t\n", len(r.Incidents.Gaps), r.Incidents.Missing, r.Incidents.OpenGaps)
	var sw []string
	for _, s := range r.Software.InService {
		sw = append(sw, fmt.Sprintf("%s: %d", s.Version, len(s.Edges)))
	}
	fmt.Fprintf(tw, "software in service\t%s\t\n", strings.Join(sw, ", "))
}
