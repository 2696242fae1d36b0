package rules_test

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"vigie/rules"
	"vigie/rules/policy"
)

// The figures of these benchmarks are in bench/README.md. Run:
//
//	go test -run '^$' -bench . -benchtime 2000000x -count 5 ./rules/

const blocklists = "../testdata/blocklists"

// ut1Policy blocks every black UT1 category plus adult-top1m: the real
// union of about 380,000 names.
func ut1Policy(tb testing.TB) *policy.Policy {
	p := &policy.Policy{Version: 1, Dir: blocklists,
		Sources: []policy.Source{
			{Name: "ut1", Type: "ut1", Path: "ut1"},
			{Name: "adult-top1m", Type: "plain", Path: "adult-top1m/domains", Category: "adult"},
		},
		Profiles: []policy.Profile{{ID: "all"}},
	}
	probe, _, err := rules.Compile(p)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range probe.Categories() {
		if c.Usage == "black" {
			p.Profiles[0].Block = append(p.Profiles[0].Block, c.ID)
		}
	}
	return p
}

// generated writes n distinct names to a plain list and returns a policy
// blocking them.
func generated(tb testing.TB, n int) *policy.Policy {
	dir := tb.TempDir()
	f, err := os.Create(filepath.Join(dir, "domains"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "site%d-%x.example%d.fr\n", i, i*2654435761, i%1000)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return &policy.Policy{Version: 1, Dir: dir,
		Sources:  []policy.Source{{Name: "gen", Type: "plain", Path: "domains", Category: "gen"}},
		Profiles: []policy.Profile{{ID: "all", Block: []string{"gen"}}},
	}
}

// queries returns 65,536 four-label hosts: half under listed names, half
// unlisted, so that lookups walk all suffixes and miss the cache as real
// traffic does.
func queries(listed func(i int) string) []string {
	q := make([]string, 1<<16)
	for i := range q {
		if i%2 == 0 {
			name := listed(i)
			for strings.Count(name, ".") < 3 {
				name = "www." + name
			}
			q[i] = name
		} else {
			q[i] = fmt.Sprintf("cdn.img%d.unlisted%d.fr", i, i%977)
		}
	}
	return q
}

func benchDecide(b *testing.B, rs *rules.Ruleset, hosts []string) {
	id, _ := rs.Profile("all")
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	blocked := 0
	for i := 0; i < b.N; i++ {
		if rs.Decide(id, rules.Query{Host: hosts[i&(len(hosts)-1)], Time: now}).Action == rules.Block {
			blocked++
		}
	}
	b.StopTimer()
	if blocked == 0 {
		b.Fatal("nothing blocked: the benchmark measures nothing")
	}
}

// benchMap is the baseline: the same suffix walk over a Go map holding
// every name (what a straightforward filter does, at ~80 B per name).
func benchMap(b *testing.B, m map[string]uint16, hosts []string) {
	b.ReportAllocs()
	b.ResetTimer()
	blocked := 0
	for i := 0; i < b.N; i++ {
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
	b.StopTimer()
	if blocked == 0 {
		b.Fatal("nothing blocked")
	}
}

func BenchmarkDecide(b *testing.B) {
	names := readNames(b, filepath.Join(blocklists, "adult-top1m", "domains"))
	hosts := queries(func(i int) string { return names[i%len(names)] })
	b.Run("ut1", func(b *testing.B) {
		p := ut1Policy(b)
		rs, _, err := rules.Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		benchDecide(b, rs, hosts)
	})
	b.Run("ut1-map-baseline", func(b *testing.B) {
		m := map[string]uint16{}
		for _, f := range []string{"ut1/*/domains", "adult-top1m/domains"} {
			files, _ := filepath.Glob(filepath.Join(blocklists, f))
			for _, file := range files {
				for _, n := range readNames(b, file) {
					m[n] = 1
				}
			}
		}
		benchMap(b, m, hosts)
	})
	b.Run("5M", func(b *testing.B) {
		rs := compiled5M(b)
		benchDecide(b, rs, queries(func(i int) string {
			j := i * 76 % 5_000_000
			return fmt.Sprintf("site%d-%x.example%d.fr", j, j*2654435761, j%1000)
		}))
	})
}

func readNames(tb testing.TB, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Fields(string(data))
}

var cache5M struct {
	rs     *rules.Ruleset
	bundle []byte
	heap   float64
}

func compiled5M(b *testing.B) *rules.Ruleset {
	if cache5M.rs == nil {
		p := generated(b, 5_000_000)
		rs, _, err := rules.Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		cache5M.rs = rs
	}
	return cache5M.rs
}

// BenchmarkCompile5M: parse, normalise, hash, sort and merge 5 M names.
func BenchmarkCompile5M(b *testing.B) {
	p := generated(b, 5_000_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rs, _, err := rules.Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		cache5M.rs = rs
	}
}

// BenchmarkLoad5M: verify the signature and every section hash of a 5 M
// bundle and view it in place.
func BenchmarkLoad5M(b *testing.B) {
	rs := compiled5M(b)
	data, err := rules.EncodeBundle(rs, 1, time.Now(), testKey)
	if err != nil {
		b.Fatal(err)
	}
	pub := testKey.Public()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := rules.DecodeBundle(data, pub.(ed25519.PublicKey)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/5e6, "bundle-B/domain")
}

// BenchmarkMemory5M reports resident bytes per domain of a loaded 5 M
// ruleset beside a map[string]struct{} of the same names, in the same run.
func BenchmarkMemory5M(b *testing.B) {
	for i := 0; i < b.N; i++ {
		p := generated(b, 5_000_000)
		rs, _, err := rules.Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		data, err := rules.EncodeBundle(rs, 1, time.Now(), testKey)
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "p.bundle")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		rs, cache5M.rs, data = nil, nil, nil
		// Resident cost of a loaded generation: the bundle bytes (the
		// domain set is viewed in place) plus what loading allocates.
		before := heap()
		raw, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		loaded, _, err := rules.DecodeBundle(raw, testKey.Public().(ed25519.PublicKey))
		if err != nil {
			b.Fatal(err)
		}
		vigie := float64(heap()-before) / 5e6
		runtime.KeepAlive(loaded)
		runtime.KeepAlive(raw)
		loaded, raw = nil, nil

		before = heap()
		m := make(map[string]struct{})
		for j := 0; j < 5_000_000; j++ {
			m[fmt.Sprintf("site%d-%x.example%d.fr", j, j*2654435761, j%1000)] = struct{}{}
		}
		base := float64(heap()-before) / 5e6
		runtime.KeepAlive(m)
		b.ReportMetric(vigie, "vigie-B/domain")
		b.ReportMetric(base, "map-B/domain")
		b.ReportMetric(vigie/base, "ratio")
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkDecidePaired measures Decide and the map baseline of
// BenchmarkDecide interleaved, in alternating blocks of the same queries, so
// that the load of a shared machine weighs on both alike: the ratio metric
// is the figure to compare across runs. decide-ns and map-ns are per host, in
// CPU time of the benchmark's thread, so time the core spends on other
// processes counts on neither side.
func BenchmarkDecidePaired(b *testing.B) {
	names := readNames(b, filepath.Join(blocklists, "adult-top1m", "domains"))
	b.Run("ut1", func(b *testing.B) {
		rs, _, err := rules.Compile(ut1Policy(b))
		if err != nil {
			b.Fatal(err)
		}
		m := map[string]uint16{}
		for _, f := range []string{"ut1/*/domains", "adult-top1m/domains"} {
			files, _ := filepath.Glob(filepath.Join(blocklists, f))
			for _, file := range files {
				for _, n := range readNames(b, file) {
					m[n] = 1
				}
			}
		}
		benchPaired(b, rs, m, queries(func(i int) string { return names[i%len(names)] }))
	})
	b.Run("5M", func(b *testing.B) {
		rs := compiled5M(b)
		m := make(map[string]uint16, 5_000_000)
		for j := 0; j < 5_000_000; j++ {
			m[fmt.Sprintf("site%d-%x.example%d.fr", j, j*2654435761, j%1000)] = 1
		}
		benchPaired(b, rs, m, queries(func(i int) string {
			j := i * 76 % 5_000_000
			return fmt.Sprintf("site%d-%x.example%d.fr", j, j*2654435761, j%1000)
		}))
	})
}

func benchPaired(b *testing.B, rs *rules.Ruleset, m map[string]uint16, hosts []string) {
	id, _ := rs.Profile("all")
	now := time.Now()
	const block = 1024
	var tDecide, tMap time.Duration
	blockedD, blockedM := 0, 0
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		t0 := threadClock()
		for i := done; i < done+n; i++ {
			if rs.Decide(id, rules.Query{Host: hosts[i&(len(hosts)-1)], Time: now}).Action == rules.Block {
				blockedD++
			}
		}
		t1 := threadClock()
		for i := done; i < done+n; i++ {
			h := hosts[i&(len(hosts)-1)]
			for {
				if _, ok := m[h]; ok {
					blockedM++
					break
				}
				dot := strings.IndexByte(h, '.')
				if dot < 0 {
					break
				}
				h = h[dot+1:]
			}
		}
		t2 := threadClock()
		tDecide += t1 - t0
		tMap += t2 - t1
	}
	b.StopTimer()
	if blockedD == 0 || blockedD != blockedM {
		b.Fatalf("Decide blocked %d hosts, the map %d", blockedD, blockedM)
	}
	d, mp := float64(tDecide)/float64(b.N), float64(tMap)/float64(b.N)
	b.ReportMetric(d, "decide-ns")
	b.ReportMetric(mp, "map-ns")
	b.ReportMetric(d/mp, "ratio")
}
