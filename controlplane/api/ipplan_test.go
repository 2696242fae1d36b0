package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vigie/controlplane/ipplan"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// monnetPlan is the demo school's plan as the harness seeds it.
func monnetPlan() []policy.Zone {
	return []policy.Zone{
		{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24", "127.0.0.0/8", "::1/128"}, Profile: "eleves"},
		{Name: "administratif", CIDRs: []string{"10.20.0.0/24"}, Profile: "personnels"},
		{Name: "wifi", CIDRs: []string{"10.30.0.0/24"}, Profile: "invites"},
		{Name: "serveurs", CIDRs: []string{"10.40.0.0/24"}, Profile: "serveurs"},
	}
}

// ipplanSamples are the role matrix's requests for the IP plan routes: the
// technicien's proposal (id 1) is validated, the Bas-Rhin technicien's
// (id 2) refused, in the order the routes are declared.
func ipplanSamples() map[string]sample {
	return map[string]sample{
		"POST /api/v1/schools/{uai}/ip-proposals": {"/api/v1/schools/" + monnet + "/ip-proposals", proposalSample()},
		"GET /api/v1/ip-proposals":                {"/api/v1/ip-proposals?status=pending", nil},
		"GET /api/v1/ip-proposals/{id}":           {"/api/v1/ip-proposals/1", nil},
		"POST /api/v1/ip-proposals/{id}/validate": {"/api/v1/ip-proposals/1/validate", IPProposalValidate{}},
		"POST /api/v1/ip-proposals/{id}/refuse":   {"/api/v1/ip-proposals/2/refuse", IPProposalRefusal{Reason: "plage réservée"}},
	}
}

// proposalSample moves the Monnet collège's wifi to a new range.
func proposalSample() IPProposalRequest {
	z := monnetPlan()
	z[2].CIDRs = []string{"10.31.0.0/24"}
	return IPProposalRequest{Zones: z, Comment: "Nouveau réseau wifi du collège"}
}

// auditEntries reads the whole audit log as the RSSI.
func auditEntries(e *env) []map[string]any {
	e.t.Helper()
	var page Page[map[string]any]
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/audit?limit=1000", nil, 200), &page)
	return page.Items
}

// TestIPProposalRefusals: a proposal is refused at once, with a French
// message on the field, for each thing the RSSI would refuse anyway; a
// school outside the technicien's scope is a 403, audited.
func TestIPProposalRefusals(t *testing.T) {
	e := newEnv(t)
	edit := func(f func(z []policy.Zone) []policy.Zone) []policy.Zone { return f(monnetPlan()) }
	wifi := func(cidrs ...string) []policy.Zone {
		return edit(func(z []policy.Zone) []policy.Zone { z[2].CIDRs = cidrs; return z })
	}
	cases := []struct {
		name, who, uai string
		zones          []policy.Zone
		comment        string
		status         int
		field          string   // the problem's field path
		want           []string // in that problem's text
		not            string   // never in the answer
	}{
		{name: "overlaps a school outside the scope", who: "tech67", zones: wifi("10.50.0.0/25"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"chevauche", "hors de votre périmètre"}, not: "Victor Hugo"},
		{name: "overlaps a school of the scope", who: "tech67", zones: wifi("10.60.0.0/16"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"chevauche la plage 10.60.0.0/24", "Collège à fermer (0679999Z)", "« pedagogique »"}},
		{name: "an académie-wide technicien is told which school", who: "technicien", zones: wifi("10.50.0.0/24"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"Collège Victor Hugo (0680001A)"}},
		{name: "overlaps another zone of the plan", who: "tech67", zones: wifi("10.20.0.128/25"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"10.20.0.128/25 chevauche la plage 10.20.0.0/24 de la zone « administratif »"}},
		{name: "overlaps inside one zone", who: "tech67", zones: wifi("10.30.0.0/24", "10.30.0.64/26"), status: 422,
			field: "zones[2].cidrs[1]", want: []string{"même zone"}},
		{name: "pupils' zone without profile", who: "tech67", status: 422,
			zones: edit(func(z []policy.Zone) []policy.Zone { z[0].Profile = ""; return z }),
			field: "zones[0].profile", want: []string{"zone des élèves sans profil"}},
		{name: "pupils' zone unfiltered", who: "tech67", status: 422,
			zones: edit(func(z []policy.Zone) []policy.Zone { z[0].Profile = "serveurs"; return z }),
			field: "zones[0].profile", want: []string{"non filtré « serveurs »"}},
		{name: "another zone without profile", who: "tech67", status: 422,
			zones: edit(func(z []policy.Zone) []policy.Zone { z[2].Profile = " "; return z }),
			field: "zones[2].profile", want: []string{"choisissez un profil"}},
		{name: "unknown profile", who: "tech67", status: 422,
			zones: edit(func(z []policy.Zone) []policy.Zone { z[2].Profile = "vip"; return z }),
			field: "zones[2].profile", want: []string{"« vip » n’existe pas"}},
		{name: "prefix length out of range", who: "tech67", zones: wifi("10.30.0.0/33"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"« 10.30.0.0/33 » n’est pas une plage d’adresses CIDR"}},
		{name: "not an address", who: "tech67", zones: wifi("wifi-du-college"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"n’est pas une plage d’adresses CIDR"}},
		{name: "host bits set", who: "tech67", zones: wifi("10.30.0.1/24"), status: 422,
			field: "zones[2].cidrs[0]", want: []string{"vouliez-vous écrire 10.30.0.0/24"}},
		{name: "zone without prefix", who: "tech67", zones: wifi(), status: 422,
			field: "zones[2].cidrs", want: []string{"au moins une plage"}},
		{name: "bad zone name", who: "tech67", status: 422,
			zones: edit(func(z []policy.Zone) []policy.Zone { z[2].Name = "Wifi Invités"; return z }),
			field: "zones[2].name", want: []string{"n’est pas un nom de zone valide"}},
		{name: "a zone twice", who: "tech67", status: 422,
			zones: edit(func(z []policy.Zone) []policy.Zone {
				z[3].Name = "wifi"
				z[3].CIDRs = []string{"10.32.0.0/24"}
				return z
			}),
			field: "zones[3].name", want: []string{"figure deux fois"}},
		{name: "no comment", who: "tech67", zones: wifi("10.31.0.0/24"), comment: "  ", status: 422,
			field: "comment", want: []string{"pourquoi le plan change"}},
		{name: "no zone at all", who: "tech67", zones: []policy.Zone{}, status: 422, field: "zones", want: []string{"au moins une zone"}},
		{name: "nothing changes", who: "tech67", zones: monnetPlan(), status: 422, field: "zones", want: []string{"celui du brouillon"}},
		{name: "the same plan written differently", who: "tech67", status: 422, field: "zones", want: []string{"celui du brouillon"},
			zones: edit(func(z []policy.Zone) []policy.Zone {
				z[0].CIDRs = []string{" ::1/128", "127.0.0.0/8 ", "10.10.0.0/24"}
				return z
			})},
		{name: "a school outside the scope", who: "tech67", uai: autre, zones: wifi("10.31.0.0/24"), status: 403},
		{name: "a school that does not exist", who: "tech67", uai: "0671999Z", zones: wifi("10.31.0.0/24"), status: 404},
		{name: "the RSSI edits, it does not propose", who: "rssi", zones: wifi("10.31.0.0/24"), status: 403},
		{name: "a chef does not propose", who: "chef_etablissement", zones: wifi("10.31.0.0/24"), status: 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uai := c.uai
			if uai == "" {
				uai = monnet
			}
			comment := c.comment
			if comment == "" {
				comment = "Réorganisation du réseau"
			}
			code, b, hdr := e.do(c.who, "POST", "/api/v1/schools/"+uai+"/ip-proposals", IPProposalRequest{Zones: c.zones, Comment: comment})
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, b)
			}
			checkProblem(t, b, hdr)
			if c.not != "" && strings.Contains(string(b), c.not) {
				t.Errorf("the answer names %q: %s", c.not, b)
			}
			if c.field == "" {
				return
			}
			var p Problem
			json.Unmarshal(b, &p)
			i := slices.IndexFunc(p.Errors, func(s string) bool { return strings.HasPrefix(s, c.field+": ") })
			if i < 0 {
				t.Fatalf("no problem on %s: %q", c.field, p.Errors)
			}
			for _, w := range c.want {
				if !strings.Contains(p.Errors[i], w) {
					t.Errorf("problem %q lacks %q", p.Errors[i], w)
				}
			}
		})
	}
	// Nothing was stored, and each refused school outside the scope is
	// an audited denial naming the technicien.
	var page Page[IPProposalView]
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/ip-proposals", nil, 200), &page)
	if len(page.Items) != 0 {
		t.Fatalf("refused proposals were stored: %+v", page.Items)
	}
	denied := 0
	for _, it := range auditEntries(e) {
		if it["action"] == "access.denied" && it["actor"] == "tech67" && it["target"] == "school/"+autre {
			denied++
		}
	}
	if denied != 1 {
		t.Fatalf("%d audited denials for the Haut-Rhin school, want 1", denied)
	}
}

