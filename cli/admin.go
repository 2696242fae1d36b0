package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"vigie/controlplane/apiclient"
)

// adminUsage is the help of "vigie admin": every noun and verb an
// operator uses, so that the guide can point here.
const adminUsage = `Usage: vigie admin [--server URL] [--token TOKEN] [--ca FILE] [--json] COMMAND ...

Talks to the control plane's API (controlplane/apiclient) with an API token.

Global options (before COMMAND):
  --server URL   control plane URL (default $VIGIE_SERVER, else http://127.0.0.1:8080)
  --token TOKEN  API token (default $VIGIE_TOKEN); create one in the UI (Mon compte)
                 or with "vigie admin tokens create"
  --token-file F file holding the token (default $VIGIE_TOKEN_FILE): keeps it out
                 of the process list and the shell history
  --ca FILE      PEM file of the CA that signed the control plane's certificate
                 (default $VIGIE_CA; else the system's CAs)
  --json         print the API's JSON answer instead of a table (for scripts)

Commands (each takes -h):
  schools [show UAI | set UAI --name N | zone UAI ZONE --cidr C --profile P |
           zone-remove UAI ZONE | remove UAI | status UAI]
                                      schools and their zones (IP plans)
  ip-plans [show ID | propose UAI --file ZONES.json -m COMMENT |
            validate ID [--revision N] | refuse ID -m REASON]
                                      IP plans proposed by the technicians (4.2)
  profiles [show ID | set ID [--block a,b] [--allow c] ... | remove ID]
                                      filtering profiles of the draft
  firewall [show | set --file FILE]   the flow matrix of the draft
  lists show [CATEGORY]               custom lists, or one category's entries
  lists add CATEGORY DOMAIN... [-m COMMENT] [--school UAI] [--list ID]
  lists remove CATEGORY DOMAIN... [--school UAI] [--list ID]
  categories                          categories of the version in force
  diff                                what the draft changes
  validate                            compile the draft without publishing
  publish -m MESSAGE [--force]        validate, sign and send the draft
  rollback SERIAL [-m MESSAGE]        republish an earlier version
  versions [--limit N]                published versions
  explain URL --uai UAI (--zone Z | --ip IP) [--at TIME] [--draft]
                                      what a zone gets for an address, and why
                                      (the UI's "Tester une adresse")
  edges [--uai UAI]                   edges: applied serial, state, last seen
  edges add UAI [--id ID] [--name N]  register an edge (prints its token once)
  edges token ID                      give an edge a new token (the old one stops)
  edges remove ID                     remove an edge
  holds [--all] | holds place ... | holds release ID
                                      legal holds on journal records
  export ...                          a requisition export (same as "vigie logs export")
  users [add LOGIN --role R | set LOGIN ...]
                                      accounts (RSSI only)
  tokens [create NAME | revoke ID]    your API tokens
  audit [--limit N] [--verify]        the audit log
  report --year YEAR (--uai UAI | --departement 67) [--out FILE]
                                      the yearly joint review (HTML with --out)
  import-ut1 URL [--md5 URL]          make the control plane download UT1 into the draft
  wait [--edge ID] [--timeout D]      wait until the control plane answers (and the edge
                                      applied the published version), for scripts

Environment: VIGIE_SERVER, VIGIE_TOKEN, VIGIE_TOKEN_FILE, VIGIE_CA.`

// admin is one "vigie admin" invocation: the client and how to print.
type admin struct {
	c        *apiclient.Client
	ctx      context.Context
	json     bool
	out, err io.Writer
	// server, token and ca are passed on to "vigie logs export".
	server, token, ca string
}

