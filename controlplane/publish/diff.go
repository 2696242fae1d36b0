package publish

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"vigie/controlplane/store"
	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/rules/policy"
)

// Diff summarizes what a version changes against the previous one, for the
// RSSI who publishes it and for whoever reads the history later.
type Diff struct {
	// From is the serial compared against (0 for the first version).
	From uint64 `json:"from"`
	// Summary is one French sentence for lists and the UI.
	Summary string `json:"summary"`
	// Lists are the custom lists whose entries changed.
	Lists []ListDiff `json:"lists,omitempty"`
	// Sources are the imported lists (UT1...) whose size changed.
	Sources    []CountDiff `json:"sources,omitempty"`
	Categories SetDiff     `json:"categories,omitzero"`
	Profiles   SetDiff     `json:"profiles,omitzero"`
	Schools    SetDiff     `json:"schools,omitzero"`
	Firewall   bool        `json:"firewall_changed,omitempty"`
	// Sections is what an edge holding the previous version downloads.
	Sections *SectionDiff `json:"sections,omitempty"`
}

// ListDiff is the change of one custom list.
type ListDiff struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	School   string `json:"school,omitempty"`
	// Created or Deleted when the list itself appeared or went.
	Created bool `json:"created,omitempty"`
	Deleted bool `json:"deleted,omitempty"`
	// Added and Removed entries ("domain:exemple.fr"), at most maxShown
	// each; the counts are complete.
	Added        []string `json:"added,omitempty"`
	Removed      []string `json:"removed,omitempty"`
	AddedCount   int      `json:"added_count"`
	RemovedCount int      `json:"removed_count"`
}

// CountDiff is the size change of an imported list.
type CountDiff struct {
	List          string `json:"list"`
	DomainsBefore int    `json:"domains_before"`
	DomainsAfter  int    `json:"domains_after"`
	URLsBefore    int    `json:"urls_before"`
	URLsAfter     int    `json:"urls_after"`
}

// SetDiff names added, removed and changed items.
type SetDiff struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

func (s SetDiff) empty() bool { return len(s.Added)+len(s.Removed)+len(s.Changed) == 0 }

// SectionDiff is the delta-transfer cost of a version.
type SectionDiff struct {
	Total   int   `json:"total"`
	Changed int   `json:"changed"`
	Bytes   int64 `json:"bytes"`
	// BundleBytes is the whole bundle, for comparison.
	BundleBytes int64 `json:"bundle_bytes"`
}

const maxShown = 50

// diffSources compares two sources at the policy level (no compilation).
func diffSources(from uint64, old, cur *Source) *Diff {
	d := &Diff{From: from}
	if old == nil {
		old = &Source{}
	}
	key := func(e store.Entry) string { return string(e.Kind) + ":" + e.Value }
	entries := func(s *Source) map[string]map[string]bool {
		m := map[string]map[string]bool{}
		for _, l := range s.Lists {
			m[l.ID] = map[string]bool{}
		}
		for _, e := range s.Entries {
			if m[e.List] != nil {
				m[e.List][key(e)] = true
			}
		}
		return m
	}
	oe, ce := entries(old), entries(cur)
	lists := map[string]store.List{}
	for _, l := range old.Lists {
		lists[l.ID] = l
	}
	for _, l := range cur.Lists {
		lists[l.ID] = l
	}
	ids := make([]string, 0, len(lists))
	for id := range lists {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		l := lists[id]
		ld := ListDiff{ID: id, Category: l.Category, School: l.School, Created: oe[id] == nil, Deleted: ce[id] == nil}
		for k := range ce[id] {
			if !oe[id][k] {
				ld.AddedCount++
				ld.Added = append(ld.Added, k)
			}
		}
		for k := range oe[id] {
			if !ce[id][k] {
				ld.RemovedCount++
				ld.Removed = append(ld.Removed, k)
			}
		}
		slices.Sort(ld.Added)
		slices.Sort(ld.Removed)
		ld.Added = ld.Added[:min(len(ld.Added), maxShown)]
		ld.Removed = ld.Removed[:min(len(ld.Removed), maxShown)]
		if ld.Created || ld.Deleted || ld.AddedCount+ld.RemovedCount > 0 {
			d.Lists = append(d.Lists, ld)
		}
	}
	d.Categories = diffBy(old.Policy.Categories, cur.Policy.Categories, func(c policy.Category) string { return c.ID })
	d.Profiles = diffBy(old.Policy.Profiles, cur.Policy.Profiles, func(p policy.Profile) string { return p.ID })
	d.Schools = diffBy(old.Policy.Schools, cur.Policy.Schools, func(s policy.School) string { return s.UAI })
	d.Firewall = !reflect.DeepEqual(normJSON(old.Policy.Firewall), normJSON(cur.Policy.Firewall))
	return d
}

