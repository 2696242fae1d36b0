// Package policy is the human-editable form of the académie's filtering
// policy: where the lists come from, the custom lists, the profiles, the
// schools with their zones, and the firewall section. It is decoded strictly
// (an unknown field is an error naming the file and line) and validated as a
// whole before anything is compiled, so that a typo never reaches a school.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Policy is the root of a policy file.
type Policy struct {
	// Version of the file format; only 1 exists.
	Version int `yaml:"version" json:"version"`
	// Academie names the authority publishing the policy (shown on block pages).
	Academie string `yaml:"academie" json:"academie"`
	// Contact is the académie-wide fallback contact shown on block pages.
	Contact string `yaml:"contact,omitempty" json:"contact,omitempty"`
	// Sources are list trees and files imported from outside (UT1, hosts files...).
	Sources []Source `yaml:"sources" json:"sources"`
	// Categories declares académie-made categories and may override the
	// names of imported ones.
	Categories []Category `yaml:"categories,omitempty" json:"categories,omitempty"`
	// Lists are custom lists written in the policy itself.
	Lists []List `yaml:"lists,omitempty" json:"lists,omitempty"`
	// Profiles say what a zone may reach.
	Profiles []Profile `yaml:"profiles" json:"profiles"`
	// Schools are the établissements with their IP plan.
	Schools []School `yaml:"schools" json:"schools"`
	// DefaultProfile applies to clients whose address falls in no zone.
	// Empty means the strictest profile (the one blocking most categories).
	DefaultProfile string `yaml:"default_profile,omitempty" json:"default_profile,omitempty"`
	// Firewall is the zone-to-zone flow matrix rendered into nftables.
	Firewall Firewall `yaml:"firewall,omitempty" json:"firewall"`

	// Dir is the directory relative paths are resolved against (the policy
	// file's directory). Not part of the file.
	Dir string `yaml:"-" json:"-"`
	// doc is the parsed YAML, kept so that errors found later (the
	// firewall's) can name their line (see Line).
	doc *yaml.Node
}

// Source is one external list tree or file.
type Source struct {
	// Name prefixes the list identifiers built from this source ("ut1" gives "ut1/adult").
	Name string `yaml:"name" json:"name"`
	// Type is ut1 (a squidGuard directory tree), plain, hosts or adblock.
	Type string `yaml:"type" json:"type"`
	// Path of the tree or file, relative to the policy file.
	Path string `yaml:"path" json:"path"`
	// Category receives the entries of a single-file source (plain, hosts, adblock).
	Category string `yaml:"category,omitempty" json:"category,omitempty"`
	// Only restricts a ut1 source to these categories; empty imports all.
	Only []string `yaml:"only,omitempty" json:"only,omitempty"`
}

// Category is a category declared or renamed in the policy.
type Category struct {
	ID     string `yaml:"id" json:"id"`
	NameFR string `yaml:"name_fr,omitempty" json:"name_fr,omitempty"`
	NameEN string `yaml:"name_en,omitempty" json:"name_en,omitempty"`
	DescFR string `yaml:"desc_fr,omitempty" json:"desc_fr,omitempty"`
	DescEN string `yaml:"desc_en,omitempty" json:"desc_en,omitempty"`
	// Usage is black (entries are things to block) or white (exceptions).
	Usage string `yaml:"usage,omitempty" json:"usage,omitempty"`
}

// List is a custom list written in the policy.
type List struct {
	ID       string `yaml:"id" json:"id"`
	Category string `yaml:"category" json:"category"`
	// School restricts the list to one établissement (its UAI). A school
	// list applies to every zone of that school: it blocks when its
	// category's usage is black and allows when it is white.
	School      string   `yaml:"school,omitempty" json:"school,omitempty"`
	Comment     string   `yaml:"comment,omitempty" json:"comment,omitempty"`
	Domains     []string `yaml:"domains,omitempty" json:"domains,omitempty"`
	URLs        []string `yaml:"urls,omitempty" json:"urls,omitempty"`
	Expressions []string `yaml:"expressions,omitempty" json:"expressions,omitempty"`
}

