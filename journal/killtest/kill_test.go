package killtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vigie/cli"
	"vigie/demo"
	"vigie/journal"
	"vigie/journal/segment"
	"vigie/keyfile"
	"vigie/rules"
	"vigie/tstest"
)

// edgeEnv makes the test binary run `vigie edge` (cli.Main, the binary's
// own entry point) when set: the process the test kills.
const edgeEnv = "VIGIE_KILLTEST_EDGE_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(edgeEnv); cfg != "" {
		os.Exit(cli.Main([]string{"edge", "--config", cfg}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// answer is what one client received: the request went out at sent and
// its answer came back at got.
type answer struct {
	sent, got time.Time
	host      string // DNS: the name asked
	url       string // HTTP: the URL refused
	ref       string // HTTP: the reference on the block page
}

var refOnPage = regexp.MustCompile(`[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}`)

// TestKill9UnderLoad kills the edge with SIGKILL under load, restarts it
// and does it again. Afterwards every answer a client received has its
// record in the journal, or falls inside a loss interval the journal
// declared; every reference shown on a block page is in the journal.
// VIGIE_KILL_RUNS sets the number of kills. The default is the 50
// when CI is set (about 100 s under -race) and 8 otherwise (under a
// minute on a workstation). The summary line is a t.Logf: run with -v to
// read the figures.
func TestKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real edge process repeatedly")
	}
	runs := 8
	if os.Getenv("CI") != "" {
		runs = 50
	}
	if v := os.Getenv("VIGIE_KILL_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			t.Fatalf("VIGIE_KILL_RUNS=%q", v)
		}
		runs = n
	}
	dir := t.TempDir()
	cfgPath, dnsAddr, httpAddr := setup(t, dir)

	var mu sync.Mutex
	var answers []answer
	add := func(a answer) {
		mu.Lock()
		answers = append(answers, a)
		mu.Unlock()
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for run := 0; run <= runs; run++ {
		cmd, done := startEdge(t, cfgPath, dir, run)
		waitReady(t, dnsAddr, done)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() { defer wg.Done(); dnsLoad(ctx, dnsAddr, fmt.Sprintf("r%dw%d", run, w), w%2 == 1, add) }()
		}
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() { defer wg.Done(); httpLoad(ctx, httpAddr, fmt.Sprintf("r%dw%d", run, w), add) }()
		}
		time.Sleep(time.Duration(150+rng.IntN(250)) * time.Millisecond)
		if run < runs {
			cmd.Process.Signal(syscall.SIGKILL)
		} else {
			// The last run ends cleanly: the journal is closed as in
			// production, and read back below.
			cmd.Process.Signal(syscall.SIGTERM)
		}
		<-done
		cancel()
		wg.Wait()
	}

	// Read the whole journal back.
	key, err := keyfile.LoadPrivate(filepath.Join(dir, "state", "journal.key"))
	if err != nil {
		t.Fatal(err)
	}
	byHost, byURL, refs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	type interval struct{ from, to time.Time }
	var declared []interval
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		l, err := segment.Open(segment.Options{Dir: filepath.Join(dir, "state", "journal", s.String()), UAI: demo.UAI, Stream: s, Key: key, MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		if l.Recovery().Crash != nil {
			t.Errorf("%s: the clean stop of the last run was taken for a crash", s)
		}
		res, err := l.Verify(func(r *journal.Record) error {
			if from, to, ok := r.CrashInterval(); ok {
				declared = append(declared, interval{from, to})
			}
			switch r.Proto {
			case "dns":
				byHost[strings.TrimSuffix(strings.ToLower(r.Host), ".")] = true
			case "http":
				byURL[r.URL] = true
				if r.Reference != "" {
					refs[r.Reference] = true
				}
			}
			return nil
		})
		l.Close()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if len(res.Breaks) > 0 {
			t.Errorf("%s: chain breaks %v", s, res.Breaks)
		}
	}
	var received, dnsN, httpN, recorded, inside, outside, refsMissing int
	for _, a := range answers {
		received++
		var ok bool
		if a.host != "" {
			dnsN++
			ok = byHost[a.host]
		} else {
			httpN++
			ok = byURL[a.url]
			if !refs[a.ref] {
				refsMissing++
				t.Errorf("block page reference %s (%s, received %s) is not in the journal", a.ref, a.url, a.got.Format(time.RFC3339Nano))
			}
		}
		if ok {
			recorded++
			continue
		}
		covered := false
		for _, d := range declared {
			if !a.got.Before(d.from) && !a.sent.After(d.to) {
				covered = true
				break
			}
		}
		if covered {
			inside++
		} else {
			outside++
			t.Errorf("answer with no record outside any declared interval: %+v", a)
		}
	}
	t.Logf("kill -9 runs %d: answers received %d (DNS %d, HTTP block pages %d), recorded %d, missing %d (inside declared intervals %d, outside %d), declared intervals %d, block references missing %d",
		runs, received, dnsN, httpN, recorded, inside+outside, inside, outside, len(declared), refsMissing)
	if received < runs*20 {
		t.Fatalf("only %d answers in %d runs: the load did not run", received, runs)
	}
	if len(declared) < runs {
		t.Fatalf("%d loss intervals declared for %d kills (at least one per kill expected)", len(declared), runs)
	}
}

