package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigie/atomicfile"
	"vigie/keyfile"
	"vigie/proxy/edge"
	"vigie/rules"
	"vigie/rules/firewall"
	"vigie/rules/policy"
)

func runRules(args []string, stdout, stderr io.Writer) error {
	return subcommand("rules", args, map[string]func([]string) error{
		"check":   func(a []string) error { return rulesCheck(a, stdout, stderr) },
		"compile": func(a []string) error { return rulesCompile(a, stdout, stderr) },
		"explain": func(a []string) error { return rulesExplain(a, stdout, stderr) },
	})
}

func runKeys(args []string, stdout, stderr io.Writer) error {
	return subcommand("keys", args, map[string]func([]string) error{
		"generate": func(a []string) error {
			fs := newFlags("keys generate", stderr)
			out := fs.String("out", "", "private key file to create (the public key goes to FILE.pub)")
			if err := parse(fs, a); err != nil {
				return err
			}
			if *out == "" {
				return usageError("--out is required")
			}
			if _, err := keyfile.Generate(*out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "private key: %s\npublic key:  %s.pub\n", *out, *out)
			return nil
		},
	})
}

// printReport writes what compiling refused, file by file, and returns the
// number of rejected lines.
func printReport(w io.Writer, r *rules.Report) int {
	for _, f := range r.Files {
		for _, p := range f.Problems {
			fmt.Fprintln(w, p.Error())
		}
		if f.Rejected > len(f.Problems) {
			fmt.Fprintf(w, "%s: ... and %d more rejected lines\n", f.File, f.Rejected-len(f.Problems))
		}
	}
	for _, e := range r.Warnings {
		fmt.Fprintf(w, "warning: %v\n", e)
	}
	return r.Rejected
}

func compilePolicy(path string, stderr io.Writer) (*rules.Ruleset, *rules.Report, error) {
	p, err := policy.Load(path)
	if err != nil {
		return nil, nil, err
	}
	rs, rep, err := rules.Compile(p)
	if err != nil {
		if rep != nil {
			printReport(stderr, rep)
		}
		return nil, rep, err
	}
	return rs, rep, nil
}

func rulesCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules check", stderr)
	path := fs.String("policy", "", "policy file (YAML)")
	strict := fs.Bool("strict", false, "treat rejected list lines as errors")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError("--policy is required")
	}
	start := time.Now()
	p, err := policy.Load(*path)
	if err != nil {
		return err
	}
	if err := checkFirewalls(p, *path, stderr); err != nil {
		return err
	}
	rs, rep, err := compilePolicy(*path, stderr)
	if err != nil {
		return err
	}
	rejected := printReport(stderr, rep)
	fmt.Fprintf(stdout, "%s: %d categories, %d lists, %d distinct domains, %d URLs, %d expressions; %d lines accepted, %d rejected (%s)\n",
		*path, len(rs.Categories()), len(rs.Lists()), rs.Domains(), rep.URLs, rep.Expressions, rep.Accepted, rejected, time.Since(start).Round(time.Millisecond))
	if *strict && rejected > 0 {
		return exitError(1)
	}
	return nil
}

// checkFirewalls builds every school's firewall as the control plane does
// at publication, and prints each problem with the line of the policy file
// it comes from: "policy.yaml:112: firewall.internet[0]: ...".
func checkFirewalls(p *policy.Policy, path string, w io.Writer) error {
	// The matrix is académie-wide: a bad line is reported once, with the
	// schools it fails for, not once per school.
	type problem struct {
		text    string
		line    int
		schools []string
	}
	var order []string
	found := map[string]*problem{}
	for _, s := range p.Schools {
		src, err := firewall.FromPolicy(p, s.UAI)
		if err == nil {
			_, err = firewall.Build(src, firewallReview)
		}
		for _, e := range firewall.Problems(err) {
			text := e.Error()
			field, _, _ := strings.Cut(text, ": ")
			pr := found[text]
			if pr == nil {
				pr = &problem{text: text, line: p.Line(field)}
				found[text] = pr
				order = append(order, text)
			}
			pr.schools = append(pr.schools, s.UAI)
		}
	}
	for _, text := range order {
		pr := found[text]
		where := path
		if pr.line > 0 {
			where = fmt.Sprintf("%s:%d", path, pr.line)
		}
		schools := "school " + pr.schools[0]
		if n := len(pr.schools); n > 1 {
			schools = fmt.Sprintf("schools %s and %d more", pr.schools[0], n-1)
		}
		fmt.Fprintf(w, "%s: %s: %s\n", where, schools, pr.text)
	}
	if len(order) > 0 {
		return fmt.Errorf("%s: %d firewall problem(s)", path, len(order))
	}
	return nil
}

// firewallReview is the edge side rules check builds with: the edge's
// default listener ports (each edge renders with its own).
var firewallReview = firewall.Config{DNSPort: edge.DefaultFirewallDNSPort, HTTPPort: edge.DefaultFirewallHTTPPort,
	HTTPSPort: edge.DefaultFirewallHTTPSPort}

func rulesCompile(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules compile", stderr)
	path := fs.String("policy", "", "policy file (YAML)")
	keyPath := fs.String("key", "", "Ed25519 private key of the académie (PEM)")
	out := fs.String("out", "", "bundle file to write")
	serial := fs.Uint64("serial", 1, "serial number of this policy version")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" || *keyPath == "" || *out == "" {
		return usageError("--policy, --key and --out are required")
	}
	key, err := keyfile.LoadPrivate(*keyPath)
	if err != nil {
		return err
	}
	rs, rep, err := compilePolicy(*path, stderr)
	if err != nil {
		return err
	}
	printReport(stderr, rep)
	data, err := rules.EncodeBundle(rs, *serial, time.Now(), key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: serial %d, %d domains, %d bytes\n", *out, *serial, rs.Domains(), len(data))
	return nil
}

