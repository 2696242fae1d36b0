package rules

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"vigie/rules/domainset"
	"vigie/rules/listfmt"
	"vigie/rules/normalize"
	"vigie/rules/policy"
)

// MaxLists bounds the number of lists (bitset width); far above the ~80 UT1
// categories plus one or two custom lists per school.
const MaxLists = 4096

// Report tells what compiling read and what it refused.
type Report struct {
	// Files has one entry per list file read, with its rejected lines.
	Files []listfmt.Report
	// Warnings are problems in sources that did not stop the compilation
	// (an odd global_usage block, an unreadable optional file).
	Warnings []error
	// Accepted and Rejected count list lines over all files.
	Accepted, Rejected int
	// Domains is the number of distinct listed names after merging.
	Domains, URLs, Expressions int
}

type keyList struct {
	key  uint64
	list uint16
}

type compiler struct {
	p        *policy.Policy
	m        meta
	report   Report
	catIndex map[string]int    // category id -> index in m.Categories
	aliases  map[string]string // alias -> category id
	keys     []keyList
	urls     map[uint64][]urlRule
}

// Compile reads every source of the policy, merges all lists and returns the
// compiled Ruleset. Bad lines in external lists are reported and skipped;
// errors in the policy itself (unknown category, bad custom entry) fail the
// compilation, since an RSSI typo must never be published silently.
func Compile(p *policy.Policy) (*Ruleset, *Report, error) {
	c := &compiler{
		p:        p,
		catIndex: map[string]int{},
		aliases:  map[string]string{},
		urls:     map[uint64][]urlRule{},
	}
	c.m.Academie, c.m.Contact, c.m.Firewall = p.Academie, p.Contact, p.Firewall
	c.m.Schools = p.Schools
	if err := c.readSources(); err != nil {
		return nil, &c.report, err
	}
	if err := c.customCategories(); err != nil {
		return nil, &c.report, err
	}
	if err := c.customLists(); err != nil {
		return nil, &c.report, err
	}
	if err := c.resolveProfiles(); err != nil {
		return nil, &c.report, err
	}
	set, sets, words, err := mergeDomains(c.keys, len(c.m.Lists))
	if err != nil {
		return nil, &c.report, err
	}
	c.keys = nil
	c.report.Domains = set.Len()
	rs, err := newRuleset(c.m, set, sets, words, c.urls)
	if err != nil {
		return nil, &c.report, err
	}
	return rs, &c.report, nil
}

func (c *compiler) path(p string) string {
	if filepath.IsAbs(p) || c.p.Dir == "" {
		return p
	}
	return filepath.Join(c.p.Dir, p)
}

func (c *compiler) addCategory(ci CategoryInfo) {
	if i, ok := c.catIndex[ci.ID]; ok {
		// A second source for a known category only fills blanks.
		old := &c.m.Categories[i]
		if old.NameFR == "" {
			old.NameFR, old.DescFR = ci.NameFR, ci.DescFR
		}
		if old.NameEN == "" {
			old.NameEN, old.DescEN = ci.NameEN, ci.DescEN
		}
		return
	}
	c.catIndex[ci.ID] = len(c.m.Categories)
	c.m.Categories = append(c.m.Categories, ci)
}

func (c *compiler) addList(li ListInfo) (uint16, error) {
	if len(c.m.Lists) >= MaxLists {
		return 0, fmt.Errorf("rules: more than %d lists", MaxLists)
	}
	for _, l := range c.m.Lists {
		if l.ID == li.ID {
			return 0, fmt.Errorf("rules: duplicate list %q", li.ID)
		}
	}
	c.m.Lists = append(c.m.Lists, li)
	return uint16(len(c.m.Lists) - 1), nil
}

// emitter returns the function that files a parsed entry into list idx.
func (c *compiler) emitter(idx uint16) func(listfmt.Entry) {
	return func(e listfmt.Entry) {
		li := &c.m.Lists[idx]
		switch e.Kind {
		case listfmt.Domain:
			if e.Allow {
				// "@@" lines in a blocklist would invert its meaning for
				// one name; Vigie keeps exceptions in their own lists.
				c.report.Warnings = append(c.report.Warnings, fmt.Errorf("%s:%d: exception line ignored in list %s (put exceptions in a white list)", li.ID, e.Line, li.ID))
				return
			}
			c.keys = append(c.keys, keyList{domainset.Fingerprint(e.Value), idx})
			li.Domains++
		case listfmt.URL:
			host, rest, _ := strings.Cut(e.Value, "/")
			k := domainset.Fingerprint(host)
			c.urls[k] = append(c.urls[k], urlRule{rest: "/" + rest, list: idx, host: host})
			li.URLs++
			c.report.URLs++
		case listfmt.Expression:
			if e.Strict {
				li.StrictExpressions = append(li.StrictExpressions, e.Value)
			} else {
				li.Expressions = append(li.Expressions, e.Value)
			}
			c.report.Expressions++
		}
	}
}

