package cli

import (
	"fmt"
	"text/tabwriter"

	"vigie/controlplane/audit"
)

func (a *admin) audit(args []string) error {
	fs := a.flagsFor("audit", "audit [--limit N] [--verify]")
	limit := fs.Int("limit", 50, "how many of the latest entries")
	verify := fs.Bool("verify", false, "verify the hash chain instead of listing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *verify {
		v, err := a.c.VerifyAudit(a.ctx)
		if err != nil {
			return err
		}
		if err := a.emit(v, func(*tabwriter.Writer) {
			switch {
			case !v.OK && v.Problem != nil:
				fmt.Fprintf(a.out, "AUDIT CHAIN BROKEN at entry %d: %s\n", v.Problem.Seq, v.Problem.Reason)
			case !v.OK && v.AnchorError != "":
				fmt.Fprintln(a.out, "AUDIT CHAIN BROKEN:", v.AnchorError)
			case v.OK:
				fmt.Fprintf(a.out, "audit chain verified: %d entries, head %d %s (note it to detect a later truncation)\n", v.Entries, v.HeadSeq, v.Head)
			}
		}); err != nil {
			return err
		}
		if !v.OK {
			return exitError(1)
		}
		return nil
	}
	// The latest entries: page to the end, keeping the last limit.
	var keep []audit.Entry
	err := a.c.Audit(a.ctx, func(items []audit.Entry) error {
		keep = append(keep, items...)
		if len(keep) > *limit {
			keep = keep[len(keep)-*limit:]
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.emit(keep, func(*tabwriter.Writer) {
		for _, e := range keep {
			after := string(e.After)
			if len(after) > 120 {
				after = after[:117] + "..."
			}
			fmt.Fprintf(a.out, "%6d %s %-14s %-20s %-24s %s\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Target, after)
		}
	})
}
