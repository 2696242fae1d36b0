package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"vigie/controlplane/publish"
	"vigie/rules/policy"
)

// draftBanner is what every page of the RSSI says about the draft: how
// many changes wait for a publication.
type draftBanner struct {
	N int
}

// draftChanges counts the changes of a diff as a person would: one per
// entry added or removed, per list created or deleted, per category,
// profile or school added, removed or changed, per imported list, and one
// for the firewall.
func draftChanges(d *publish.Diff) int {
	if d == nil {
		return 0
	}
	n := 0
	for _, l := range d.Lists {
		n += l.AddedCount + l.RemovedCount
		if (l.Created || l.Deleted) && l.AddedCount+l.RemovedCount == 0 {
			n++
		}
	}
	n += len(d.Sources)
	for _, sd := range []publish.SetDiff{d.Categories, d.Profiles, d.Schools} {
		n += len(sd.Added) + len(sd.Removed) + len(sd.Changed)
	}
	if d.Firewall {
		n++
	}
	return n
}

// banner computes the draft banner of the RSSI's pages (nil when nothing
// waits, or for the other roles, who do not publish).
func (rq *request) banner() *draftBanner {
	if !rq.is(rssiOnly...) {
		return nil
	}
	d, err := rq.api().Diff(rq.ctx())
	if err != nil {
		// The banner is a reminder: a page still opens without it.
		rq.h.log.Warn("ui: draft banner", "err", err)
		return nil
	}
	if rq.h.pub.Head().Serial == 0 {
		// Before the first publication everything is a draft: the
		// Publier page says so, a count would say nothing.
		return nil
	}
	if n := draftChanges(&d); n > 0 {
		return &draftBanner{N: n}
	}
	return nil
}

// diffSummary says a diff in one French sentence, with real plurals.
func diffSummary(d *publish.Diff) string {
	var parts []string
	for _, l := range d.Lists {
		switch {
		case l.Deleted:
			parts = append(parts, T("diff.list.deleted", l.ID))
		case l.Created && l.AddedCount == 0:
			parts = append(parts, T("diff.list.created", l.ID))
		default:
			var s []string
			if l.AddedCount > 0 {
				s = append(s, Tn("diff.entries.added", int64(l.AddedCount)))
			}
			if l.RemovedCount > 0 {
				s = append(s, Tn("diff.entries.removed", int64(l.RemovedCount)))
			}
			parts = append(parts, T("diff.list.changed", l.ID, strings.Join(s, ", ")))
		}
	}
	if len(d.Sources) > 0 {
		parts = append(parts, Tn("diff.sources", int64(len(d.Sources))))
	}
	for _, x := range []struct {
		name string
		sd   publish.SetDiff
	}{{"categories", d.Categories}, {"profiles", d.Profiles}, {"schools", d.Schools}} {
		var s []string
		if n := len(x.sd.Added); n > 0 {
			s = append(s, Tn("diff.set.added", int64(n)))
		}
		if n := len(x.sd.Removed); n > 0 {
			s = append(s, Tn("diff.set.removed", int64(n)))
		}
		if n := len(x.sd.Changed); n > 0 {
			s = append(s, Tn("diff.set.changed", int64(n)))
		}
		if len(s) > 0 {
			parts = append(parts, T("diff.set", T("publish.diff."+x.name), strings.Join(s, ", ")))
		}
	}
	if d.Firewall {
		parts = append(parts, T("diff.firewall"))
	}
	switch {
	case d.From == 0 && len(parts) > 0:
		return T("diff.first.with", typo(strings.Join(parts, " ; ")))
	case d.From == 0:
		return T("diff.first")
	case len(parts) == 0:
		return T("diff.none")
	}
	return typo(strings.Join(parts, " ; "))
}

// storedSummary re-says a stored version's diff in French (the stored
// sentence predates the UI's plurals).
func storedSummary(raw json.RawMessage) string {
	var d publish.Diff
	if len(raw) == 0 || json.Unmarshal(raw, &d) != nil {
		return ""
	}
	return diffSummary(&d)
}

// publishedPolicy is the policy of the version in force (nil before the
// first publication), for the pages that switch between the draft and
// what the schools apply.
func (h *Handler) publishedPolicy(ctx context.Context) (*policy.Policy, error) {
	if h.pub.Head().Serial == 0 {
		return nil, nil
	}
	v, err := h.st.LatestVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("ui: version in force: %w", err)
	}
	var src publish.Source
	if err := json.Unmarshal(v.Policy, &src); err != nil {
		return nil, fmt.Errorf("ui: version %d: %w", v.Serial, err)
	}
	return &src.Policy, nil
}

// versionSwitch is the draft/published switch of Profils and Catégories:
// which values the page shows.
type versionSwitch struct {
	// Published is set when the page shows the version in force.
	Published bool
	// Serial is the version in force (0: nothing published, no switch).
	Serial uint64
	Path   string
}

// viewSwitch reads the page's choice (?version=publiee).
func (rq *request) viewSwitch() versionSwitch {
	s := versionSwitch{Serial: rq.h.pub.Head().Serial, Path: rq.r.URL.Path}
	s.Published = s.Serial > 0 && rq.query("version") == "publiee"
	return s
}
