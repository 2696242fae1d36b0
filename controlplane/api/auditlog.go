package api

import (
	"net/http"
	"strconv"

	"vigie/controlplane/audit"
)

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	var after uint64
	if p.After != "" {
		if after, err = strconv.ParseUint(p.After, 10, 63); err != nil {
			return Errorf("bad-request", "curseur invalide")
		}
	}
	es, err := s.st.AuditEntries(r.Context(), after, p.Limit+1)
	if err != nil {
		return err
	}
	// Reading the audit log is itself a sensitive read.
	if err := s.Audit(r, "audit.read", "audit", nil, map[string]any{"after": after, "count": min(len(es), p.Limit)}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pageOf(es, p, func(e audit.Entry) string { return strconv.FormatUint(e.Seq, 10) }))
}

// AuditVerify is the outcome of a chain verification.
type AuditVerify struct {
	audit.Result
	OK bool `json:"ok"`
	// AnchorError says why a noted head no longer matches.
	AnchorError string `json:"anchor_error,omitempty"`
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var anchorSeq uint64
	var anchor audit.Digest
	if as := q.Get("anchor_seq"); as != "" {
		var err error
		if anchorSeq, err = strconv.ParseUint(as, 10, 63); err != nil || anchorSeq == 0 {
			return Errorf("bad-request", "anchor_seq est un numéro d'entrée")
		}
		if anchor, err = audit.ParseDigest(q.Get("anchor_hash")); err != nil {
			return Errorf("bad-request", "anchor_hash est une empreinte SHA-256 en hexadécimal")
		}
	}
	// Streamed in pages: the log of years of changes is never held whole.
	var v audit.Verifier
	var after uint64
	for {
		es, err := s.st.AuditEntries(r.Context(), after, 5000)
		if err != nil {
			return err
		}
		for i := range es {
			if !v.Add(&es[i]) {
				break
			}
		}
		if len(es) < 5000 || !v.Result().OK() {
			break
		}
		after = es[len(es)-1].Seq
	}
	res := AuditVerify{Result: v.Result()}
	res.OK = res.Result.OK()
	if anchorSeq != 0 {
		var at *audit.Entry
		if e, err := s.st.AuditEntry(r.Context(), anchorSeq); err == nil {
			at = &e
		}
		if err := audit.CheckAnchor(at, anchorSeq, anchor); err != nil {
			res.OK, res.AnchorError = false, err.Error()
		}
	}
	if err := s.Audit(r, "audit.verify", "audit", nil, map[string]any{"ok": res.OK, "entries": res.Entries, "head_seq": res.HeadSeq}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}
