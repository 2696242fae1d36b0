package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestReportInPoll: an edge's long-poll may carry the report of the
// version it applied (applied, hash, software), recorded as POST
// /edge/status would record it, and every poll answer says so.
func TestReportInPoll(t *testing.T) {
	e := newEnv(t)
	h := e.srv.Publisher().Head()
	for _, tt := range []struct {
		name        string
		query       string
		code        int
		wantSerial  float64
		wantErrText string
	}{
		{"a known version", fmt.Sprintf("applied=%d&hash=%s&software=poll-1", h.Serial, h.Hash), 204, float64(h.Serial), ""},
		{"a version never published is a claim", "applied=99&hash=abcd&software=poll-1", 204, float64(h.Serial), "version inconnue"},
		{"the known version again ends the claim", fmt.Sprintf("applied=%d&hash=%s&software=poll-1", h.Serial, h.Hash), 204, float64(h.Serial), ""},
		{"not a serial", "applied=x", 400, float64(h.Serial), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, hdr := e.do("edge", "GET", fmt.Sprintf("/api/v1/edge/bundle?after=%d&part=delta&wait=0&%s", h.Serial, tt.query), nil)
			if code != tt.code {
				t.Fatalf("poll answered %d %s, want %d", code, body, tt.code)
			}
			if code == 204 && hdr.Get(ReportInPoll) == "" {
				t.Fatalf("poll answer without %s", ReportInPoll)
			}
			var eh map[string]any
			json.Unmarshal(e.mustDo("technicien", "GET", "/api/v1/edges/monnet-1", nil, 200), &eh)
			if eh["applied_serial"].(float64) != tt.wantSerial || eh["software"] != "poll-1" {
				t.Fatalf("edge %v, want serial %v from software poll-1", eh, tt.wantSerial)
			}
			errText, _ := eh["last_error"].(string)
			if (tt.wantErrText == "") != (errText == "") || !strings.Contains(errText, tt.wantErrText) {
				t.Fatalf("edge error %q, want %q", errText, tt.wantErrText)
			}
		})
	}
}
