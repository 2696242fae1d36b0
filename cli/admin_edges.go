package cli

import (
	"fmt"
	"text/tabwriter"

	"vigie/controlplane/api"
)

func (a *admin) edges(args []string) error {
	return a.verbs("edges", args, a.edgesList, map[string]func([]string) error{
		"list":   a.edgesList,
		"add":    a.edgesAdd,
		"token":  a.edgesToken,
		"remove": a.edgesRemove,
	})
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
		// silent, never): one rule for both.
		fmt.Fprintln(tw, "EDGE\tUAI\tAPPLIED\tUP TO DATE\tSTATE\tLAST SEEN\tVERSION\tLAST ERROR")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.UAI, e.AppliedSerial, yesNo(e.UpToDate), e.State, ago(e.LastSeen), e.Software, e.LastError)
		}
	})
}

func (a *admin) printEdgeToken(c api.EdgeCreated, what string) error {
	return a.emit(c, func(*tabwriter.Writer) {
		fmt.Fprintf(a.out, "edge %s (%s) %s.\ntoken: %s\nPut it in the edge's token_file (e.g. /etc/vigie/edge.token, mode 0600): it is shown only once.\n",
			c.Edge.ID, c.Edge.UAI, what, c.Token)
	})
}

func (a *admin) edgesAdd(args []string) error {
	fs := a.flagsFor("edges add", "edges add UAI [--id ID] [--name NAME]")
	id := fs.String("id", "", "edge identifier (default: derived from the school)")
	name := fs.String("name", "", "a name for people")
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
	return a.printEdgeToken(c, "registered")
}

func (a *admin) edgesToken(args []string) error {
	fs := a.flagsFor("edges token", "edges token ID")
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
	return a.printEdgeToken(c, "has a new token (the old one no longer works)")
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