// adhocPolicy builds a policy blocking cats from a UT1 tree (and the
// adult-top1m list when DIR is the blocklists folder that holds both).
func adhocPolicy(dir string, cats []string) (*policy.Policy, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p := &policy.Policy{Version: 1, Academie: "ad hoc"}
	if st, err := os.Stat(filepath.Join(abs, "ut1")); err == nil && st.IsDir() {
		p.Sources = append(p.Sources, policy.Source{Name: "ut1", Type: "ut1", Path: filepath.Join(abs, "ut1")})
		if _, err := os.Stat(filepath.Join(abs, "adult-top1m", "domains")); err == nil {
			p.Sources = append(p.Sources, policy.Source{Name: "adult-top1m", Type: "plain", Path: filepath.Join(abs, "adult-top1m", "domains"), Category: "adult"})
		}
	} else {
		p.Sources = append(p.Sources, policy.Source{Name: "ut1", Type: "ut1", Path: abs})
	}
	p.Profiles = []policy.Profile{{ID: "adhoc", Block: cats}}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

type explainJSON struct {
	URL          string        `json:"url"`
	Verdict      string        `json:"verdict"`
	Category     string        `json:"category,omitempty"`
	CategoryName string        `json:"category_name,omitempty"`
	List         string        `json:"list,omitempty"`
	Entry        string        `json:"entry,omitempty"`
	Kind         string        `json:"kind"`
	Profile      string        `json:"profile"`
	School       string        `json:"school,omitempty"`
	Matches      []rules.Match `json:"matches"`
}

func rulesExplain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules explain", stderr)
	path := fs.String("policy", "", "policy file (YAML)")
	bundlePath := fs.String("bundle", "", "signed bundle")
	pubPath := fs.String("pubkey", "", "public key that signed the bundle")
	lists := fs.String("lists", "", "UT1 directory (or a folder holding ut1/ and adult-top1m/) for an ad-hoc profile")
	block := fs.String("block", "", "comma-separated categories the ad-hoc profile blocks")
	zone := fs.String("zone", "", "zone whose profile applies (pedagogique, administratif...)")
	school := fs.String("school", "", "UAI of the school (default: the first school having --zone)")
	profile := fs.String("profile", "", "profile to apply directly")
	at := fs.String("at", "", "time of the request, RFC 3339 (default: now)")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("give at least one URL or host")
	}
	when := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageError("--at: %v", err)
		}
		when = t
	}
	var rs *rules.Ruleset
	switch {
	case *path != "":
		var err error
		if rs, _, err = compilePolicy(*path, stderr); err != nil {
			return err
		}
	case *bundlePath != "":
		if *pubPath == "" {
			return usageError("--bundle needs --pubkey")
		}
		pub, err := keyfile.LoadPublic(*pubPath)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(*bundlePath)
		if err != nil {
			return err
		}
		if rs, _, err = rules.DecodeBundle(data, pub); err != nil {
			return err
		}
	case *lists != "":
		var cats []string
		for _, c := range strings.Split(*block, ",") {
			if c = strings.TrimSpace(c); c != "" {
				cats = append(cats, c)
			}
		}
		p, err := adhocPolicy(*lists, cats)
		if err != nil {
			return err
		}
		if rs, _, err = rules.Compile(p); err != nil {
			return err
		}
		*profile = "adhoc"
	default:
		return usageError("give --policy, --bundle or --lists")
	}
	id, err := pickProfile(rs, *school, *zone, *profile)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, arg := range fs.Args() {
		q := rules.Query{Time: when}
		if strings.Contains(arg, "/") {
			q.URL = arg
		} else {
			q.Host = arg
		}
		ex := rs.Explain(id, q)
		v := ex.Verdict
		name := ""
		if c, ok := rs.Category(v.Category); ok {
			name = c.NameFR
		}
		if *asJSON {
			if err := enc.Encode(explainJSON{URL: arg, Verdict: v.Action.String(), Category: v.Category, CategoryName: name,
				List: v.List, Entry: v.Entry, Kind: v.Kind.String(), Profile: ex.Profile, School: ex.School, Matches: ex.Matches}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s", arg, strings.ToUpper(v.Action.String()))
		if v.Kind != rules.MatchNone {
			fmt.Fprintf(stdout, "\tcategory=%s list=%s entry=%s (%s)", v.Category, v.List, v.Entry, v.Kind)
		}
		fmt.Fprintf(stdout, "\tprofile=%s\n", ex.Profile)
		for _, m := range ex.Matches {
			fmt.Fprintf(stdout, "\t- %s %q in %s (category %s): %s\n", m.Kind, m.Entry, m.List, m.Category, m.Effect)
		}
	}
	return nil
}

func pickProfile(rs *rules.Ruleset, school, zone, profile string) (rules.ProfileID, error) {
	if profile != "" {
		if school != "" {
			if id, ok := rs.SchoolProfile(school, profile); ok {
				return id, nil
			}
		}
		id, ok := rs.Profile(profile)
		if !ok {
			return 0, usageError("no profile %q", profile)
		}
		return id, nil
	}
	if zone == "" {
		return rs.DefaultProfile(), nil
	}
	for _, s := range rs.Schools() {
		if school != "" && s.UAI != school {
			continue
		}
		if id, ok := rs.ZoneProfile(s.UAI, zone); ok {
			return id, nil
		}
	}
	return 0, usageError("no zone %q in %s", zone, map[bool]string{true: "school " + school, false: "any school"}[school != ""])
}
