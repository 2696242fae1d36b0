package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"vigie/controlplane/auth"
	"vigie/rules"
	"vigie/rules/normalize"
	"vigie/rules/policy"
)

// ExplainRequest asks what a place of a school gets for an address: the
// question of the UI's Tester and of "vigie admin explain".
type ExplainRequest struct {
	// Address is a URL or a domain.
	Address string `json:"address"`
	UAI     string `json:"uai"`
	// Zone names the zone; IP instead finds it from a device's address.
	Zone string `json:"zone,omitempty"`
	IP   string `json:"ip,omitempty"`
	// At is the moment (time windows); now when empty.
	At *time.Time `json:"at,omitempty"`
	// Draft compiles the draft instead of reading the version in force
	// (RSSI only: seconds and hundreds of MB on the full UT1 lists).
	Draft bool `json:"draft,omitempty"`
}

// ExplainMatch is one list entry concerning the address.
type ExplainMatch struct {
	rules.Match
	CategoryName string `json:"category_name,omitempty"`
}

// ExplainResult is the verdict and why.
type ExplainResult struct {
	Host string `json:"host"`
	URL  string `json:"url,omitempty"`
	// Block is the verdict; Kind says what decided it (domain, url,
	// expression, none, unfiltered, invalid).
	Block        bool   `json:"block"`
	Kind         string `json:"kind"`
	Entry        string `json:"entry,omitempty"`
	List         string `json:"list,omitempty"`
	Category     string `json:"category,omitempty"`
	CategoryName string `json:"category_name,omitempty"`
	UAI          string `json:"uai"`
	SchoolName   string `json:"school_name"`
	// Zone is the zone asked for, or the one IP belongs to ("" when IP
	// belongs to none: the school's strictest profile applies).
	Zone    string         `json:"zone"`
	Profile policy.Profile `json:"profile"`
	// Source is "published" (with Serial) or "draft".
	Source      string         `json:"source"`
	Serial      uint64         `json:"serial,omitempty"`
	At          time.Time      `json:"at"`
	CompileTime time.Duration  `json:"compile_ns,omitempty"`
	Matches     []ExplainMatch `json:"matches"`
}

// Errors of ParseAddress.
var (
	ErrEmptyAddress   = errors.New("empty")
	ErrAddressTooLong = errors.New("too long")
)

// ParseAddress reads what a person types as an address: a URL (with or
// without scheme) or a domain. fullURL is empty for a bare domain.
func ParseAddress(in string) (host, fullURL string, err error) {
	in = strings.TrimSpace(in)
	if in == "" {
		return "", "", ErrEmptyAddress
	}
	if len(in) > 4096 {
		return "", "", ErrAddressTooLong
	}
	if strings.Contains(in, "/") {
		raw := in
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		h, _, err := normalize.URL(raw)
		if err != nil {
			return "", "", err
		}
		return h, raw, nil
	}
	h, err := normalize.Host(strings.TrimPrefix(in, "*."))
	return h, "", err
}

// explainState holds the compiled version in force, decoded once per
// serial from the bundle the publisher keeps in memory, and allows one
// draft compilation at a time.
type explainState struct {
	mu     sync.Mutex
	serial uint64
	rs     *rules.Ruleset

	compiling chan struct{}
}

// PublishedRules returns the Ruleset of the version in force (nil before
// the first publication). The Ruleset views the bundle's bytes: this
// costs a verification and a few allocations, not a copy of the lists.
func (s *Server) PublishedRules(ctx context.Context) (*rules.Ruleset, uint64, error) {
	head := s.pub.Head()
	if head.Serial == 0 {
		return nil, 0, nil
	}
	c := &s.explain
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rs != nil && c.serial == head.Serial {
		return c.rs, c.serial, nil
	}
	b, err := s.pub.Bundle(ctx, head.Serial)
	if err != nil {
		return nil, 0, fmt.Errorf("api: published version %d: %w", head.Serial, err)
	}
	// Integrity only, as the publisher reads its stored versions: the
	// version in force may predate a rotation of the académie key.
	rs, hdr, err := rules.DecodeBundle(b.Raw, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("api: published version %d: %w", head.Serial, err)
	}
	c.rs, c.serial = rs, hdr.Serial
	return rs, hdr.Serial, nil
}

