// Package cli implements the vigie subcommands. Each command lives in its
// own file; this one holds the table and the shared plumbing.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Version is set at build time with -ldflags "-X vigie/cli.Version=...".
var Version = "dev"

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is the table of subcommands, in the order help shows them.
func commands() []command {
	return []command{
		{"demo", "run the control plane and one edge on loopback with embedded defaults", runDemo},
		{"edge", "run a school edge (DNS filter, proxy, firewall, journal, sync), or check its configuration (run | check)", runEdge},
		{"controlplane", "run and look after the académie control plane (serve | init | import-ut1 | check | backup | restore | migrate)", runControlplane},
		{"rules", "check, compile and explain policies (check | compile | explain)", runRules},
		{"keys", "generate Ed25519 key pairs (generate)", runKeys},
		{"admin", "talk to the control plane API", runAdmin},
		{"logs", "requisition exports and searches in the connection logs (export | verify | who | ref)", runLogs},
		{"firewall", "the school's nftables ruleset (render | apply | counters | remove)", runFirewall},
		{"testlab", "build or remove the virtual school (up | down)", runTestlab},
		{"version", "print the version", func(_ []string, out, _ io.Writer) error {
			fmt.Fprintln(out, "vigie", Version)
			return nil
		}},
	}
}

// errUsage marks errors caused by the command line (exit status 2).
var errUsage = errors.New("usage")

// usageError wraps a message as a command-line error.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// exitError carries an exit status without a message of its own (the
// command printed what it had to say).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Main runs the command line and returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		help(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		var ee exitError
		var hp helpText
		switch {
		case err == nil:
			return 0
		case errors.As(err, &hp):
			fmt.Fprintln(stdout, string(hp))
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			return int(ee)
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "vigie %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "vigie %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "vigie: unknown command %q (try \"vigie help\")\n", args[0])
	return 2
}

func help(w io.Writer) {
	fmt.Fprintln(w, "Vigie: filtering edge and control plane for school networks.")
	fmt.Fprintln(w, "\nUsage: vigie <command> [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"vigie <command> -h\" for a command's options.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vigie "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags, turning a parse failure into a usage error. Flags may
// follow positional arguments ("explain URL --json"), as users type them.
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// helpText is an answer to -h: printed on stdout, exit status 0.
type helpText string

func (h helpText) Error() string { return string(h) }

// subcommand dispatches "vigie <group> <verb> ...". "-h" lists the verbs;
// "<verb> -h" is the verb's own help.
func subcommand(group string, args []string, verbs map[string]func([]string) error) error {
	names := make([]string, 0, len(verbs))
	for v := range verbs {
		names = append(names, v)
	}
	list := strings.Join(sortStrings(names), " | ")
	if len(args) == 0 {
		return usageError("missing subcommand (%s)", list)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return helpText(fmt.Sprintf("Usage: vigie %s SUBCOMMAND [arguments]\n\nSubcommands: %s\n\nRun \"vigie %s SUBCOMMAND -h\" for a subcommand's options.", group, list, group))
	}
	run, ok := verbs[args[0]]
	if !ok {
		return usageError("unknown subcommand %q (%s)", args[0], list)
	}
	return run(args[1:])
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
