package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/requisition"
)

// TestRequisitionLifecycle follows a transmitted export through the
// pages without a browser: who sees it, the download, the expiry and
// purge, each step in the audit log.
func TestRequisitionLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	// The AQSSI asks the school first; the chef sees the request.
	aq := e.login("aqssi")
	aq.get("/aqssi")
	if code, body, _ := aq.post("/aqssi/demandes", url.Values{"uai": {"pas-un-uai"}, "reference": {""}}); code != 422 ||
		!strings.Contains(body, "7 chiffres et une lettre") || !strings.Contains(body, "référence de la réquisition") {
		t.Fatalf("bad request accepted: %d", code)
	}
	if code, _, hd := aq.post("/aqssi/demandes", url.Values{"uai": {monnet}, "reference": {"PV 2026/9"}, "motive": {"Réquisition du parquet"}}); code != http.StatusSeeOther {
		t.Fatalf("request: %d %v", code, hd)
	}
	if _, body, _ := e.login("chef").get("/journaux"); !strings.Contains(body, "Demandes de l’AQSSI à traiter") || !strings.Contains(body, "À traiter") {
		t.Fatal("the chef does not see the AQSSI's request")
	}
	if _, body, _ := e.login("chef.hugo").get("/journaux"); strings.Contains(body, "Réquisition du parquet") {
		t.Fatal("another school's chef sees the request")
	}
	tr, err := e.vault.Put([]byte("PK export signé"), requisition.Transmission{UAI: monnet, Reference: "PV 2026/9", Name: "export.zip", TransmittedBy: "chef"})
	if err != nil {
		t.Fatal(err)
	}
	chef := e.login("chef")
	if _, body, _ := chef.get("/journaux"); !strings.Contains(body, "PV 2026/9") || !strings.Contains(body, "Transmis le") || !strings.Contains(body, "Répondue") {
		t.Fatal("the chef does not see the transmission")
	}
	if _, body, _ := e.login("chef.hugo").get("/journaux"); strings.Contains(body, "PV 2026/9") {
		t.Fatal("another school's chef sees the transmission")
	}
	if code, _, _ := chef.get("/aqssi/" + tr.ID); code != http.StatusForbidden {
		t.Fatalf("the chef downloads from the AQSSI's page: %d", code)
	}
	code, body, hd := aq.get("/aqssi/" + tr.ID)
	if code != 200 || body != "PK export signé" || !strings.Contains(hd.Get("Content-Disposition"), "export.zip") {
		t.Fatalf("AQSSI download: %d %q %v", code, body, hd)
	}
	if _, body, _ := chef.get("/journaux"); !strings.Contains(body, "téléchargé par l’AQSSI le") {
		t.Fatal("the chef does not see the download")
	}
	e.clock.advance(31 * 24 * time.Hour)
	aq = e.login("aqssi")
	if _, body, _ := aq.get("/aqssi"); !strings.Contains(body, "supprimé du serveur le") {
		t.Fatal("the expired export is not shown purged")
	}
	if code, _, _ := aq.get("/aqssi/" + tr.ID); code != http.StatusNotFound {
		t.Fatalf("purged export: %d", code)
	}
	es, err := e.st.AuditEntries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, en := range es {
		if en.Target == "requisition/"+tr.ID {
			got[en.Action] = en.Actor
		}
	}
	for _, en := range es {
		if en.Action == "requisition.request" && en.Actor == "aqssi" && en.Target == "school/"+monnet {
			got[en.Action] = en.Actor
		}
	}
	for _, a := range []string{"requisition.request", "requisition.download", "requisition.expire", "requisition.purge"} {
		if _, ok := got[a]; !ok {
			t.Errorf("no %s in the audit log: %v", a, got)
		}
	}
}