// Problem kinds of explain, which the Tester turns into its own sentences.
const (
	ExplainNothingPublished = "nothing-published"
	ExplainNoSchool         = "school-not-in-version"
	ExplainNoZone           = "zone-not-in-version"
	ExplainBusy             = "explain-busy"
	ExplainDraftInvalid     = "draft-invalid"
)

func (s *Server) explainAddress(w http.ResponseWriter, r *http.Request) error {
	var req ExplainRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	id := identity(r)
	if !id.CanSeeSchool(req.UAI) {
		return s.schoolScope(r, req.UAI)
	}
	host, full, err := ParseAddress(req.Address)
	if err != nil {
		return Errorf("validation", "address : ni un nom de domaine ni une adresse valide (%v)", err)
	}
	var addr netip.Addr
	if req.IP != "" {
		if addr, err = netip.ParseAddr(req.IP); err != nil {
			return Errorf("validation", "ip : « %s » n'est pas une adresse IP", req.IP)
		}
	} else if req.Zone == "" {
		return Errorf("validation", "zone ou ip est requis")
	}
	res := &ExplainResult{Host: host, URL: full, UAI: req.UAI, At: s.now()}
	if req.At != nil {
		res.At = *req.At
	}
	var rs *rules.Ruleset
	if req.Draft {
		if id.Role != auth.RSSI {
			return Errorf("forbidden", "seul le RSSI teste le brouillon")
		}
		select {
		case s.explain.compiling <- struct{}{}:
		default:
			return Errorf(ExplainBusy, "réessayez dans quelques secondes")
		}
		start := time.Now()
		c, err := s.pub.Compile(r.Context())
		<-s.explain.compiling
		if err != nil {
			p := validationProblem(err)
			p.Type, p.Title, p.Status = ProblemType(ExplainDraftInvalid), kinds[ExplainDraftInvalid].title, kinds[ExplainDraftInvalid].status
			return p
		}
		rs, res.Source, res.CompileTime = c.Rules, "draft", time.Since(start)
	} else {
		if rs, res.Serial, err = s.PublishedRules(r.Context()); err != nil {
			return err
		}
		if rs == nil {
			return Errorf(ExplainNothingPublished, "testez le brouillon (draft)")
		}
		res.Source = "published"
	}
	school, ok := rs.School(req.UAI)
	if !ok {
		return Errorf(ExplainNoSchool, "%s", req.UAI)
	}
	res.SchoolName = school.Name
	var pid rules.ProfileID
	if addr.IsValid() {
		res.Zone, pid = rs.Zone(req.UAI, addr)
	} else {
		if pid, ok = rs.ZoneProfile(req.UAI, req.Zone); !ok {
			return Errorf(ExplainNoZone, "%s (%s)", req.Zone, school.Name)
		}
		res.Zone = req.Zone
	}
	res.Profile = *rs.ProfileSettings(pid)
	catName := func(id string) string {
		if c, ok := rs.Category(id); ok {
			return c.NameFR
		}
		return ""
	}
	ex := rs.Explain(pid, rules.Query{Host: host, URL: full, Time: res.At})
	vd := ex.Verdict
	res.Block = vd.Action == rules.Block
	res.Kind, res.Entry, res.List, res.Category, res.CategoryName = vd.Kind.String(), vd.Entry, vd.List, vd.Category, catName(vd.Category)
	res.Matches = []ExplainMatch{}
	for _, m := range ex.Matches {
		res.Matches = append(res.Matches, ExplainMatch{Match: m, CategoryName: catName(m.Category)})
	}
	return writeJSON(w, http.StatusOK, res)
}