// diffBy compares two slices of structs by identifier and by content.
func diffBy[T any](old, cur []T, id func(T) string) SetDiff {
	var d SetDiff
	om := map[string]T{}
	for _, o := range old {
		om[id(o)] = o
	}
	seen := map[string]bool{}
	for _, c := range cur {
		k := id(c)
		seen[k] = true
		o, ok := om[k]
		switch {
		case !ok:
			d.Added = append(d.Added, k)
		case !reflect.DeepEqual(normJSON(o), normJSON(c)):
			d.Changed = append(d.Changed, k)
		}
	}
	for _, o := range old {
		if !seen[id(o)] {
			d.Removed = append(d.Removed, id(o))
		}
	}
	return d
}

// normJSON compares values the way they are stored (nil and empty slices alike).
func normJSON(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

// listCounts reads the per-list sizes from a bundle's meta section.
func listCounts(metaJSON []byte) map[string]rules.ListInfo {
	var m struct {
		Lists []rules.ListInfo `json:"lists"`
	}
	if json.Unmarshal(metaJSON, &m) != nil {
		return nil
	}
	out := map[string]rules.ListInfo{}
	for _, l := range m.Lists {
		if l.Source != "policy" {
			out[l.ID] = l
		}
	}
	return out
}

// addCompiled fills what only the compiled bundles know: imported list
// sizes and the sections an edge must fetch.
func (d *Diff) addCompiled(oldManifest, newManifest []byte, oldMeta, newMeta []byte, newSecs []bundle.Section, bundleSize int64) {
	oc, nc := listCounts(oldMeta), listCounts(newMeta)
	ids := map[string]bool{}
	for id := range oc {
		ids[id] = true
	}
	for id := range nc {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, id := range sorted {
		o, n := oc[id], nc[id]
		if o.Domains != n.Domains || o.URLs != n.URLs {
			d.Sources = append(d.Sources, CountDiff{List: id, DomainsBefore: o.Domains, DomainsAfter: n.Domains, URLsBefore: o.URLs, URLsAfter: n.URLs})
		}
	}
	have := map[[32]byte]bool{}
	if oldManifest != nil {
		if _, secs, err := bundle.ReadHeader(oldManifest, nil); err == nil {
			for _, s := range secs {
				have[s.Hash] = true
			}
		}
	}
	sd := &SectionDiff{Total: len(newSecs), BundleBytes: bundleSize}
	for _, s := range newSecs {
		if !have[s.Hash] {
			sd.Changed++
			sd.Bytes += int64(len(s.Data))
		}
	}
	if oldManifest != nil {
		// What the edge needs of the manifest: a patch when one applies.
		if patch, ok := bundle.ManifestPatch(oldManifest, newManifest); ok {
			sd.Bytes += int64(len(patch))
		} else {
			sd.Bytes += int64(len(newManifest))
		}
	}
	d.Sections = sd
}

// summarize writes the French one-line summary.
func (d *Diff) summarize() {
	var parts []string
	plural := func(n int, one, many string) string {
		if n > 1 {
			return fmt.Sprintf("%d %s", n, many)
		}
		return fmt.Sprintf("%d %s", n, one)
	}
	for _, l := range d.Lists {
		switch {
		case l.Deleted:
			parts = append(parts, fmt.Sprintf("liste %s supprimée", l.ID))
		case l.Created && l.AddedCount == 0:
			parts = append(parts, fmt.Sprintf("liste %s créée", l.ID))
		default:
			var s []string
			if l.AddedCount > 0 {
				s = append(s, plural(l.AddedCount, "entrée ajoutée", "entrées ajoutées"))
			}
			if l.RemovedCount > 0 {
				s = append(s, plural(l.RemovedCount, "entrée retirée", "entrées retirées"))
			}
			parts = append(parts, fmt.Sprintf("%s : %s", l.ID, strings.Join(s, ", ")))
		}
	}
	if len(d.Sources) > 0 {
		parts = append(parts, plural(len(d.Sources), "liste importée modifiée", "listes importées modifiées"))
	}
	for _, x := range []struct {
		name string
		sd   SetDiff
	}{{"catégories", d.Categories}, {"profils", d.Profiles}, {"établissements", d.Schools}} {
		if !x.sd.empty() {
			parts = append(parts, fmt.Sprintf("%s : %d ajout(s), %d retrait(s), %d modification(s)", x.name, len(x.sd.Added), len(x.sd.Removed), len(x.sd.Changed)))
		}
	}
	if d.Firewall {
		parts = append(parts, "pare-feu modifié")
	}
	switch {
	case d.From == 0:
		d.Summary = "Première version publiée"
		if len(parts) > 0 {
			d.Summary += " (" + strings.Join(parts, " ; ") + ")"
		}
	case len(parts) == 0:
		d.Summary = "Aucun changement de contenu"
	default:
		d.Summary = strings.Join(parts, " ; ")
	}
}
