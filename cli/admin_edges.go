package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"vigie/atomicfile"
	"vigie/controlplane/api"
)

func (a *admin) edges(args []string) error {
	return a.verbs("edges", args, a.edgesList, a.verbTables()["edges"])
}

func (a *admin) edgesList(args []string) error {
	fs := a.flagsFor("edges", "edges [list] [--uai UAI]")
	uai := fs.String("uai", "", "only this school's edges")
	if err := parse(fs, args); err != nil {
		return err
	}
	serial, err := a.c.Health(a.ctx)
	if err != nil {
		return err
	}
	es, err := a.c.Edges(a.ctx, *uai)
	if err != nil {
		return err
	}
	return a.emit(es, func(tw *tabwriter.Writer) {
		fmt.Fprintf(a.out, "published serial: %d\n", serial)
		// STATE is the API's, the word the UI shows (ok, late, error,
		// silent, never, unknown): one rule for both.
		fmt.Fprintln(tw, "EDGE\tUAI\tAPPLIED\tUP TO DATE\tSTATE\tLAST SEEN\tVERSION\tLAST ERROR")
		for _, e := range es {
			upToDate := yesNo(e.UpToDate)
			if e.UnknownVersion {
				upToDate = "NO (version inconnue)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.UAI, e.AppliedSerial, upToDate, e.State, ago(e.LastSeen), e.Software, e.LastError)
		}
	})
}

// printEdgeToken shows a new edge token once, or writes it to out (mode
// 0600) for the operator to carry to the gateway.
func (a *admin) printEdgeToken(c api.EdgeCreated, what, out string) error {
	if out != "" {
		if err := atomicfile.Write(out, []byte(c.Token+"\n"), 0o600); err != nil {
			return fmt.Errorf("--token-out: %w", err)
		}
		c.Token = ""
	}
	return a.emit(c, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "edge %s (%s) %s.\n", c.Edge.ID, c.Edge.UAI, what)
		if out != "" {
			fmt.Fprintf(a.out, "Its token is in %s: copy it to the gateway's /etc/vigie/edge.token (mode 0640, root:vigie), then delete it here.\n", out)
			return
		}
		fmt.Fprintf(a.out, "token: %s\nPut it in the edge's token_file (/etc/vigie/edge.token, mode 0640, root:vigie): it is shown only once.\n", c.Token)
	})
}

func (a *admin) edgesAdd(args []string) error {
	fs := a.flagsFor("edges add", "edges add UAI [--id ID] [--name NAME] [--token-out FILE]")
	id := fs.String("id", "", "edge identifier (default: derived from the school)")
	name := fs.String("name", "", "a name for people")
	out := fs.String("token-out", "", "write the edge's token to this file (mode 0600) instead of printing it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin edges add UAI [--id ID] [--name NAME]")
	}
	c, err := a.c.CreateEdge(a.ctx, api.EdgeCreate{ID: *id, UAI: fs.Arg(0), Name: *name})
	if err != nil {
		return err
	}
	return a.printEdgeToken(c, "registered", *out)
}

func (a *admin) edgesToken(args []string) error {
	fs := a.flagsFor("edges token", "edges token ID [--token-out FILE]")
	out := fs.String("token-out", "", "write the new token to this file (mode 0600) instead of printing it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin edges token ID")
	}
	c, err := a.c.RotateEdgeToken(a.ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	return a.printEdgeToken(c, "has a new token (the old one no longer works)", *out)
}

func (a *admin) edgesRemove(args []string) error {
	fs := a.flagsFor("edges remove", "edges remove ID")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin edges remove ID")
	}
	if err := a.c.DeleteEdge(a.ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "edge %s removed: its token no longer works\n", fs.Arg(0))
	return nil
}

// wait polls until the control plane answers, and with --edge until that
// edge applied the published version: scripts (and the guide) run it
// after starting a service instead of sleeping.
func (a *admin) wait(args []string) error {
	fs := a.flagsFor("wait", "wait [--edge ID] [--timeout DURATION]")
	edge := fs.String("edge", "", "also wait until this edge runs the published version")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *edge != "" && a.token == "" {
		return usageError("--edge needs an API token")
	}
	deadline := time.Now().Add(*timeout)
	last := ""
	for {
		serial, err := a.c.Health(a.ctx)
		if err == nil && *edge == "" {
			fmt.Fprintf(a.out, "control plane up (published serial %d)\n", serial)
			return nil
		}
		if err == nil {
			var es []api.EdgeHealth
			if es, err = a.c.Edges(a.ctx, ""); err == nil {
				err = fmt.Errorf("edge %s not registered", *edge)
				for _, e := range es {
					if e.ID != *edge {
						continue
					}
					if e.State == "ok" {
						fmt.Fprintf(a.out, "edge %s runs serial %d\n", e.ID, e.AppliedSerial)
						return nil
					}
					err = fmt.Errorf("edge %s: state %s, serial %d of %d %s", e.ID, e.State, e.AppliedSerial, serial, e.LastError)
				}
			}
		}
		last = err.Error()
		if time.Now().After(deadline) {
			return fmt.Errorf("still waiting after %s: %s", *timeout, last)
		}
		select {
		case <-a.ctx.Done():
			return a.ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
