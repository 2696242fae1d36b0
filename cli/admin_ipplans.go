package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"vigie/controlplane/api"
	"vigie/controlplane/ipplan"
	"vigie/rules/policy"
)

// ipProposals is "vigie admin ip-plans": a technicien proposes a
// school's IP plan, the RSSI validates or refuses it (operator guide 4.2).
func (a *admin) ipProposals(args []string) error {
	return a.verbs("ip-plans", args, a.ipProposalsList, a.verbTables()["ip-plans"])
}

func (a *admin) ipProposalsList(args []string) error {
	fs := a.flagsFor("ip-plans", "ip-plans [list] [--status pending|validated|refused] [--uai UAI]")
	status := fs.String("status", "", "pending, validated or refused")
	uai := fs.String("uai", "", "one school")
	if err := parse(fs, args); err != nil {
		return err
	}
	ps, err := a.c.IPProposals(a.ctx, *status, *uai)
	if err != nil {
		return err
	}
	return a.emit(ps, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tSTATUS\tUAI\tPROPOSED BY\tCHANGES\tCOMMENT")
		for _, p := range ps {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Status, p.UAI, p.ProposedBy, changes(p.Diff), p.Comment)
		}
	})
}

// changes sums a diff up: "wifi changed, cdi added".
func changes(d []ipplan.ZoneChange) string {
	var out []string
	for _, c := range d {
		if c.Change != ipplan.Unchanged {
			out = append(out, c.Zone+" "+c.Change)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}

func proposalID(fs interface {
	NArg() int
	Arg(int) string
}, usage string) (int64, error) {
	if fs.NArg() != 1 {
		return 0, usageError("usage: vigie admin %s", usage)
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError("%q is not a proposal number (usage: vigie admin %s)", fs.Arg(0), usage)
	}
	return id, nil
}

func (a *admin) printProposal(p api.IPProposalView) error {
	return a.emit(p, func(tw *tabwriter.Writer) {
		fmt.Fprintf(a.out, "proposal %d for %s %s: %s, by %s on %s\n", p.ID, p.UAI, p.SchoolName, p.Status, p.ProposedBy, p.ProposedAt.Format("2006-01-02 15:04"))
		fmt.Fprintf(a.out, "comment: %s\n", p.Comment)
		if p.DecidedBy != "" {
			fmt.Fprintf(a.out, "decided by %s on %s", p.DecidedBy, p.DecidedAt.Format("2006-01-02 15:04"))
			if p.Reason != "" {
				fmt.Fprintf(a.out, ": %s", p.Reason)
			}
			fmt.Fprintln(a.out)
		}
		if p.AgainstRevision > 0 {
			fmt.Fprintf(a.out, "diff against the draft at revision %d (validate --revision %d)\n", p.AgainstRevision, p.AgainstRevision)
		}
		fmt.Fprintln(tw, "ZONE\tCHANGE\tKEPT\tADDED\tREMOVED\tPROFILE")
		for _, c := range p.Diff {
			prof := c.ProfileAfter
			if c.ProfileBefore != c.ProfileAfter {
				prof = c.ProfileBefore + " -> " + c.ProfileAfter
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Zone, c.Change, strings.Join(c.CIDRsKept, ","),
				strings.Join(c.CIDRsAdded, ","), strings.Join(c.CIDRsRemoved, ","), prof)
		}
	})
}

func (a *admin) ipProposalsShow(args []string) error {
	const usage = "ip-plans show ID"
	fs := a.flagsFor("ip-plans show", usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := proposalID(fs, usage)
	if err != nil {
		return err
	}
	p, err := a.c.IPProposal(a.ctx, id)
	if err != nil {
		return err
	}
	return a.printProposal(p)
}

func (a *admin) ipProposalsPropose(args []string) error {
	const usage = "ip-plans propose UAI --file ZONES.json -m COMMENT"
	fs := a.flagsFor("ip-plans propose", usage)
	file := fs.String("file", "", `the school's whole plan: a JSON array of zones, [{"name": "wifi", "cidrs": ["10.67.3.0/24"], "profile": "invites"}, ...] ("vigie admin --json schools show UAI" prints the current one)`)
	msg := fs.String("m", "", "why the plan changes (required: the RSSI reads it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *file == "" {
		return usageError("usage: vigie admin %s", usage)
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return usageError("--file: %v", err)
	}
	var zones []policy.Zone
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&zones); err != nil {
		return fmt.Errorf("%s: %w (want a JSON array of zones: name, cidrs, interfaces, profile)", *file, err)
	}
	p, err := a.c.ProposeIPPlan(a.ctx, strings.ToUpper(fs.Arg(0)), api.IPProposalRequest{Zones: zones, Comment: *msg})
	if err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintf(a.out, "proposal %d sent to the RSSI\n", p.ID)
	}
	return a.printProposal(p)
}

func (a *admin) ipProposalsValidate(args []string) error {
	const usage = "ip-plans validate ID [--revision N] [-m COMMENT]"
	fs := a.flagsFor("ip-plans validate", usage)
	rev := fs.Int64("revision", 0, "the draft revision the diff was read at (refused if the draft changed since)")
	msg := fs.String("m", "", "a word for the technicien")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := proposalID(fs, usage)
	if err != nil {
		return err
	}
	p, err := a.c.ValidateIPProposal(a.ctx, id, api.IPProposalValidate{Revision: *rev, Comment: *msg})
	if err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintf(a.out, "proposal %d validated: the plan of %s is in the draft (revision %d); publish to apply it\n", p.ID, p.UAI, p.DraftRevision)
		return nil
	}
	return a.printProposal(p)
}

func (a *admin) ipProposalsRefuse(args []string) error {
	const usage = "ip-plans refuse ID -m REASON"
	fs := a.flagsFor("ip-plans refuse", usage)
	msg := fs.String("m", "", "why (required: the technicien reads it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := proposalID(fs, usage)
	if err != nil {
		return err
	}
	p, err := a.c.RefuseIPProposal(a.ctx, id, *msg)
	if err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintf(a.out, "proposal %d refused\n", p.ID)
		return nil
	}
	return a.printProposal(p)
}
