package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

var (
	idPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	uaiPattern = regexp.MustCompile(`^[0-9]{7}[A-Z]$`)
)

// Days maps the day names accepted in windows to time.Weekday numbers.
var Days = map[string]int{
	"dim": 0, "lun": 1, "mar": 2, "mer": 3, "jeu": 4, "ven": 5, "sam": 6,
	"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
}

// Validate checks the policy's own consistency: identifiers, enumerations,
// addresses, references between profiles, zones and schools. References to
// categories are checked at compile time, when the sources have been read.
func (p *Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if p.Version != 1 {
		bad("version", "must be 1, got %d", p.Version)
	}
	sources := map[string]bool{}
	for i, s := range p.Sources {
		f := fmt.Sprintf("sources[%d]", i)
		if !idPattern.MatchString(s.Name) {
			bad(f+".name", "%q is not a valid identifier (a-z, 0-9, _ . -)", s.Name)
		}
		if sources[s.Name] {
			bad(f+".name", "duplicate source %q", s.Name)
		}
		sources[s.Name] = true
		if s.Path == "" {
			bad(f+".path", "required")
		}
		switch s.Type {
		case "ut1":
			if s.Category != "" {
				bad(f+".category", "not allowed for a ut1 tree (its directories are the categories)")
			}
		case "plain", "hosts", "adblock":
			if s.Category == "" {
				bad(f+".category", "required for a %s file", s.Type)
			}
			if len(s.Only) > 0 {
				bad(f+".only", "only applies to ut1 trees")
			}
		default:
			bad(f+".type", "must be ut1, plain, hosts or adblock, got %q", s.Type)
		}
	}
	cats := map[string]bool{}
	for i, c := range p.Categories {
		f := fmt.Sprintf("categories[%d]", i)
		if !idPattern.MatchString(c.ID) {
			bad(f+".id", "%q is not a valid identifier", c.ID)
		}
		if cats[c.ID] {
			bad(f+".id", "duplicate category %q", c.ID)
		}
		cats[c.ID] = true
		if c.Usage != "" && c.Usage != "black" && c.Usage != "white" {
			bad(f+".usage", "must be black or white, got %q", c.Usage)
		}
	}
	schools := map[string]bool{}
	for _, s := range p.Schools {
		schools[s.UAI] = true
	}
	lists := map[string]bool{}
	for i, l := range p.Lists {
		f := fmt.Sprintf("lists[%d]", i)
		if !idPattern.MatchString(l.ID) {
			bad(f+".id", "%q is not a valid identifier", l.ID)
		}
		if lists[l.ID] {
			bad(f+".id", "duplicate list %q", l.ID)
		}
		lists[l.ID] = true
		if l.Category == "" {
			bad(f+".category", "required")
		}
		if l.School != "" && !schools[l.School] {
			bad(f+".school", "unknown school %q", l.School)
		}
	}
	profiles := map[string]bool{}
	for i, pr := range p.Profiles {
		f := fmt.Sprintf("profiles[%d]", i)
		if !idPattern.MatchString(pr.ID) {
			bad(f+".id", "%q is not a valid identifier", pr.ID)
		}
		if profiles[pr.ID] {
			bad(f+".id", "duplicate profile %q", pr.ID)
		}
		profiles[pr.ID] = true
		enum(bad, f+".youtube", pr.YouTube, "", "strict", "moderate")
		enum(bad, f+".https", pr.HTTPS, "", "sni", "intercept")
		enum(bad, f+".no_sni", pr.NoSNI, "", "refuse", "allow")
		enum(bad, f+".block_answer", pr.BlockAnswer, "", "nxdomain", "null", "blockpage")
		for j, ps := range pr.ConnectPorts {
			if _, _, err := PortSpan(ps); err != nil {
				bad(fmt.Sprintf("%s.connect_ports[%d]", f, j), "%v", err)
			}
		}
		blocked := map[string]bool{}
		for _, c := range pr.Block {
			blocked[c] = true
		}
		for j, c := range pr.Allow {
			if blocked[c] {
				bad(fmt.Sprintf("%s.allow[%d]", f, j), "category %q is both blocked and allowed", c)
			}
		}
		for j, w := range pr.Windows {
			if _, _, err := w.Minutes(); err != nil {
				bad(fmt.Sprintf("%s.windows[%d]", f, j), "%v", err)
			}
			if len(w.Categories) == 0 {
				bad(fmt.Sprintf("%s.windows[%d].categories", f, j), "required")
			}
			enum(bad, fmt.Sprintf("%s.windows[%d].action", f, j), w.Action, "", "allow", "block")
			for k, d := range w.Days {
				if _, ok := Days[strings.ToLower(d)]; !ok {
					bad(fmt.Sprintf("%s.windows[%d].days[%d]", f, j, k), "unknown day %q (lun mar mer jeu ven sam dim)", d)
				}
			}
		}
	}
	if p.DefaultProfile != "" && !profiles[p.DefaultProfile] {
		bad("default_profile", "unknown profile %q", p.DefaultProfile)
	}
	if len(p.Profiles) == 0 {
		bad("profiles", "at least one profile is required")
	}
	seenUAI := map[string]bool{}
	for i, s := range p.Schools {
		f := fmt.Sprintf("schools[%d]", i)
		if !uaiPattern.MatchString(s.UAI) {
			bad(f+".uai", "%q is not a UAI (7 digits and a capital letter, e.g. 0671234X)", s.UAI)
		}
		if seenUAI[s.UAI] {
			bad(f+".uai", "duplicate school %q", s.UAI)
		}
		seenUAI[s.UAI] = true
		if s.Name == "" {
			bad(f+".name", "required")
		}
		type owned struct {
			prefix netip.Prefix
			zone   string
		}
		var seen []owned
		zones := map[string]bool{}
		for j, z := range s.Zones {
			zf := fmt.Sprintf("%s.zones[%d]", f, j)
			if !idPattern.MatchString(z.Name) {
				bad(zf+".name", "%q is not a valid identifier", z.Name)
			}
			if zones[z.Name] {
				bad(zf+".name", "duplicate zone %q", z.Name)
			}
			zones[z.Name] = true
			if !profiles[z.Profile] {
				bad(zf+".profile", "unknown profile %q", z.Profile)
			}
			if len(z.CIDRs) == 0 && len(z.Interfaces) == 0 {
				bad(zf, "needs cidrs or interfaces")
			}
			for k, c := range z.CIDRs {
				pfx, err := netip.ParsePrefix(c)
				if err != nil {
					bad(fmt.Sprintf("%s.cidrs[%d]", zf, k), "%q is not a CIDR prefix", c)
					continue
				}
				if pfx.Masked() != pfx {
					bad(fmt.Sprintf("%s.cidrs[%d]", zf, k), "%q has host bits set (did you mean %s?)", c, pfx.Masked())
					continue
				}
				for _, o := range seen {
					if o.prefix.Overlaps(pfx) {
						bad(fmt.Sprintf("%s.cidrs[%d]", zf, k), "%s overlaps %s of zone %q", pfx, o.prefix, o.zone)
					}
				}
				seen = append(seen, owned{pfx, z.Name})
			}
			for k, ifn := range z.Interfaces {
				if ifn == "" || len(ifn) > 15 || strings.ContainsAny(ifn, "/ \t") {
					bad(fmt.Sprintf("%s.interfaces[%d]", zf, k), "%q is not a valid interface name (1-15 characters)", ifn)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func enum(bad func(string, string, ...any), field, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	bad(field, "must be one of %s, got %q", strings.Join(allowed[1:], ", "), v)
}

// Minutes returns the window's bounds in minutes after midnight.
func (w Window) Minutes() (from, to int, err error) {
	if from, err = hhmm(w.From); err != nil {
		return 0, 0, fmt.Errorf("from: %w", err)
	}
	if to, err = hhmm(w.To); err != nil {
		return 0, 0, fmt.Errorf("to: %w", err)
	}
	if to <= from {
		return 0, 0, fmt.Errorf("to %s is not after from %s", w.To, w.From)
	}
	return from, to, nil
}

func hhmm(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return h*60 + m, nil
}