// setup writes the edge's configuration: the demo policy compiled into a
// signed bundle, a real DNS upstream on loopback, the explicit proxy.
func setup(t *testing.T, dir string) (cfgPath, dnsAddr, httpAddr string) {
	lists, err := demo.WriteSample(filepath.Join(dir, "lists"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := demo.Policy(lists)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.Compile(pol)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "academie.key")
	if _, err := keyfile.Generate(keyPath); err != nil {
		t.Fatal(err)
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rules.EncodeBundle(rs, 1, time.Now(), key)
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "policy.bundle")
	if err := os.WriteFile(bundlePath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	upstream := startUpstream(t)
	dnsAddr, httpAddr = freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`uai: %s
state_dir: %s
public_key: %s
bundle: %s
dns:
  listen: %s
  upstreams: [%s]
  cache:
    entries: 0
http:
  explicit: %s
journal:
  commit_interval: 5ms
`, demo.UAI, filepath.Join(dir, "state"), keyPath+".pub", bundlePath, dnsAddr, upstream, httpAddr)
	cfgPath = filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dnsAddr, httpAddr
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The same port is free for UDP too in practice; the edge says if not.
	return ln.Addr().String()
}

// startUpstream answers every A query with an address of the simulated
// internet.
func startUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(198, 51, 100, 7)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func startEdge(t *testing.T, cfgPath, dir string, run int) (*exec.Cmd, chan struct{}) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), edgeEnv+"="+cfgPath)
	logf, err := os.OpenFile(filepath.Join(dir, "edge.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== run %d\n", run)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, done
}

// waitReady waits until the edge answers DNS.
func waitReady(t *testing.T, addr string, done chan struct{}) {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	exited := false
	tstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		m := new(dns.Msg)
		m.SetQuestion("ready.allowed.test.", dns.TypeA)
		_, _, err := c.Exchange(m, addr)
		return err == nil
	}, "the edge did not answer DNS")
	if exited {
		t.Fatal("the edge exited during start (see edge.log in the test's directory)")
	}
}

// dnsLoad asks unique names, allowed or blocked, until ctx ends.
func dnsLoad(ctx context.Context, addr, tag string, blocked bool, add func(answer)) {
	c := &dns.Client{Timeout: time.Second}
	for i := 0; ctx.Err() == nil && i < 100000; i++ {
		host := fmt.Sprintf("q%d-%s.allowed.test", i, tag)
		if blocked {
			host = fmt.Sprintf("q%d-%s.pornhub.com", i, tag)
		}
		m := new(dns.Msg)
		m.SetQuestion(host+".", dns.TypeA)
		sent := time.Now()
		// Once the edge has closed its port, the kernel may give a client
		// socket that very port as its own: the query then comes back to
		// its sender, same id, and Exchange returns it. Only a response
		// is an answer.
		if r, _, err := c.Exchange(m, addr); err == nil && r.Response {
			add(answer{sent: sent, got: time.Now(), host: host})
		}
	}
}

// httpLoad asks the explicit proxy for blocked URLs until ctx ends; each
// block page carries a reference.
func httpLoad(ctx context.Context, addr, tag string, add func(answer)) {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr}), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	for i := 0; ctx.Err() == nil && i < 100000; i++ {
		u := fmt.Sprintf("http://pornhub.com/%s-%d", tag, i)
		sent := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			continue
		}
		body, err := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		if err != nil || resp.StatusCode != 403 {
			continue
		}
		ref := refOnPage.Find(body)
		if ref == nil {
			continue
		}
		add(answer{sent: sent, got: time.Now(), url: u, ref: string(ref)})
	}
}
