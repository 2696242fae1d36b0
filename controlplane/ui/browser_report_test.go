package ui

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// seedReportHistory gives Jean Monnet's edge a year's worth of what the
// report reads besides the archive: its state, its history (a version
// applied, an outage, a refusal, a software update) and a completed
// export in the audit log. Sign in after it: the clock moves.
func (e *env) seedReportHistory(t *testing.T) {
	ctx := context.Background()
	// The history starts when the store was created: move the clock on
	// so that the events below fall after that start.
	e.clock.advance(6 * time.Hour)
	now := e.clock.now()
	err := e.st.Update(ctx, func(tx store.Tx) error {
		err := tx.RecordEdgeStatus(ctx, map[string]store.EdgeStatus{"0671234x-1": {LastSeen: now.Add(-time.Minute), AppliedSerial: 1,
			AppliedHash: e.pub.Head().Hash, Software: "vigie 1.4.0"}})
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: now.Add(-2 * time.Hour), Actor: "chef", Role: "chef_etablissement", Action: "export",
			Target: "school/" + monnet, After: []byte(`{"status":"complète"}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = store.History(e.st).AddEdgeEvents(ctx, []store.EdgeEvent{
		{Edge: "0671234x-1", Kind: store.EventApplied, At: now.Add(-5 * time.Hour), Serial: 1},
		{Edge: "0671234x-1", Kind: store.EventOutage, At: now.Add(-4 * time.Hour), Until: now.Add(-3 * time.Hour)},
		{Edge: "0671234x-1", Kind: store.EventRefused, At: now.Add(-3 * time.Hour), Serial: 1, Detail: "section injoignable"},
		{Edge: "0671234x-1", Kind: store.EventSoftware, At: now.Add(-2 * time.Hour), Detail: "vigie 1.4.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrowserYearlyReport: a chef opens their school's yearly report on a
// phone: it renders with its charts and tables, nothing overflows 320 px,
// the text is French, and printing hides the menu and the form. The
// stand-alone document of "vigie admin report --out" passes the same scan.
func TestBrowserYearlyReport(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seedReportHistory(t)
	b := newBrowser(t)
	p := b.person(t, e.srv.URL)
	p.login("chef", e.passwd["chef"])
	p.do("phone screen", chromedp.EmulateViewport(320, 640))
	year := strconv.Itoa(e.clock.now().In(paris).Year())
	p.open("/rapport-annuel?annee=" + year)
	p.waitText("#rapport", "Collège Jean Monnet", 10*time.Second)
	for _, want := range []string{"Versions de la politique", "Disponibilité des passerelles", "Requêtes bloquées",
		"Extractions sur réquisition", "section injoignable", "vigie 1.4.0", "1 extraction complète"} {
		p.waitText("#rapport", want, 2*time.Second)
	}
	if n := eval[int](p, `document.querySelectorAll("#rapport svg.chart").length`); n != 5 {
		t.Errorf("%d charts in the report, want 5", n)
	}
	for _, prob := range p.scan() {
		t.Errorf("report at 320 px: %s", prob)
	}
	p.accessible()
	p.shot("50-rapport-annuel-telephone")

	p.do("print", chromedp.EmulateViewport(1024, 900))
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	hidden := eval[bool](p, `getComputedStyle(document.querySelector("nav.side")).display === "none" && getComputedStyle(document.querySelector(".report-form")).display === "none"`)
	if !hidden {
		t.Error("printing keeps the menu or the form")
	}
	chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})

	// The document the CLI writes, opened from a file.
	var rep bytes.Buffer
	if err := RenderReport(&rep, reportFixture()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "revue.html")
	if err := os.WriteFile(file, rep.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	p.do("phone screen", chromedp.EmulateViewport(320, 640))
	p.do("open the document", chromedp.Navigate("file://"+file), chromedp.WaitReady(chromedp.CSS("#rapport")))
	for _, prob := range p.scan() {
		t.Errorf("stand-alone report at 320 px: %s", prob)
	}
}