// runAdmin talks to the control plane's API with a token, for the RSSI's
// scripts and terminal.
func runAdmin(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin", stderr)
	api := addAPIFlags(fs, "")
	jsonOut := fs.Bool("json", false, "print JSON instead of tables")
	fs.Usage = func() { fmt.Fprintln(stderr, adminUsage) }
	// Global flags come before the command; the command's own follow it.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, adminUsage)
		return usageError("missing command")
	}
	// Help needs no token: an operator reads it before having one.
	wantsHelp := slices.Contains(rest, "-h") || slices.Contains(rest, "--help") || slices.Contains(rest, "-help")
	// "wait" needs none either: it waits for the server to answer.
	c, err := api.client("admin", !wantsHelp && rest[0] != "wait", 0)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a := &admin{c: c, ctx: ctx, json: *jsonOut, out: stdout, err: stderr, server: api.server, token: c.Token, ca: api.ca}
	return subcommand("admin", rest, a.nouns())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// emit prints v as JSON with --json, else calls table.
func (a *admin) emit(v any, table func(tw *tabwriter.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// nouns are the commands of "vigie admin".
func (a *admin) nouns() map[string]func([]string) error {
	return map[string]func([]string) error{
		"schools":    a.schools,
		"profiles":   a.profiles,
		"ip-plans":   a.ipProposals,
		"firewall":   a.firewall,
		"lists":      a.lists,
		"categories": a.categories,
		"diff":       a.diff,
		"validate":   a.validate,
		"publish":    a.publish,
		"rollback":   a.rollback,
		"versions":   a.versions,
		"explain":    a.explain,
		"edges":      a.edges,
		"holds":      a.holds,
		"export":     a.export,
		"users":      a.users,
		"tokens":     a.tokens,
		"audit":      a.audit,
		"report":     a.report,
		"import-ut1": a.importUT1,
		"wait":       a.wait,
	}
}

// verbTables are the verbs of the nouns that have several ("vigie admin
// NOUN VERB"), in one place so that a test walks them all.
func (a *admin) verbTables() map[string]map[string]func([]string) error {
	return map[string]map[string]func([]string) error{
		"edges": {
			"list":   a.edgesList,
			"add":    a.edgesAdd,
			"token":  a.edgesToken,
			"remove": a.edgesRemove,
		},
		"firewall": {
			"show": a.firewallShow,
			"set":  a.firewallSet,
		},
		"lists": {
			"show":   a.listsVerb("show"),
			"add":    a.listsVerb("add"),
			"remove": a.listsVerb("remove"),
		},
		"holds": {
			"list":    a.holdsList,
			"place":   a.holdsPlace,
			"release": a.holdsRelease,
		},
		"ip-plans": {
			"list":     a.ipProposalsList,
			"show":     a.ipProposalsShow,
			"propose":  a.ipProposalsPropose,
			"validate": a.ipProposalsValidate,
			"refuse":   a.ipProposalsRefuse,
		},
		"profiles": {
			"list":   a.profilesList,
			"show":   a.profilesShow,
			"set":    a.profilesSet,
			"remove": a.profilesRemove,
		},
		"schools": {
			"list":        a.schoolsList,
			"show":        a.schoolsShow,
			"set":         a.schoolsSet,
			"zone":        a.schoolsZone,
			"zone-remove": a.schoolsZoneRemove,
			"remove":      a.schoolsRemove,
			"status":      a.schoolsStatus,
		},
		"tokens": {
			"list":   a.tokensList,
			"create": a.tokensCreate,
			"revoke": a.tokensRevoke,
		},
		"users": {
			"list": a.usersList,
			"add":  a.usersAdd,
			"set":  a.usersSet,
		},
	}
}

// verbs dispatches "vigie admin NOUN VERB ...": no verb (or a flag
// first) runs def, the listing.
func (a *admin) verbs(noun string, args []string, def func([]string) error, table map[string]func([]string) error) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		return subcommand("admin "+noun, args, table)
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return def(args)
	}
	return subcommand("admin "+noun, args, table)
}

// flagsFor is a verb's flag set; usage is its synopsis for -h.
func (a *admin) flagsFor(name, usage string) *flag.FlagSet {
	fs := newFlags("admin "+name, a.err)
	fs.Usage = func() {
		fmt.Fprintf(a.err, "Usage: vigie admin %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// csv splits a comma-separated flag value, dropping empty items.
func csv(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// repeated is a flag that may be given several times (--cidr A --cidr B),
// each value possibly comma-separated.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error {
	*r = append(*r, csv(v)...)
	return nil
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
