package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"vigie/tstest"
)

// chromiumPath is Debian's chromium, which CI installs (.ci/run).
const chromiumPath = "/usr/bin/chromium"

// screenshots are kept with the package: they are the pages as reviewed.
const (
	screenshotDir = "testdata/screenshots"
	maxShotHeight = 2000
)

// browser is one headless Chromium for a test; each person of a scenario
// gets their own browser context (cookies, storage) in it.
type browser struct {
	t     *testing.T
	alloc context.Context
	root  context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("chromium is required for the UI tests and is missing (%v): apt-get install chromium", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "fr-FR"),
		chromedp.Flag("accept-lang", "fr-FR,fr"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelRoot()
		cancelAlloc()
	})
	return &browser{t: t, alloc: alloc, root: root}
}

// person is one browser context: a tab with its own cookies.
type person struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *browser) person(t *testing.T, base string) *person {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Open the tab with a context without deadline: the first run binds
	// the tab's life to its context, and each step below has its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &person{t: t, ctx: ctx, base: base}
}

// do runs steps with a bound on their time, failing the test with what
// was being done.
func (p *person) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v (page %s)", what, err, p.location())
	}
}

func (p *person) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	l, _ := chromedp.Run(ctx, chromedp.Location())
	return l
}

// open navigates to a path of the control plane and waits for its title.
func (p *person) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// text returns the visible text of the first element matching css.
func (p *person) text(css string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		p.t.Fatalf("read %s: %v (page %s)", css, err, p.location())
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p *person, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("evaluate %q: %v (page %s)", js, err, p.location())
	}
	return v
}

// waitText waits until the element matching css contains want.
func (p *person) waitText(css, want string, within time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, within)
	defer cancel()
	js := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.indexOf(%q)>=0;})()`, css, want)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting for %q in %s: %v (page %s, text %q)", want, css, err, p.location(), shorten(p.textNow(css), 400))
	}
}

func (p *person) textNow(css string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, css)))
	return s
}

// login signs in through the form like a person would.
func (p *person) login(login, password string) {
	p.t.Helper()
	p.open("/connexion")
	p.do("login as "+login,
		chromedp.SendKeys(chromedp.ID("login"), login),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.side`)),
	)
}

// shot takes a full-page screenshot and, with -update, saves it under
// testdata/screenshots.
func (p *person) shot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	// Fix the caret and hover states out of the picture.
	chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur && document.activeElement.blur()`))
	// The whole page, cut at maxShotHeight: the screenshots are kept in
	// the repository and a page of 80 categories would weigh a megabyte.
	height := eval[float64](p, `document.documentElement.scrollHeight`)
	if height > maxShotHeight {
		height = maxShotHeight
	}
	res, err := chromedp.Call(ctx, cdppage.CaptureScreenshot, cdppage.CaptureScreenshotParams{
		Format: cdppage.CaptureScreenshotFormatPng, CaptureBeyondViewport: new(true),
		Clip: &cdppage.Viewport{Width: min(1280, eval[float64](p, `window.innerWidth`)), Height: height, Scale: 1},
	})
	png := res.Data
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 1000 {
		p.t.Fatalf("screenshot %s: %d bytes, not a page", name, len(png))
	}
	// The kept screenshots change only on purpose (go test -update): a
	// plain run would rewrite them all, their dates and clocks differing.
	if !*update {
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// submit clicks the submit button of the form matching css and waits
// for the next page: a new document (the old one is marked), loaded.
// Polling the page while it navigates away can fail ("cannot find
// context"): such failures are retried until the bound.
func (p *person) submit(css string) {
	p.t.Helper()
	p.press(css + ` button[type=submit]`)
}

// press clicks the button matching css and waits for the next page, as
// submit does.
func (p *person) press(css string) {
	p.t.Helper()
	p.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__vigieOld = true`))
	p.do("press "+css, chromedp.Click(chromedp.CSS(css)))
	var last error
	if !tstest.WaitFor(60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.__vigieOld && document.readyState === "complete" && !!document.querySelector("main")`))
		cancel()
		if err != nil {
			last = err
		}
		return err == nil && ok
	}) {
		p.t.Fatalf("after submit %s: no new page within 60s (last error %v, page %s)", css, last, p.location())
	}
}

func contains(s string, subs ...string) string {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}
