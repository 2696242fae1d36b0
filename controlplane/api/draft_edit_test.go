package api

import (
	"encoding/json"
	"testing"

	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/rules/policy"
)

// TestKeyedDraftEdits walks the put/delete handlers of the draft's keyed
// collections: a PUT adds an object once and then replaces it in place,
// the body cannot name another object than the path, a DELETE removes it
// once, and the audit trail holds what each step replaced.
func TestKeyedDraftEdits(t *testing.T) {
	rssi := string(auth.RSSI)
	school := func(name string) policy.School {
		return policy.School{Name: name, Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.71.0.0/24"}, Profile: "eleves"}}}
	}
	for _, tc := range []struct {
		name, collection, path, target string
		first, second, mismatch        any
		field                          string // a field that tells first and second apart in the audit
	}{
		{"profile", "/api/v1/profiles", "/api/v1/profiles/cdi", "profile/cdi",
			map[string]any{"name": "CDI", "block": []string{"adult"}},
			map[string]any{"name": "CDI (bis)", "block": []string{"adult"}},
			map[string]any{"id": "autre", "name": "CDI"}, "name"},
		{"category", "/api/v1/categories", "/api/v1/categories/academie_test", "category/academie_test",
			map[string]any{"name_fr": "Test", "usage": "black"},
			map[string]any{"name_fr": "Test bis", "usage": "black"},
			map[string]any{"id": "autre", "name_fr": "Test", "usage": "black"}, "name_fr"},
		{"school", "/api/v1/schools", "/api/v1/schools/0671111A", "school/0671111A",
			school("Collège Neuf"), school("Collège Neuf (bis)"),
			func() policy.School { s := school("Autre"); s.UAI = "0672222B"; return s }(), "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One environment per case: its helpers fail the test they were
			// made with.
			e := newEnv(t)
			count := func(path string) int {
				var page Page[json.RawMessage]
				if err := json.Unmarshal(e.mustDo(rssi, "GET", path+"?limit=1000", nil, 200), &page); err != nil {
					t.Fatal(err)
				}
				return len(page.Items)
			}
			n := count(tc.collection)
			e.mustDo(rssi, "PUT", tc.path, tc.first, 200)
			if got := count(tc.collection); got != n+1 {
				t.Fatalf("after a first PUT: %d objects, want %d", got, n+1)
			}
			e.mustDo(rssi, "PUT", tc.path, tc.second, 200)
			if got := count(tc.collection); got != n+1 {
				t.Fatalf("after a second PUT: %d objects, want %d (replaced in place)", got, n+1)
			}
			e.mustDo(rssi, "PUT", tc.path, tc.mismatch, 422)
			// Categories are not deleted through the API.
			deletable := tc.name != "category"
			if deletable {
				e.mustDo(rssi, "DELETE", tc.path, nil, 204)
				if got := count(tc.collection); got != n {
					t.Fatalf("after DELETE: %d objects, want %d", got, n)
				}
				e.mustDo(rssi, "DELETE", tc.path, nil, 404)
			}

			var page Page[audit.Entry]
			if err := json.Unmarshal(e.mustDo(string(auth.Auditeur), "GET", "/api/v1/audit?limit=1000", nil, 200), &page); err != nil {
				t.Fatal(err)
			}
			field := func(raw json.RawMessage) string {
				if len(raw) == 0 {
					return "-"
				}
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatalf("audit document %s: %v", raw, err)
				}
				s, _ := m[tc.field].(string)
				return s
			}
			var got []string
			for _, en := range page.Items {
				if en.Target == tc.target {
					got = append(got, en.Action+" "+field(en.Before)+" → "+field(en.After))
				}
			}
			name := func(v any) string {
				b, _ := json.Marshal(v)
				return field(b)
			}
			want := []string{
				"draft." + tc.name + ".put - → " + name(tc.first),
				"draft." + tc.name + ".put " + name(tc.first) + " → " + name(tc.second),
			}
			if deletable {
				want = append(want, "draft."+tc.name+".delete "+name(tc.second)+" → -")
			}
			if len(got) != len(want) {
				t.Fatalf("audit of %s:\n%q\nwant\n%q", tc.target, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("audit entry %d of %s: %q, want %q", i, tc.target, got[i], want[i])
				}
			}
		})
	}
}
