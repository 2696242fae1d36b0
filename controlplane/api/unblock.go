package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"vigie/controlplane/auth"
	"vigie/controlplane/store"
)

// Teachers' unblock requests are decided by the RSSI or, when the académie
// says so, by the chef d'établissement of the school asking, for that
// school only. The API enforces the second half: a chef's only write is an
// exception of their own school (POST /schools/{uai}/exceptions), refused
// unless the setting allows it.
//
// The setting is an audit entry (settings.unblock), like the requests
// themselves: the hash-chained log keeps every change of who may approve,
// with who made it, and no table has to be migrated for one value.

// UnblockSettings says who approves teachers' unblock requests.
type UnblockSettings struct {
	// Approvers is "rssi" (the RSSI only, the default) or "rssi_chef"
	// (also the chef d'établissement, for an exception of their own
	// school only).
	Approvers string `json:"approvers"`
}

// The values of UnblockSettings.Approvers.
const (
	ApproversRSSI = "rssi"
	ApproversChef = "rssi_chef"
)

// unblockSettingAction is the audit action whose latest entry holds the
// setting.
const unblockSettingAction = "settings.unblock"

// settingCache remembers the setting and the last audit entry looked at,
// so that each read walks only the entries appended since (the first read
// of a process walks the whole log once). Other replicas' changes are
// entries like any other: they are seen at the next read.
type settingCache struct {
	mu   sync.Mutex
	seen uint64
	val  UnblockSettings
}

// UnblockApprovers returns the setting in force.
func (s *Server) UnblockApprovers(ctx context.Context) (UnblockSettings, error) {
	c := &s.unblockSetting
	c.mu.Lock()
	defer c.mu.Unlock()
	top, err := s.st.AuditTail(ctx, store.AuditQuery{Limit: 1})
	if err != nil {
		return UnblockSettings{}, err
	}
	if len(top) == 1 && top[0].Seq > c.seen {
		es, err := s.st.AuditTail(ctx, store.AuditQuery{After: c.seen, Before: top[0].Seq + 1, Actions: []string{unblockSettingAction}, Limit: 1})
		if err != nil {
			return UnblockSettings{}, err
		}
		if len(es) == 1 {
			var v UnblockSettings
			if err := json.Unmarshal(es[0].After, &v); err != nil {
				return UnblockSettings{}, err
			}
			c.val = v
		}
		c.seen = top[0].Seq
	}
	if c.val.Approvers != ApproversChef {
		return UnblockSettings{Approvers: ApproversRSSI}, nil
	}
	return c.val, nil
}

func (s *Server) getUnblockSettings(w http.ResponseWriter, r *http.Request) error {
	v, err := s.UnblockApprovers(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) putUnblockSettings(w http.ResponseWriter, r *http.Request) error {
	var req UnblockSettings
	if err := decodeBody(w, r, 4<<10, &req); err != nil {
		return err
	}
	if req.Approvers != ApproversRSSI && req.Approvers != ApproversChef {
		p := Errorf("validation", "réglage des demandes de déblocage invalide")
		p.Errors = []string{"approvers: " + quote(req.Approvers) + " : rssi ou rssi_chef attendu"}
		return p
	}
	before, err := s.UnblockApprovers(r.Context())
	if err != nil {
		return err
	}
	if err := s.Audit(r, unblockSettingAction, "settings/unblock", before, req); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, req)
}

// SchoolExceptions is what POST /schools/{uai}/exceptions changed: the
// school's exception list (created on first use) and the entries added.
type SchoolExceptions struct {
	List    string        `json:"list"`
	Changed int           `json:"changed"`
	Entries []store.Entry `json:"entries"`
}

// addSchoolExceptions adds entries to the exception list of one school:
// the RSSI's shortcut, and the one write a chef may make, to their own
// school, when the setting lets chefs approve unblock requests. Every
// refusal of a chef is audited, as other scope refusals are.
func (s *Server) addSchoolExceptions(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	uai := r.PathValue("uai")
	if err := s.schoolScope(r, uai); err != nil {
		return err
	}
	if id := identity(r); id.Role != auth.RSSI {
		set, err := s.UnblockApprovers(ctx)
		if err != nil {
			return err
		}
		if set.Approvers != ApproversChef {
			if err := s.Audit(r, "access.denied", "school/"+uai, nil, map[string]string{"method": r.Method, "path": r.URL.Path, "reason": "settings.unblock"}); err != nil {
				s.log.Error("cannot audit a refused access", "uai", uai, "err", err)
			}
			return Errorf("forbidden", "seul le RSSI accepte les demandes de déblocage (réglage de l'académie)")
		}
	}
	var req EntriesChange
	if err := decodeBody(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	if identity(r).Role != auth.RSSI && len(req.Expressions) > 0 {
		// An expression can match any host: a chef names sites.
		return Errorf("validation", "seul le RSSI ajoute des expressions")
	}
	vals, err := normalizeEntries(req)
	if err != nil {
		return err
	}
	if len(req.Comment) > 1000 {
		return Errorf("validation", "commentaire de plus de 1000 octets")
	}
	d, err := s.st.Draft(ctx)
	if err != nil {
		return err
	}
	known := false
	for _, sc := range d.Policy.Schools {
		known = known || sc.UAI == uai
	}
	if !known {
		return Errorf("not-found", "établissement %s absent du brouillon", uai)
	}
	cats, err := s.categories(ctx)
	if err != nil {
		return err
	}
	white := map[string]bool{}
	cat := ""
	for _, c := range cats {
		if c.Usage != "white" {
			continue
		}
		white[c.ID] = true
		// A new list takes a school exception category when there is
		// one, any exception category otherwise.
		if cat == "" || (strings.Contains(c.ID, "etablissement") && !strings.Contains(cat, "etablissement")) {
			cat = c.ID
		}
	}
	now, who := s.now(), actor(r).Name
	out := SchoolExceptions{Entries: []store.Entry{}}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		ls, err := tx.Lists(ctx)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if l.School == uai && white[l.Category] {
				out.List = l.ID
				break
			}
		}
		if out.List == "" {
			if cat == "" {
				return Errorf("validation", "la politique n'a aucune catégorie d'exceptions")
			}
			l := store.List{ID: strings.ToLower(uai) + "-deblocages", Category: cat, School: uai,
				Comment: "Exceptions accordées sur demande de déblocage", CreatedBy: who, CreatedAt: now}
			if err := tx.CreateList(ctx, l); err != nil {
				return err
			}
			if err := s.audit(tx, r, "list.create", "list/"+l.ID, nil, l); err != nil {
				return err
			}
			out.List = l.ID
		}
		added, err := tx.AddEntries(ctx, newEntries(out.List, vals, req.Comment, who, now))
		if err != nil {
			return err
		}
		if len(added) == 0 {
			return nil
		}
		res := entriesResult(added)
		out.Changed, out.Entries = res.Changed, res.Entries
		a := entriesAudit(added, req.Comment)
		a["school"] = uai
		return s.audit(tx, r, "list.entries.add", "list/"+out.List, nil, a)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// quote is a value in a French message.
func quote(s string) string { return "« " + s + " »" }