func (c *compiler) account(rs []listfmt.Report) {
	for _, r := range rs {
		c.report.Files = append(c.report.Files, r)
		c.report.Accepted += r.Accepted
		c.report.Rejected += r.Rejected
	}
}

func (c *compiler) readSources() error {
	for i, s := range c.p.Sources {
		field := fmt.Sprintf("sources[%d] (%s)", i, s.Name)
		switch s.Type {
		case "ut1":
			if err := c.readUT1(s); err != nil {
				return fmt.Errorf("rules: %s: %w", field, err)
			}
		default:
			if err := c.readFile(s); err != nil {
				return fmt.Errorf("rules: %s: %w", field, err)
			}
		}
	}
	return nil
}

func (c *compiler) readUT1(s policy.Source) error {
	tree, problems, err := listfmt.ReadTree(c.path(s.Path))
	if err != nil {
		return err
	}
	for _, p := range problems {
		c.report.Warnings = append(c.report.Warnings, p)
	}
	for alias, id := range tree.Aliases {
		c.aliases[alias] = id
	}
	only := map[string]bool{}
	for _, id := range s.Only {
		cat, ok := tree.Category(id)
		if !ok {
			return fmt.Errorf("only: no category %q in %s", id, tree.Dir)
		}
		only[cat.ID] = true
	}
	for i := range tree.Categories {
		cat := &tree.Categories[i]
		if len(only) > 0 && !only[cat.ID] {
			continue
		}
		c.addCategory(CategoryInfo{
			ID: cat.ID, NameFR: cat.NameFR, NameEN: cat.NameEN, DescFR: cat.DescFR, DescEN: cat.DescEN,
			Usage: cat.Usage, Source: s.Name, Alias: cat.Aliases,
		})
		idx, err := c.addList(ListInfo{ID: s.Name + "/" + cat.ID, Category: cat.ID, Source: s.Name})
		if err != nil {
			return err
		}
		reports, err := tree.Parse(cat, c.emitter(idx))
		c.account(reports)
		if err != nil {
			return fmt.Errorf("category %s: %w", cat.ID, err)
		}
	}
	return nil
}

func (c *compiler) readFile(s policy.Source) error {
	format := map[string]listfmt.Format{"plain": listfmt.FormatPlain, "hosts": listfmt.FormatHosts, "adblock": listfmt.FormatAdBlock}[s.Type]
	f, err := os.Open(c.path(s.Path))
	if err != nil {
		return err
	}
	defer f.Close()
	cat := c.resolve(s.Category)
	if _, ok := c.catIndex[cat]; !ok {
		// A file may define its own category; custom categories of the
		// policy can name and describe it.
		c.addCategory(CategoryInfo{ID: cat, Usage: "black", Source: s.Name})
	}
	idx, err := c.addList(ListInfo{ID: s.Name, Category: cat, Source: s.Name})
	if err != nil {
		return err
	}
	r, err := listfmt.ParseDomains(f, c.path(s.Path), format, c.emitter(idx))
	c.account([]listfmt.Report{r})
	return err
}

func (c *compiler) resolve(id string) string {
	if real, ok := c.aliases[id]; ok {
		return real
	}
	return id
}

func (c *compiler) customCategories() error {
	for _, pc := range c.p.Categories {
		id := c.resolve(pc.ID)
		if i, ok := c.catIndex[id]; ok {
			// The policy renames or re-describes an imported category.
			cur := &c.m.Categories[i]
			for dst, src := range map[*string]string{&cur.NameFR: pc.NameFR, &cur.NameEN: pc.NameEN, &cur.DescFR: pc.DescFR, &cur.DescEN: pc.DescEN, &cur.Usage: pc.Usage} {
				if src != "" {
					*dst = src
				}
			}
			continue
		}
		usage := pc.Usage
		if usage == "" {
			usage = "black"
		}
		c.addCategory(CategoryInfo{ID: pc.ID, NameFR: pc.NameFR, NameEN: pc.NameEN, DescFR: pc.DescFR, DescEN: pc.DescEN, Usage: usage, Source: "policy"})
	}
	return nil
}

