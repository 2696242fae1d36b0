package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestAdminReport: "vigie admin report" prints the yearly review's
// figures, writes the printable HTML with --out, gives the JSON with
// --json, and refuses an incomplete question before asking the server.
func TestAdminReport(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	year := strconv.Itoa(time.Now().Year())
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := runAdmin(append([]string{"--server", cp.URL, "--token", cp.RSSIToken}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	file := filepath.Join(t.TempDir(), "revue.html")
	out, errOut, err := run("report", "--year", year, "--uai", "0671234X", "--out", file)
	if err != nil {
		t.Fatalf("report: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"yearly review " + year, "versions published", "availability", "blocked requests", "requisition exports", "software in service"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "wrote "+file) {
		t.Errorf("no word of the file written: %q", errOut)
	}
	html, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!doctype html>", "Revue annuelle conjointe", `<svg class="chart"`, "@page"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	out, _, err = run("--json", "report", "--year", year, "--departement", "67")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Departement string `json:"departement"`
		Schools     []struct {
			UAI string `json:"uai"`
		} `json:"schools"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Departement != "067" || len(rep.Schools) == 0 {
		t.Fatalf("report --json: %v %+v\n%s", err, rep, out)
	}
	if _, _, err := run("report", "--year", year); err == nil || !strings.Contains(err.Error(), "--uai") {
		t.Errorf("a report of nothing: %v", err)
	}
	if _, _, err := run("report", "--year", "1990", "--uai", "0671234X"); err == nil || !strings.Contains(err.Error(), "422") && !strings.Contains(err.Error(), "année") {
		t.Errorf("a year before any record: %v", err)
	}
}
