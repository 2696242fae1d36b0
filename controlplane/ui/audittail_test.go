package ui

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// TestRecentEntriesAmongMany: an export and an unblock request followed
// by 60,000 other audit entries (page views, other schools' exports) are
// still listed: the pages read the log from its end, these actions only,
// rather than every entry forward or a fixed window of the last ones.
func TestRecentEntriesAmongMany(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	if code, _, _ := e.client().post("/deblocage", url.Values{"uai": {monnet}, "url": {"https://ancienne-demande.example.fr/"},
		"motif": {"Cours de sciences"}, "demandeur": {"m.dupont@ac-demo.fr"}}); code != 201 {
		t.Fatalf("request: %d", code)
	}
	after, _ := json.Marshal(map[string]any{"query": map[string]any{"UAI": monnet, "Reference": "PV-ANCIEN-2026",
		"From": time.Now().Add(-time.Hour), "To": time.Now()}, "sha256": strings.Repeat("ab", 32), "counts": map[string]int{"navigation": 3}})
	other, _ := json.Marshal(map[string]any{"query": map[string]any{"UAI": hugo, "Reference": "PV-HUGO"}})
	err := e.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.AppendAudit(ctx, &audit.Entry{Time: time.Now(), Actor: "chef", Role: "chef_etablissement", Action: "export",
			Target: "school/" + monnet, After: after}); err != nil {
			return err
		}
		for i := 0; i < 60000; i++ {
			en := &audit.Entry{Time: time.Now(), Actor: "rssi", Role: "rssi", Action: "page.read", Target: "page/tableau-de-bord"}
			if i%100 == 0 {
				en.Actor, en.Role, en.Action, en.Target, en.After = "chef.hugo", "chef_etablissement", "export", "school/"+hugo, other
			}
			if err := tx.AppendAudit(ctx, en); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.login("chef")
	_, body, _ := c.get("/journaux")
	if h := between(body, `id="historique"`, `</section>`); !strings.Contains(h, "PV-ANCIEN-2026") || strings.Contains(h, "PV-HUGO") {
		t.Errorf("the chef's past export is not listed, or another school's is: %s", shorten(h, 600))
	}
	_, body, _ = e.login("rssi").get("/demandes")
	if q := between(body, `id="en-attente"`, `</section>`); !strings.Contains(q, "ancienne-demande.example.fr") {
		t.Errorf("the request before 60,000 entries is not in the queue: %s", shorten(q, 600))
	}
}
