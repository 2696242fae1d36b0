package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"vigie/controlplane/api"
	"vigie/journal/export"
)

// explain asks the control plane the Tester's question, through the
// route the Tester itself uses (POST /api/v1/explain).
func (a *admin) explain(args []string) error {
	fs := a.flagsFor("explain", "explain URL|DOMAIN --uai UAI (--zone ZONE | --ip IP) [--at TIME] [--draft]")
	uai := fs.String("uai", "", "school UAI (required)")
	zone := fs.String("zone", "", "zone of the school (its profile applies)")
	ip := fs.String("ip", "", "a device's address, instead of --zone: its zone applies")
	at := fs.String("at", "", `moment, for time windows: "2026-03-02 08:00" (Paris time) or RFC 3339 (default: now)`)
	draft := fs.Bool("draft", false, "test the draft (compiled for the occasion) instead of the version in force")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *uai == "" || (*zone == "") == (*ip == "") {
		return usageError("usage: vigie admin explain URL --uai UAI (--zone ZONE | --ip IP) [--at TIME] [--draft]")
	}
	req := api.ExplainRequest{Address: fs.Arg(0), UAI: *uai, Zone: *zone, IP: *ip, Draft: *draft}
	if *at != "" {
		t, err := export.ParseTime(*at)
		if err != nil {
			return usageError("--at: %v", err)
		}
		req.At = &t
	}
	res, err := a.c.Explain(a.ctx, req)
	if err != nil {
		return err
	}
	return a.emit(res, func(tw *tabwriter.Writer) {
		verdict := "ALLOWED"
		if res.Block {
			verdict = "BLOCKED"
		}
		subject := res.Host
		if res.URL != "" {
			subject = res.URL
		}
		source := fmt.Sprintf("version %d", res.Serial)
		if res.Source == "draft" {
			source = "draft"
		}
		zone := res.Zone
		if zone == "" {
			zone = "(none: the school's strictest profile)"
		}
		fmt.Fprintf(a.out, "%s %s\n  school %s (%s), zone %s, profile %s, %s, %s\n", verdict, subject, res.SchoolName, res.UAI, zone,
			res.Profile.ID, res.At.In(export.Paris).Format("2006-01-02 15:04 MST"), source)
		switch res.Kind {
		case "none":
			fmt.Fprintf(a.out, "  why: no list the profile blocks holds %s or a parent domain\n", res.Host)
		case "unfiltered":
			fmt.Fprintf(a.out, "  why: profile %s filters nothing\n", res.Profile.ID)
		case "invalid":
			fmt.Fprintln(a.out, "  why: not a valid address; the filter refuses what it cannot read")
		default:
			fmt.Fprintf(a.out, "  why: %s %q in list %s (category %s)\n", res.Kind, res.Entry, res.List, res.Category)
		}
		if len(res.Matches) > 0 {
			fmt.Fprintln(tw, "  KIND\tENTRY\tLIST\tCATEGORY\tEFFECT FOR THIS PROFILE")
			for _, m := range res.Matches {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Kind, m.Entry, m.List, m.Category, m.Effect)
			}
		}
		if res.CompileTime > 0 {
			fmt.Fprintf(a.out, "  draft compiled in %s\n", res.CompileTime.Round(time.Millisecond))
		}
	})
}