// Profile is what a zone's clients may reach and how refusals look.
type Profile struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Block lists the categories refused.
	Block []string `yaml:"block,omitempty" json:"block,omitempty"`
	// Allow lists exception categories; at equal specificity they win over Block.
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	// SafeSearch forces safe search on the search engines and YouTube.
	SafeSearch bool `yaml:"safesearch,omitempty" json:"safesearch,omitempty"`
	// YouTube is strict or moderate restricted mode when SafeSearch is on.
	YouTube string `yaml:"youtube,omitempty" json:"youtube,omitempty"`
	// HTTPS is sni (decide on the TLS server name, never decrypt) or
	// intercept (managed devices trusting the académie CA).
	HTTPS string `yaml:"https,omitempty" json:"https,omitempty"`
	// NoSNI is refuse or allow: what to do with TLS without a server name.
	NoSNI string `yaml:"no_sni,omitempty" json:"no_sni,omitempty"`
	// BlockAnswer is the DNS answer for blocked names: nxdomain, null or blockpage.
	BlockAnswer string `yaml:"block_answer,omitempty" json:"block_answer,omitempty"`
	// ConnectPorts are the ports a CONNECT through the explicit proxy may
	// reach ("443", "8443", "8000-8100"); empty means 443 only.
	ConnectPorts []string `yaml:"connect_ports,omitempty" json:"connect_ports,omitempty"`
	// HTTPSBlockPage intercepts the HTTPS connections the profile refuses,
	// and only those, to show the block page instead of a TLS error. It
	// needs the académie CA on the devices and on the edge; allowed
	// connections and banking and health sites are never intercepted.
	HTTPSBlockPage bool `yaml:"https_block_page,omitempty" json:"https_block_page,omitempty"`
	// StrictExpressions also applies the very_restrictive_expression files.
	StrictExpressions bool `yaml:"strict_expressions,omitempty" json:"strict_expressions,omitempty"`
	// Windows lift or impose blocks at given times (Europe/Paris).
	Windows []Window `yaml:"windows,omitempty" json:"windows,omitempty"`
	// Unfiltered zones get no filtering at all (servers, for instance).
	Unfiltered bool `yaml:"unfiltered,omitempty" json:"unfiltered,omitempty"`
}

// Window changes a profile during given hours in Europe/Paris.
type Window struct {
	// Categories concerned by the window.
	Categories []string `yaml:"categories" json:"categories"`
	// Action is allow (the categories are allowed during the window, for
	// example social networks at lunch) or block (blocked only during it).
	Action string `yaml:"action,omitempty" json:"action,omitempty"`
	// Days are lun mar mer jeu ven sam dim (or mon..sun); empty means every day.
	Days []string `yaml:"days,omitempty" json:"days,omitempty"`
	// From and To are "HH:MM", To exclusive.
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
}

// School is one établissement.
type School struct {
	UAI         string `yaml:"uai" json:"uai"`
	Name        string `yaml:"name" json:"name"`
	Commune     string `yaml:"commune,omitempty" json:"commune,omitempty"`
	Departement string `yaml:"departement,omitempty" json:"departement,omitempty"`
	// Contact is who a pupil or teacher asks about a refusal.
	Contact string `yaml:"contact,omitempty" json:"contact,omitempty"`
	Zones   []Zone `yaml:"zones" json:"zones"`
}

// Zone is a named part of a school's IP plan.
type Zone struct {
	Name       string   `yaml:"name" json:"name"`
	CIDRs      []string `yaml:"cidrs" json:"cidrs"`
	Interfaces []string `yaml:"interfaces,omitempty" json:"interfaces,omitempty"`
	Profile    string   `yaml:"profile" json:"profile"`
}

// Firewall is the flow matrix between zones and to the internet.
type Firewall struct {
	// Flows allowed between zones; anything else between zones is denied.
	Flows []Flow `yaml:"flows,omitempty" json:"flows,omitempty"`
	// Internet says what each zone may open to the internet: services
	// (web, dns, ntp) and explicit protocol and ports. Egress is
	// default-deny: anything not listed is dropped and counted.
	Internet []Flow `yaml:"internet,omitempty" json:"internet,omitempty"`
	// Management lists who may reach the gateway itself (SSH, metrics...):
	// a zone, "internet", or a source prefix such as the académie's
	// Prometheus.
	Management []Flow `yaml:"management,omitempty" json:"management,omitempty"`
}

// Flow is one line of the matrix.
type Flow struct {
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to,omitempty" json:"to,omitempty"`
	// Services names what the line opens instead of Proto and Ports: web,
	// dns and ntp in the internet section, metrics in the management one.
	Services []string `yaml:"services,omitempty" json:"services,omitempty"`
	Proto    string   `yaml:"proto,omitempty" json:"proto,omitempty"`
	Ports    []string `yaml:"ports,omitempty" json:"ports,omitempty"`
	Action   string   `yaml:"action,omitempty" json:"action,omitempty"`
	Comment  string   `yaml:"comment,omitempty" json:"comment,omitempty"`
}

// Load reads, strictly decodes and validates a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	p.Dir = filepath.Dir(path)
	return p, nil
}

// Parse strictly decodes and validates policy text; name is used in errors.
func Parse(data []byte, name string) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty policy", name)
		}
		return nil, fmt.Errorf("%s: %w", name, yamlError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document", name)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil {
		p.doc = &doc
	}
	return &p, nil
}

// yamlError rewrites yaml.v3's "yaml: line 3: field x not found in type
// policy.Profile" into "line 3: unknown field "x" in profile" style text.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s", joinErrors(te.Errors))
	}
	return err
}

func joinErrors(errs []string) string {
	var b bytes.Buffer
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e)
	}
	return b.String()
}