// TestIPProposalFlow: a Bas-Rhin technicien proposes, the Haut-Rhin's
// technicien cannot see it, the RSSI reads the diff and validates it into
// the draft (both names in the audit), publication carries it; another is
// refused with a reason the technicien reads; a proposal the draft has
// overtaken is not validated blindly.
func TestIPProposalFlow(t *testing.T) {
	e := newEnv(t)
	var made IPProposalView
	json.Unmarshal(e.mustDo("tech67", "POST", "/api/v1/schools/"+monnet+"/ip-proposals", proposalSample(), 201), &made)
	if made.ID == 0 || made.Status != store.ProposalPending || made.ProposedBy != "tech67" || made.SchoolName != "Collège Jean Monnet" {
		t.Fatalf("created %+v", made)
	}
	wantDiff := ipplan.ZoneChange{Zone: "wifi", Change: ipplan.Changed, CIDRsAdded: []string{"10.31.0.0/24"}, CIDRsRemoved: []string{"10.30.0.0/24"},
		ProfileBefore: "invites", ProfileAfter: "invites"}
	checkDiff := func(v IPProposalView) {
		t.Helper()
		for _, c := range v.Diff {
			switch {
			case c.Zone == "wifi" && !equalChange(c, wantDiff):
				t.Errorf("wifi diff %+v", c)
			case c.Zone != "wifi" && c.Change != ipplan.Unchanged:
				t.Errorf("zone %s diff %+v", c.Zone, c)
			}
		}
		if len(v.Diff) != 4 {
			t.Errorf("diff of %d zones", len(v.Diff))
		}
	}
	checkDiff(made)
	path := "/api/v1/ip-proposals/" + strconv.FormatInt(made.ID, 10)

	// Who sees it: the RSSI and the Bas-Rhin, not the Haut-Rhin.
	var page Page[IPProposalView]
	page = Page[IPProposalView]{}
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/ip-proposals?status=pending", nil, 200), &page)
	if len(page.Items) != 1 || page.Items[0].ID != made.ID || page.Items[0].AgainstRevision == 0 {
		t.Fatalf("RSSI's pending proposals: %+v", page.Items)
	}
	checkDiff(page.Items[0])
	page = Page[IPProposalView]{}
	json.Unmarshal(e.mustDo("tech67", "GET", "/api/v1/ip-proposals", nil, 200), &page)
	if len(page.Items) != 1 {
		t.Fatalf("the Bas-Rhin technicien lists %d proposals", len(page.Items))
	}
	page = Page[IPProposalView]{}
	json.Unmarshal(e.mustDo("tech68", "GET", "/api/v1/ip-proposals", nil, 200), &page)
	if len(page.Items) != 0 {
		t.Fatalf("the Haut-Rhin technicien lists %+v", page.Items)
	}
	e.mustDo("tech68", "GET", path, nil, 403)
	e.mustDo("tech68", "GET", "/api/v1/ip-proposals?uai="+monnet, nil, 403)
	e.mustDo("tech67", "POST", path+"/validate", IPProposalValidate{}, 403)

	// A diff read before the draft changed is not validated.
	json.Unmarshal(e.mustDo("rssi", "GET", path, nil, 200), &made)
	e.mustDo("rssi", "POST", path+"/validate", IPProposalValidate{Revision: made.AgainstRevision + 7}, 412)
	var done IPProposalView
	json.Unmarshal(e.mustDo("rssi", "POST", path+"/validate", IPProposalValidate{Revision: made.AgainstRevision, Comment: "Vu avec le département"}, 200), &done)
	if done.Status != store.ProposalValidated || done.DecidedBy != "rssi" || done.DraftRevision != made.AgainstRevision+1 || done.Reason != "Vu avec le département" {
		t.Fatalf("validated %+v", done)
	}
	checkDiff(done) // against the plan it replaced
	var school policy.School
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/schools/"+monnet, nil, 200), &school)
	if !ipplan.Same(school.Zones, proposalSample().Zones) {
		t.Fatalf("the draft's plan %+v", school.Zones)
	}
	e.mustDo("rssi", "POST", path+"/validate", IPProposalValidate{}, 409)
	e.mustDo("rssi", "POST", path+"/refuse", IPProposalRefusal{Reason: "trop tard"}, 409)

	// The normal publication carries it to the edges.
	e.mustDo("rssi", "POST", "/api/v1/publish", PublishRequest{Comment: "Plan d'adressage du collège Jean Monnet"}, 201)
	v, err := e.st.LatestVersion(context.Background())
	if err != nil || v.Serial != 2 || !strings.Contains(string(v.Policy), "10.31.0.0/24") || strings.Contains(string(v.Policy), "10.30.0.0/24") {
		t.Fatalf("version %d (%v) does not carry the plan", v.Serial, err)
	}

	// A refusal needs a reason, which the technicien reads.
	second := proposalSample()
	second.Zones[2].CIDRs = []string{"10.32.0.0/24"}
	made = IPProposalView{}
	json.Unmarshal(e.mustDo("tech67", "POST", "/api/v1/schools/"+monnet+"/ip-proposals", second, 201), &made)
	path2 := "/api/v1/ip-proposals/" + strconv.FormatInt(made.ID, 10)
	code, b, _ := e.do("rssi", "POST", path2+"/refuse", IPProposalRefusal{Reason: " "})
	if code != 422 || !strings.Contains(string(b), `"reason: `) {
		t.Fatalf("refusal without reason: %d %s", code, b)
	}
	e.mustDo("rssi", "POST", path2+"/refuse", IPProposalRefusal{Reason: "La plage 10.32.0.0/24 est réservée à la visioconférence"}, 200)
	made = IPProposalView{}
	json.Unmarshal(e.mustDo("tech67", "GET", path2, nil, 200), &made)
	if made.Status != store.ProposalRefused || made.Reason != "La plage 10.32.0.0/24 est réservée à la visioconférence" {
		t.Fatalf("the technicien reads %+v", made)
	}

	// The draft moved on: another school took the range since.
	third := proposalSample()
	third.Zones[2].CIDRs = []string{"10.33.0.0/24"}
	made = IPProposalView{}
	json.Unmarshal(e.mustDo("tech67", "POST", "/api/v1/schools/"+monnet+"/ip-proposals", third, 201), &made)
	e.mustDo("rssi", "PUT", "/api/v1/schools/0679999Z", map[string]any{"name": "Collège à fermer",
		"zones": []map[string]any{{"name": "pedagogique", "cidrs": []string{"10.33.0.0/25"}, "profile": "eleves"}}}, 200)
	code, b, _ = e.do("rssi", "POST", "/api/v1/ip-proposals/"+strconv.FormatInt(made.ID, 10)+"/validate", IPProposalValidate{})
	if code != 422 || !strings.Contains(string(b), "zones[2].cidrs[0]: ") || !strings.Contains(string(b), "0679999Z") {
		t.Fatalf("an overtaken proposal: %d %s", code, b)
	}
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/schools/"+monnet, nil, 200), &school)
	if school.Zones[2].CIDRs[0] != "10.31.0.0/24" {
		t.Fatalf("the refused validation changed the draft: %+v", school.Zones)
	}

	// Paging, newest first.
	page = Page[IPProposalView]{}
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/ip-proposals?limit=2", nil, 200), &page)
	if len(page.Items) != 2 || page.Next == "" || page.Items[0].ID != made.ID {
		t.Fatalf("first page %+v next %q", page.Items, page.Next)
	}
	next := page.Next
	page = Page[IPProposalView]{}
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/ip-proposals?limit=2&cursor="+next, nil, 200), &page)
	if len(page.Items) != 1 || page.Next != "" || page.Items[0].Status != store.ProposalValidated {
		t.Fatalf("second page %+v", page.Items)
	}
	e.mustDo("rssi", "GET", "/api/v1/ip-proposals?status=perdu", nil, 400)

	// The audit log: who proposed, who validated (both names in the
	// validation's entry), who refused and why, and the denials.
	seen := map[string]map[string]any{}
	denied := 0
	for _, it := range auditEntries(e) {
		a, _ := it["action"].(string)
		if strings.HasPrefix(a, "ipplan.") && seen[a] == nil {
			after, _ := it["after"].(map[string]any)
			if after == nil {
				after = map[string]any{}
			}
			after["actor"], after["target"] = it["actor"], it["target"]
			seen[a] = after
		}
		if a == "access.denied" && it["actor"] == "tech68" && it["target"] == "school/"+monnet {
			denied++
		}
	}
	if p := seen["ipplan.propose"]; p == nil || p["actor"] != "tech67" || p["target"] != "school/"+monnet || p["comment"] != "Nouveau réseau wifi du collège" {
		t.Errorf("propose entry %v", p)
	}
	if p := seen["ipplan.validate"]; p == nil || p["actor"] != "rssi" || p["proposed_by"] != "tech67" || p["validated_by"] != "rssi" {
		t.Errorf("validate entry %v", p)
	}
	if p := seen["ipplan.refuse"]; p == nil || p["actor"] != "rssi" || p["proposed_by"] != "tech67" || !strings.Contains(p["reason"].(string), "visioconférence") {
		t.Errorf("refuse entry %v", p)
	}
	if denied != 2 {
		t.Errorf("%d audited denials of the Haut-Rhin technicien, want 2", denied)
	}
	if res := e.mustDo("auditeur", "GET", "/api/v1/audit/verify", nil, 200); !strings.Contains(string(res), `"ok":true`) {
		t.Errorf("audit chain: %s", res)
	}
}

func equalChange(a, b ipplan.ZoneChange) bool {
	return a.Zone == b.Zone && a.Change == b.Change && slices.Equal(a.CIDRsAdded, b.CIDRsAdded) &&
		slices.Equal(a.CIDRsRemoved, b.CIDRsRemoved) && a.ProfileBefore == b.ProfileBefore && a.ProfileAfter == b.ProfileAfter
}

// TestIPProposalBodyErrors: a malformed body is a 400 naming the field.
func TestIPProposalBodyErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		body string
		want string
	}{
		{`{"zones": "10.31.0.0/24", "comment": "x"}`, "zones"},
		{`{"zones": [], "comment": "x", "uai": "0671234X"}`, "champ inconnu"},
		{`{"zones": [{"name": "wifi", "cidrs": [10]}], "comment": "x"}`, "cidrs"},
		{``, "corps JSON attendu"},
	} {
		code, b, _ := e.do("tech67", "POST", "/api/v1/schools/"+monnet+"/ip-proposals", c.body)
		if code != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s", c.body, code, b)
		}
	}
}
