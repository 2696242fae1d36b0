package ui

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"

	"vigie/controlplane/auth"
	"vigie/controlplane/requisition"
	"vigie/rules/policy"
)

// A chef's export "transmise à l'AQSSI" stays on the control plane,
// encrypted, until the AQSSI downloads it from their page or it expires:
// the requisition's personal data never travels by e-mail. Each step is
// in the audit log (the export's creation is audited by the export
// route itself).

// aqssiView is the AQSSI's page, and the chef's list of transmissions.
type aqssiView struct {
	Table    transmissionsTable
	Keep     int
	Requests requestsTable
	Ask      requisition.Request
	Errors   formErrors
}

// requestsTable is the "requests" partial's data: the AQSSI's requests
// and whether an export with the same school and reference answered them.
type requestsTable struct {
	List     []requisition.Request
	Answered map[string]bool
}

func (h *Handler) requestsFor(rq *request, ts []requisition.Transmission) (requestsTable, error) {
	rt := requestsTable{Answered: map[string]bool{}}
	if h.vault == nil {
		return rt, nil
	}
	all, err := h.vault.Requests()
	if err != nil {
		return rt, err
	}
	for _, r := range all {
		if rq.id.Role != auth.AQSSI && !rq.id.CanSeeSchool(r.UAI) {
			continue
		}
		rt.List = append(rt.List, r)
		rt.Answered[r.ID] = slices.ContainsFunc(ts, func(t requisition.Transmission) bool {
			return t.UAI == r.UAI && t.Reference == r.Reference
		})
	}
	return rt, nil
}

// transmissionsTable is the "transmissions" partial's data; Download
// offers the files (the AQSSI's page only).
type transmissionsTable struct {
	List     []requisition.Transmission
	Download bool
}

// purgeTransmissions deletes the expired exports and audits each one:
// expired, then purged.
func (h *Handler) purgeTransmissions(rq *request) error {
	gone, err := h.vault.Purge()
	for _, t := range gone {
		meta := map[string]any{"uai": t.UAI, "reference": t.Reference, "sha256": t.SHA256, "expires": t.Expires}
		if aerr := h.api.Audit(rq.r, "requisition.expire", "requisition/"+t.ID, nil, meta); aerr != nil {
			return aerr
		}
		if aerr := h.api.Audit(rq.r, "requisition.purge", "requisition/"+t.ID, nil, meta); aerr != nil {
			return aerr
		}
	}
	return err
}

// transmissions lists what the caller may see: the AQSSI and the RSSI
// every school's, a chef their school's.
func (h *Handler) transmissions(rq *request) ([]requisition.Transmission, error) {
	if h.vault == nil {
		return nil, nil
	}
	if err := h.purgeTransmissions(rq); err != nil {
		return nil, err
	}
	all, err := h.vault.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(t requisition.Transmission) bool {
		return rq.id.Role != auth.AQSSI && !rq.id.CanSeeSchool(t.UAI)
	}), nil
}

func (h *Handler) aqssiPage(rq *request) error {
	ts, err := h.transmissions(rq)
	if err != nil {
		return err
	}
	v := &aqssiView{Table: transmissionsTable{List: ts, Download: true}}
	if h.vault != nil {
		v.Keep = int(h.vault.Keep().Hours() / 24)
	}
	if v.Requests, err = h.requestsFor(rq, ts); err != nil {
		return err
	}
	return rq.render(200, "aqssi", "aqssi.title", v)
}

// aqssiAsk records the AQSSI's request for an export from a school.
func (h *Handler) aqssiAsk(rq *request) error {
	if h.vault == nil {
		return &pageError{status: http.StatusNotFound, title: "logs.result.gone.title", text: "aqssi.gone"}
	}
	r := requisition.Request{UAI: strings.ToUpper(strings.TrimSpace(rq.form("uai"))), Reference: strings.TrimSpace(rq.form("reference")),
		Motive: strings.TrimSpace(rq.form("motive")), From: rq.form("from"), To: rq.form("to"), By: rq.id.Actor()}
	var errs formErrors
	if !policy.ValidUAI(r.UAI) {
		errs = append(errs, on("d-uai", T("aqssi.ask.baduai")))
	}
	if r.Reference == "" {
		errs = append(errs, on("d-ref", T("aqssi.ask.noref")))
	}
	if len(errs) > 0 {
		ts, err := h.transmissions(rq)
		if err != nil {
			return err
		}
		v := &aqssiView{Table: transmissionsTable{List: ts, Download: true}, Ask: r, Errors: errs, Keep: int(h.vault.Keep().Hours() / 24)}
		if v.Requests, err = h.requestsFor(rq, ts); err != nil {
			return err
		}
		return rq.render(422, "aqssi", "aqssi.title", v)
	}
	r, err := h.vault.Ask(r)
	if err != nil {
		return err
	}
	if err := h.api.Audit(rq.r, "requisition.request", "school/"+r.UAI, nil, r); err != nil {
		return err
	}
	return rq.redirect("/aqssi#demandes", "requested")
}

// aqssiDownload sends a transmitted export to the AQSSI, decrypted.
func (h *Handler) aqssiDownload(rq *request) error {
	if h.vault == nil {
		return &pageError{status: http.StatusNotFound, title: "logs.result.gone.title", text: "aqssi.gone"}
	}
	if err := h.purgeTransmissions(rq); err != nil {
		return err
	}
	id := rq.r.PathValue("id")
	data, t, err := h.vault.Download(id, rq.id.Actor())
	if errors.Is(err, requisition.ErrNotFound) {
		return &pageError{status: http.StatusNotFound, title: "logs.result.gone.title", text: "aqssi.gone"}
	}
	if err != nil {
		return err
	}
	if err := h.api.Audit(rq.r, "requisition.download", "requisition/"+t.ID, nil,
		map[string]any{"uai": t.UAI, "reference": t.Reference, "sha256": t.SHA256}); err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "application/zip")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": t.Name}))
	_, err = rq.w.Write(data)
	return err
}

// exportTransmit hands an export just made to the AQSSI instead of (or
// as well as) downloading it.
func (h *Handler) exportTransmit(rq *request) error {
	f, ok := h.exports.get(rq.r.PathValue("token"), rq.id.Actor(), rq.now())
	if !ok || h.vault == nil {
		return &pageError{status: http.StatusNotFound, title: "logs.result.gone.title", text: "logs.result.gone.text"}
	}
	m, err := readManifest(f.path)
	if err != nil {
		return err
	}
	if !rq.id.CanSeeSchool(m.Requete.UAI) {
		return forbidden()
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("ui: transmit: %w", err)
	}
	t, err := h.vault.Put(data, requisition.Transmission{UAI: m.Requete.UAI, Reference: m.Reference, Name: f.name, TransmittedBy: rq.id.Actor()})
	if err != nil {
		return err
	}
	if err := h.api.Audit(rq.r, "requisition.transmit", "requisition/"+t.ID, nil,
		map[string]any{"uai": t.UAI, "reference": t.Reference, "sha256": t.SHA256, "expires": t.Expires}); err != nil {
		return err
	}
	return rq.redirect("/journaux#transmissions", "transmitted")
}
