package cli

import (
	"fmt"
	"text/tabwriter"

	"vigie/controlplane/apiclient"
	"vigie/journal/archive"
)

func (a *admin) holds(args []string) error {
	return a.verbs("holds", args, a.holdsList, a.verbTables()["holds"])
}

func (a *admin) holdsList(args []string) error {
	fs := a.flagsFor("holds", "holds [list] [--all]")
	all := fs.Bool("all", false, "include released holds")
	if err := parse(fs, args); err != nil {
		return err
	}
	hs, err := a.c.Holds(a.ctx, *all)
	if err != nil {
		return err
	}
	return a.emit(hs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tUAI\tFROM\tTO\tCLIENT\tREFERENCE\tPLACED BY\tRELEASED")
		for _, h := range hs {
			client := ""
			if h.Client.IsValid() {
				client = h.Client.String()
			}
			rel := ""
			if !h.ReleasedAt.IsZero() {
				rel = h.ReleasedBy + " " + h.ReleasedAt.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.UAI, h.From.Local().Format("2006-01-02 15:04"), h.To.Local().Format("2006-01-02 15:04"),
				client, h.Reference, h.PlacedBy, rel)
		}
	})
}

func (a *admin) printHold(h archive.Hold, what string) error {
	return a.emit(h, func(*tabwriter.Writer) { fmt.Fprintf(a.out, "hold %d %s (%s, %s)\n", h.ID, what, h.UAI, h.Reference) })
}

func (a *admin) holdsPlace(args []string) error {
	fs := a.flagsFor("holds place", "holds place --uai UAI --from TIME --to TIME --reference REF [--client IP]")
	var req apiclient.HoldRequest
	fs.StringVar(&req.UAI, "uai", "", "school UAI (required)")
	fs.StringVar(&req.From, "from", "", `start, e.g. "2026-03-02 08:00" (Paris time) (required)`)
	fs.StringVar(&req.To, "to", "", "end, excluded (required)")
	fs.StringVar(&req.Client, "client", "", "only this device's address")
	fs.StringVar(&req.Reference, "reference", "", "why: the requisition or case reference (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if req.UAI == "" || req.From == "" || req.To == "" || req.Reference == "" {
		return usageError("--uai, --from, --to and --reference are required")
	}
	h, err := a.c.PlaceHold(a.ctx, req)
	if err != nil {
		return err
	}
	return a.printHold(h, "placed")
}

func (a *admin) holdsRelease(args []string) error {
	fs := a.flagsFor("holds release", "holds release ID")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin holds release ID")
	}
	h, err := a.c.ReleaseHold(a.ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	return a.printHold(h, "released")
}

// export is "vigie logs export" with the admin's server, token and CA.
func (a *admin) export(args []string) error {
	pass := []string{"--server", a.server, "--token", a.token}
	if a.ca != "" {
		pass = append(pass, "--ca", a.ca)
	}
	return logsExport(append(pass, args...), a.out, a.err)
}