func (c *compiler) customLists() error {
	var errs []error
	for i, l := range c.p.Lists {
		field := fmt.Sprintf("lists[%d] (%s)", i, l.ID)
		cat := c.resolve(l.Category)
		if _, ok := c.catIndex[cat]; !ok {
			errs = append(errs, fmt.Errorf("%s.category: unknown category %q", field, l.Category))
			continue
		}
		idx, err := c.addList(ListInfo{ID: l.ID, Category: cat, School: l.School, Source: "policy"})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		emit := c.emitter(idx)
		for j, d := range l.Domains {
			h, err := normalize.Host(d)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.domains[%d]: %q: %w", field, j, d, err))
				continue
			}
			emit(listfmt.Entry{Kind: listfmt.Domain, Value: h, Line: j + 1})
		}
		for j, u := range l.URLs {
			h, rest, err := normalize.URL(u)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.urls[%d]: %q: %w", field, j, u, err))
				continue
			}
			emit(listfmt.Entry{Kind: listfmt.URL, Value: h + rest, Line: j + 1})
		}
		for j, x := range l.Expressions {
			if _, _, err := compileExpr([]string{x}); err != nil {
				errs = append(errs, fmt.Errorf("%s.expressions[%d]: %w", field, j, err))
				continue
			}
			emit(listfmt.Entry{Kind: listfmt.Expression, Value: x, Line: j + 1})
		}
	}
	return errors.Join(errs...)
}

// resolveProfiles replaces aliases by category identifiers and checks that
// every category a profile names exists.
func (c *compiler) resolveProfiles() error {
	var errs []error
	check := func(field string, ids []string) []string {
		out := make([]string, 0, len(ids))
		for j, id := range ids {
			real := c.resolve(id)
			if _, ok := c.catIndex[real]; !ok {
				errs = append(errs, fmt.Errorf("%s[%d]: unknown category %q", field, j, id))
				continue
			}
			out = append(out, real)
		}
		return out
	}
	for i, pr := range c.p.Profiles {
		f := fmt.Sprintf("profiles[%d] (%s)", i, pr.ID)
		pr.Block = check(f+".block", pr.Block)
		pr.Allow = check(f+".allow", pr.Allow)
		ws := make([]policy.Window, len(pr.Windows))
		for j, w := range pr.Windows {
			w.Categories = check(fmt.Sprintf("%s.windows[%d].categories", f, j), w.Categories)
			ws[j] = w
		}
		pr.Windows = ws
		c.m.Profiles = append(c.m.Profiles, pr)
	}
	c.m.DefaultProfile = c.p.DefaultProfile
	return errors.Join(errs...)
}

// mergeDomains turns (fingerprint, list) pairs into the domain set: one
// entry per fingerprint carrying the index of its set of lists. Set
// indices are assigned in the canonical order of the sets themselves, so
// that the same content always gives the same bytes, and a one-domain
// change moves few bytes of the bundle.
func mergeDomains(keys []keyList, nlists int) (*domainset.Set, []uint64, int, error) {
	words := (nlists + 63) / 64
	if words == 0 {
		words = 1
	}
	slices.SortFunc(keys, func(a, b keyList) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.list, b.list)
	})
	index := map[string]int{}
	var sets []uint64
	entries := make([]domainset.Entry, 0, len(keys))
	scratch := make([]uint64, words)
	buf := make([]byte, words*8)
	for i := 0; i < len(keys); {
		j := i
		clear(scratch)
		for ; j < len(keys) && keys[j].key == keys[i].key; j++ {
			scratch[keys[j].list/64] |= 1 << (keys[j].list % 64)
		}
		for w, v := range scratch {
			binary.LittleEndian.PutUint64(buf[w*8:], v)
		}
		// index[string(buf)] does not allocate; only new sets copy the key.
		s, ok := index[string(buf)]
		if !ok {
			s = len(sets) / words
			if s > 0xFFFF {
				return nil, nil, 0, fmt.Errorf("rules: more than 65536 distinct list combinations")
			}
			index[string(buf)] = s
			sets = append(sets, scratch...)
		}
		entries = append(entries, domainset.Entry{Key: keys[i].key, Set: uint16(s)})
		i = j
	}
	// Canonical order of sets, then remap.
	n := len(sets) / words
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return slices.Compare(sets[a*words:(a+1)*words], sets[b*words:(b+1)*words])
	})
	remap := make([]uint16, n)
	sorted := make([]uint64, 0, len(sets))
	for newIdx, old := range order {
		remap[old] = uint16(newIdx)
		sorted = append(sorted, sets[old*words:(old+1)*words]...)
	}
	for i := range entries {
		entries[i].Set = remap[entries[i].Set]
	}
	set, err := domainset.Build(entries)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("rules: %w", err)
	}
	return set, sorted, words, nil
}
