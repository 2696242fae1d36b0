package rules_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"vigie/rules"
)

// schoolHead is the head of a collège's traffic as gateway logs show it:
// search, video, office suites, the ENT and Pronote, OS telemetry and
// certificate checks. They lead the Zipf ranking of zipfTrace.
var schoolHead = []string{
	"www.google.fr", "www.google.com", "fonts.gstatic.com", "www.gstatic.com",
	"fonts.googleapis.com", "connectivitycheck.gstatic.com", "safebrowsing.googleapis.com",
	"accounts.google.com", "clients4.google.com", "play.google.com", "ocsp.pki.goog",
	"www.youtube.com", "i.ytimg.com", "fr.wikipedia.org", "upload.wikimedia.org",
	"login.microsoftonline.com", "outlook.office365.com", "www.office.com",
	"graph.microsoft.com", "settings-win.data.microsoft.com", "ctldl.windowsupdate.com",
	"edge.microsoft.com", "www.bing.com", "ocsp.digicert.com", "captive.apple.com",
	"detectportal.firefox.com", "www.education.gouv.fr", "eduscol.education.fr",
	"0750001a.index-education.net", "www.index-education.com", "www.ecoledirecte.com",
	"www.lumni.fr", "www.qwant.com", "api.qwant.com", "www.lemonde.fr",
	"www.francetvinfo.fr", "cdn.jsdelivr.net", "ajax.googleapis.com", "www.geogebra.org",
	"scratch.mit.edu", "app.pix.fr", "www.pix.fr", "www.labomep.net",
}

// zipfTrace returns 65,536 hosts drawn with a Zipf law (s ≈ 1) over real
// names: the school head above, then, in a fixed shuffled order, names of
// the white UT1 categories (and subdomains of them, which the set does not
// hold) and about one in ten names of the blocked categories. It also
// returns a map of every blocked name, the baseline of benchPaired.
func zipfTrace(tb testing.TB, probe *rules.Ruleset) (hosts []string, blocked map[string]uint16) {
	var white, black []string
	blocked = map[string]uint16{}
	for _, c := range probe.Categories() {
		names := readOptional(tb, filepath.Join(blocklists, "ut1", c.ID, "domains"))
		switch c.Usage {
		case "black":
			for _, n := range names {
				blocked[n] = 1
			}
			black = append(black, names...)
		case "white":
			white = append(white, names...)
		}
	}
	adult := readNames(tb, filepath.Join(blocklists, "adult-top1m", "domains"))
	for _, n := range adult {
		blocked[n] = 1
	}
	black = append(black, adult...)
	if len(white) == 0 || len(black) == 0 {
		tb.Fatalf("trace: %d white and %d black names", len(white), len(black))
	}
	r := rand.New(rand.NewPCG(20, 1))
	const pool = 50_000
	ranked := append([]string(nil), schoolHead...)
	for len(ranked) < pool {
		w := white[r.IntN(len(white))]
		if c := w[len(w)-1]; c >= '0' && c <= '9' {
			// An IP literal of a white list has no subdomains.
			ranked = append(ranked, w)
			continue
		}
		switch x := r.IntN(100); {
		case x < 10:
			ranked = append(ranked, black[r.IntN(len(black))])
		case x < 55:
			ranked = append(ranked, "www."+w)
		case x < 70:
			ranked = append(ranked, fmt.Sprintf("cdn%d.%s", x, w))
		default:
			ranked = append(ranked, w)
		}
	}
	z := rand.NewZipf(r, 1.01, 1, pool-1)
	hosts = make([]string, 1<<16)
	for i := range hosts {
		hosts[i] = ranked[z.Uint64()]
	}
	return hosts, blocked
}

func readOptional(tb testing.TB, path string) []string {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Fields(string(data))
}

// BenchmarkDecideZipf measures Decide on the realistic trace of zipfTrace,
// in thread CPU time, in alternating blocks of the same hosts: with the
// verdict cache (decide-ns), without it (nocache-ns) and the map baseline
// (map-ns). ratio is decide-ns / map-ns, cache-gain nocache-ns / decide-ns.
func BenchmarkDecideZipf(b *testing.B) {
	rs, _, err := rules.Compile(ut1Policy(b))
	if err != nil {
		b.Fatal(err)
	}
	hosts, m := zipfTrace(b, rs)
	plain := rules.WithoutVerdictCache(rs)
	id, _ := rs.Profile("all")
	now := time.Now()
	const block = 1024
	var tCached, tPlain, tMap time.Duration
	var nCached, nPlain, nMap int
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		t0 := threadClock()
		nCached += zipfCached(rs, id, hosts, now, done, done+n)
		t1 := threadClock()
		nPlain += zipfPlain(plain, id, hosts, now, done, done+n)
		t2 := threadClock()
		nMap += zipfMap(m, hosts, done, done+n)
		t3 := threadClock()
		tCached += t1 - t0
		tPlain += t2 - t1
		tMap += t3 - t2
	}
	b.StopTimer()
	if (nCached == 0 && b.N >= 10_000) || nCached != nPlain || nCached != nMap {
		b.Fatalf("blocked: %d with the cache, %d without, %d by the map", nCached, nPlain, nMap)
	}
	c, p, mp := float64(tCached)/float64(b.N), float64(tPlain)/float64(b.N), float64(tMap)/float64(b.N)
	b.ReportMetric(c, "decide-ns")
	b.ReportMetric(p, "nocache-ns")
	b.ReportMetric(mp, "map-ns")
	b.ReportMetric(c/mp, "ratio")
	b.ReportMetric(p/c, "cache-gain")
	b.ReportMetric(100*float64(nCached)/float64(b.N), "blocked-%")
}

// zipfCached, zipfPlain and zipfMap are the three timed loops, as separate
// functions that callgrind can count one by one:
//
//	go test -c -o /tmp/rules.test ./rules/
//	valgrind --tool=callgrind /tmp/rules.test -test.run '^$' \
//		-test.bench DecideZipf -test.benchtime 200000x
//	callgrind_annotate --inclusive=yes callgrind.out.* | grep zipf
//
//go:noinline
func zipfCached(rs *rules.Ruleset, id rules.ProfileID, hosts []string, now time.Time, from, to int) int {
	return zipfDecide(rs, id, hosts, now, from, to)
}

//go:noinline
func zipfPlain(rs *rules.Ruleset, id rules.ProfileID, hosts []string, now time.Time, from, to int) int {
	return zipfDecide(rs, id, hosts, now, from, to)
}

func zipfDecide(rs *rules.Ruleset, id rules.ProfileID, hosts []string, now time.Time, from, to int) (blocked int) {
	for i := from; i < to; i++ {
		if rs.Decide(id, rules.Query{Host: hosts[i&(len(hosts)-1)], Time: now}).Action == rules.Block {
			blocked++
		}
	}
	return blocked
}

//go:noinline
func zipfMap(m map[string]uint16, hosts []string, from, to int) (blocked int) {
	for i := from; i < to; i++ {
		h := hosts[i&(len(hosts)-1)]
		for {
			if _, ok := m[h]; ok {
				blocked++
				break
			}
			dot := strings.IndexByte(h, '.')
			if dot < 0 {
				break
			}
			h = h[dot+1:]
		}
	}
	return blocked
}
