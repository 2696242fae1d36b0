// Package rules is Vigie's compiled policy: the one structure every verdict
// comes from. A Ruleset is built from a policy file and its lists (Compile)
// or from a signed bundle (Load); it is immutable, so the edge swaps a new
// generation in with one atomic pointer store while queries keep flowing
// through the old one.
//
// A host matches a list when it or any parent domain is listed. Domains are
// kept as 64-bit fingerprints (package domainset) carrying the index of the
// set of lists they belong to; URL prefixes are kept per host; expressions
// are RE2, so no list can make a request take more than linear time.
package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"vigie/rules/domainset"
	"vigie/rules/policy"
)

// Action is what happens to a request.
type Action uint8

const (
	Allow Action = iota
	Block
)

func (a Action) String() string {
	if a == Block {
		return "block"
	}
	return "allow"
}

// MatchKind says which kind of entry decided a verdict.
type MatchKind uint8

const (
	// MatchNone: nothing listed the request; the default (allow) applied.
	MatchNone MatchKind = iota
	MatchDomain
	MatchURL
	MatchExpression
	// MatchUnfiltered: the profile filters nothing.
	MatchUnfiltered
)

func (k MatchKind) String() string {
	switch k {
	case MatchDomain:
		return "domain"
	case MatchURL:
		return "url"
	case MatchExpression:
		return "expression"
	case MatchUnfiltered:
		return "unfiltered"
	case MatchInvalid:
		return "invalid"
	}
	return "none"
}

// Verdict is the decision on one request. Its strings point into the
// Ruleset or into the query, so producing one does not allocate.
type Verdict struct {
	Action Action
	Kind   MatchKind
	// Category is the category identifier of the deciding list ("adult").
	Category string
	// List is the deciding list's identifier ("ut1/adult").
	List string
	// Entry is the matching entry: the listed domain, URL prefix or expression.
	Entry string
}

// Query is what a data-plane component asks about.
type Query struct {
	// Host is a DNS name, SNI or Host header, in any case, with or without
	// a trailing dot or port.
	Host string
	// URL is the full URL when known (plain HTTP, intercepted HTTPS).
	URL string
	// Time is when the request happened; time windows depend on it.
	Time time.Time
}

// ProfileID names a compiled profile inside one Ruleset. Identifiers are
// not stable across generations: look them up again after a swap.
type ProfileID int32

// CategoryInfo describes one category.
type CategoryInfo struct {
	ID     string `json:"id"`
	NameFR string `json:"name_fr,omitempty"`
	NameEN string `json:"name_en,omitempty"`
	DescFR string `json:"desc_fr,omitempty"`
	DescEN string `json:"desc_en,omitempty"`
	// Usage is black or white: the category's default use.
	Usage  string   `json:"usage"`
	Source string   `json:"source,omitempty"`
	Alias  []string `json:"aliases,omitempty"`
}

// ListInfo describes one list: a named set of entries of one category.
type ListInfo struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	// School scopes a custom list to one UAI.
	School  string `json:"school,omitempty"`
	Source  string `json:"source"`
	Domains int    `json:"domains"`
	URLs    int    `json:"urls"`
	// Expressions and StrictExpressions are kept as text: they are
	// compiled on load (RE2 compilation is linear and small).
	Expressions       []string `json:"expressions,omitempty"`
	StrictExpressions []string `json:"strict_expressions,omitempty"`
}

// meta is the part of a Ruleset that is plain data, stored as JSON in the
// bundle. Everything else is derived from it or stored as binary sections.
type meta struct {
	Academie       string           `json:"academie"`
	Contact        string           `json:"contact,omitempty"`
	Categories     []CategoryInfo   `json:"categories"`
	Lists          []ListInfo       `json:"lists"`
	Profiles       []policy.Profile `json:"profiles"`
	Schools        []policy.School  `json:"schools"`
	DefaultProfile string           `json:"default_profile"`
	Firewall       policy.Firewall  `json:"firewall"`
}

// Ruleset is one compiled, immutable policy generation.
type Ruleset struct {
	meta meta

	domains *domainset.Set
	// sets holds, for each set index of the domain set, a bitset over
	// lists of `words` words.
	sets  []uint64
	words int
	urls  map[uint64][]urlRule
	// exprs[i] is the compiled expression of list i (nil when none).
	exprs, strictExprs []*regexp.Regexp
	// exprEach[i] are list i's expressions compiled one by one, to name
	// the one that matched on a refusal without compiling it then.
	exprEach, strictEach [][]*regexp.Regexp

	profiles   []compiledProfile
	byName     map[string]ProfileID // base profiles
	bySchool   map[schoolProfile]ProfileID
	schools    map[string]*schoolZones
	categories map[string]int
	paris      *time.Location
	defaultID  ProfileID
	// vcache holds recent domain verdicts of this generation (nil: off).
	vcache *verdictCache
}

type urlRule struct {
	rest string // path prefix, starting with "/"
	list uint16
	host string // the listed host, for explanations
}

type schoolProfile struct{ uai, profile string }

type schoolZones struct {
	zones   []zoneRange
	profile map[string]ProfileID // zone name -> profile
	strict  ProfileID
}

type zoneRange struct {
	prefix netip.Prefix
	zone   string
	id     ProfileID
}

type compiledProfile struct {
	policy.Profile
	school       string
	block, allow []uint64
	// exprLists are the lists whose expressions apply when blocked.
	exprLists []int
	windows   []compiledWindow
}

type compiledWindow struct {
	mask     []uint64
	block    bool // true: block only during the window; false: allow during it
	days     uint8
	from, to int
}

// MarshalText makes kinds readable in JSON.
func (k MatchKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind back, for clients of the API's explanations.
func (k *MatchKind) UnmarshalText(b []byte) error {
	for _, c := range []MatchKind{MatchNone, MatchDomain, MatchURL, MatchExpression, MatchUnfiltered, MatchInvalid} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("rules: unknown match kind %q", b)
}
