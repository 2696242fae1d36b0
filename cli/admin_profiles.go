package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"

	"vigie/controlplane/apiclient"
	"vigie/rules/policy"
)

func (a *admin) profiles(args []string) error {
	return a.verbs("profiles", args, a.profilesList, a.verbTables()["profiles"])
}

func (a *admin) profilesList(args []string) error {
	fs := a.flagsFor("profiles", "profiles [list]")
	if err := parse(fs, args); err != nil {
		return err
	}
	ps, err := a.c.Profiles(a.ctx)
	if err != nil {
		return err
	}
	return a.emit(ps, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "PROFILE\tNAME\tBLOCK\tALLOW\tSAFESEARCH\tHTTPS")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", p.ID, p.Name, strings.Join(p.Block, ","), strings.Join(p.Allow, ","), p.SafeSearch, p.HTTPS)
		}
	})
}

func (a *admin) profile(id string) (policy.Profile, bool, error) {
	ps, err := a.c.Profiles(a.ctx)
	if err != nil {
		return policy.Profile{}, false, err
	}
	for _, p := range ps {
		if p.ID == id {
			return p, true, nil
		}
	}
	return policy.Profile{ID: id}, false, nil
}

// printYAML shows a document as the policy file writes it.
func (a *admin) printYAML(v any) error {
	return a.emit(v, func(*tabwriter.Writer) {
		enc := yaml.NewEncoder(a.out)
		enc.SetIndent(2)
		enc.Encode(v)
		enc.Close()
	})
}

func (a *admin) profilesShow(args []string) error {
	fs := a.flagsFor("profiles show", "profiles show ID")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin profiles show ID")
	}
	p, ok, err := a.profile(fs.Arg(0))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no profile %q in the draft", fs.Arg(0))
	}
	return a.printYAML(p)
}

func (a *admin) profilesSet(args []string) error {
	const usage = "profiles set ID [--file PROFILE.yaml] [--name N] [--block CATS] [--add-block CATS] [--allow CATS] [--safesearch=BOOL] [--youtube strict|moderate|off] [--https sni|intercept] [--block-answer nxdomain|blockpage|null]"
	fs := a.flagsFor("profiles set", usage)
	file := fs.String("file", "", "the whole profile, YAML or JSON, as in the policy file (flags then change it)")
	name := fs.String("name", "", "name for people")
	block := fs.String("block", "", "categories blocked, comma-separated (replaces the list)")
	allow := fs.String("allow", "", "categories allowed as exceptions, comma-separated (replaces the list)")
	addBlock := fs.String("add-block", "", "categories to block in addition to those already blocked")
	safe := fs.Bool("safesearch", false, "force SafeSearch")
	youtube := fs.String("youtube", "", "YouTube restriction")
	https := fs.String("https", "", "HTTPS handling")
	answer := fs.String("block-answer", "", "DNS answer to a blocked name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin %s", usage)
	}
	p, _, err := a.profile(fs.Arg(0))
	if err != nil {
		return err
	}
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		var np policy.Profile
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&np); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		if np.ID != "" && np.ID != fs.Arg(0) {
			return fmt.Errorf("%s: id %q differs from %q", *file, np.ID, fs.Arg(0))
		}
		np.ID = fs.Arg(0)
		p = np
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			p.Name = *name
		case "block":
			p.Block = csv(*block)
		case "allow":
			p.Allow = csv(*allow)
		case "add-block":
			for _, c := range csv(*addBlock) {
				if !slices.Contains(p.Block, c) {
					p.Block = append(p.Block, c)
				}
			}
		case "safesearch":
			p.SafeSearch = *safe
		case "youtube":
			p.YouTube = *youtube
		case "https":
			p.HTTPS = *https
		case "block-answer":
			p.BlockAnswer = *answer
		}
	})
	out, err := a.c.PutProfile(a.ctx, p)
	if err != nil {
		return err
	}
	return a.printYAML(out)
}

func (a *admin) profilesRemove(args []string) error {
	fs := a.flagsFor("profiles remove", "profiles remove ID")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie admin profiles remove ID")
	}
	if err := a.c.DeleteProfile(a.ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "profile %s removed from the draft (publish to apply)\n", fs.Arg(0))
	return nil
}

// firewall shows or replaces the flow matrix. The document is passed as
// the API gives it, so the CLI follows the model's fields as they grow.
func (a *admin) firewall(args []string) error {
	return a.verbs("firewall", args, a.firewallShow, a.verbTables()["firewall"])
}

func (a *admin) firewallShow(args []string) error {
	fs := a.flagsFor("firewall", "firewall [show]")
	if err := parse(fs, args); err != nil {
		return err
	}
	raw, err := a.c.Firewall(a.ctx)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	return a.printYAML(doc)
}

func (a *admin) firewallSet(args []string) error {
	fs := a.flagsFor("firewall set", "firewall set --file FIREWALL.yaml (YAML or JSON: the firewall: section of the policy)")
	file := fs.String("file", "", "the flow matrix (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() != 0 {
		return usageError("usage: vigie admin firewall set --file FIREWALL.yaml")
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	out, err := a.c.PutFirewall(a.ctx, body)
	var p *apiclient.Problem
	if errors.As(err, &p) {
		return fmt.Errorf("%s: %w", *file, err)
	}
	if err != nil {
		return err
	}
	var shown any
	json.Unmarshal(out, &shown)
	return a.printYAML(shown)
}
