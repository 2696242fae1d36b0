package ui

import (
	"encoding/json"
	"errors"
	"strconv"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
)

// publishView is the Publier page: what the draft changes against the
// version in force, the form that publishes it with a mandatory comment,
// and the history of versions with their rollback.
type publishView struct {
	Head     versionHead
	Diff     *publish.Diff
	Empty    bool
	CanEdit  bool
	Comment  string
	Errors   []string
	Versions []versionRow
	Next     string
	Cursor   string
	// Summary says the draft's diff in French.
	Summary string
	// Rollback asks before a rollback replaces the draft.
	Rollback *rollbackAsk
}

// rollbackAsk is the question before a rollback: which version, and what
// unpublished changes of the draft it will discard.
type rollbackAsk struct {
	Serial  uint64
	Comment string
	// Changes counts the draft's unpublished changes (0: nothing lost).
	Changes int
}

type versionRow struct {
	store.Version
	Summary string
	Current bool
}

func (h *Handler) publishPage(rq *request) error {
	v, err := h.publishData(rq, rq.query("apres"))
	if err != nil {
		return err
	}
	return rq.render(200, "publish", "publish.title", v)
}

func (h *Handler) publishData(rq *request, cursor string) (*publishView, error) {
	hd := h.pub.Head()
	v := &publishView{Head: versionHead{Serial: hd.Serial, Created: hd.Created}, CanEdit: rq.is(auth.RSSI), Cursor: cursor}
	if v.CanEdit {
		d, err := rq.api().Diff(rq.ctx())
		if err != nil {
			return nil, err
		}
		v.Diff = &d
		v.Summary = diffSummary(&d)
		v.Empty = hd.Serial > 0 && len(d.Lists) == 0 && len(d.Sources) == 0 && !d.Firewall &&
			len(d.Categories.Added)+len(d.Categories.Removed)+len(d.Categories.Changed)+
				len(d.Profiles.Added)+len(d.Profiles.Removed)+len(d.Profiles.Changed)+
				len(d.Schools.Added)+len(d.Schools.Removed)+len(d.Schools.Changed) == 0
	}
	p, err := rq.api().VersionsPage(rq.ctx(), cursor, 30)
	if err != nil {
		return nil, err
	}
	v.Next = p.Next
	for _, ver := range p.Items {
		row := versionRow{Version: ver, Current: ver.Serial == hd.Serial}
		var d publish.Diff
		if len(ver.Diff) > 0 && json.Unmarshal(ver.Diff, &d) == nil {
			row.Summary = diffSummary(&d)
		}
		v.Versions = append(v.Versions, row)
		if row.Current {
			v.Head.Author, v.Head.Comment = ver.Author, ver.Comment
		}
	}
	return v, nil
}

// publishSubmit publishes the draft through the API.
func (h *Handler) publishSubmit(rq *request) error {
	comment := rq.form("comment")
	ver, err := rq.api().Publish(rq.ctx(), api.PublishRequest{Comment: comment})
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == 422 || ae.Status == 409) {
		v, err := h.publishData(rq, "")
		if err != nil {
			return err
		}
		v.Comment = comment
		switch ae.Kind() {
		case "validation":
			if comment == "" {
				v.Errors = []string{T("publish.comment.required")}
			} else {
				v.Errors = append([]string{T("publish.invalid")}, ae.Errors...)
			}
		case "nothing-to-publish":
			v.Errors = []string{T("publish.nothing")}
		default:
			v.Errors = apiProblems(ae)
		}
		return rq.render(ae.Status, "publish", "publish.title", v)
	}
	if err != nil {
		return err
	}
	return rq.redirect("/publier?n="+strconv.FormatUint(ver.Serial, 10), "published")
}

// rollbackSubmit republishes an earlier version under a new serial.
func (h *Handler) rollbackSubmit(rq *request) error {
	serial, err := strconv.ParseUint(rq.r.PathValue("serial"), 10, 63)
	if err != nil {
		return notFound()
	}
	if rq.form("confirme") != "1" {
		// First ask, naming what the draft will lose.
		v, err := h.publishData(rq, "")
		if err != nil {
			return err
		}
		v.Rollback = &rollbackAsk{Serial: serial, Comment: rq.form("comment"), Changes: draftChanges(v.Diff)}
		return rq.render(200, "publish", "title.rollback", v)
	}
	ver, err := rq.api().Rollback(rq.ctx(), u64(serial), api.PublishRequest{Comment: rq.form("comment")})
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 422 {
		v, err := h.publishData(rq, "")
		if err != nil {
			return err
		}
		v.Errors = apiProblems(ae)
		return rq.render(422, "publish", "publish.title", v)
	}
	if err != nil {
		return err
	}
	return rq.redirect("/publier?n="+u64(ver.Serial)+"&d="+u64(serial), "rolledback")
}
