package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane"
	"vigie/demo"
	"vigie/keyfile"
	"vigie/proxy/edge"
	"vigie/rules"
	"vigie/tstest"
)

// stack is a demo edge and a control plane running in this process on
// loopback, each serving /metrics as it would in production.
type stack struct {
	edgeMetrics, cpMetrics string // host:port of each /metrics
	dnsAddr, proxyAddr     string
}

// freePort returns a loopback port free for both UDP and TCP right now.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// startUpstream runs a tiny authoritative server answering every A query
// with a documentation address: the edge's DNS upstream.
func startUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 && strings.HasSuffix(r.Question[0].Name, ".timeout.test.") {
			return // never answer: the edge counts an upstream timeout
		}
		if len(r.Question) == 1 && r.Question[0].Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A: net.IPv4(198, 51, 100, 10)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startStack starts the control plane and an edge on the demo policy, as
// "vigie demo" does, and sends them a little traffic so that every
// component has counted something.
func startStack(t *testing.T) stack {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	keyPath := filepath.Join(dir, "academie.key")
	if _, err := keyfile.Generate(keyPath); err != nil {
		t.Fatal(err)
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		t.Fatal(err)
	}

	// Control plane, its own registry, /metrics on its own address.
	s := stack{cpMetrics: addr(freePort(t))}
	cpDir := filepath.Join(dir, "cp")
	os.MkdirAll(cpDir, 0o750)
	cp, err := controlplane.Open(ctx, controlplane.Config{DataDir: cpDir, Key: keyPath, MetricsListen: s.cpMetrics, InsecureCookies: true}, controlplane.Deps{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- cp.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-served
		cp.Close()
	})

	// Edge on the demo policy, as a signed bundle.
	lists, err := demo.WriteSample(filepath.Join(dir, "lists"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := demo.Policy(lists)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := rules.EncodeBundle(rs, 3, time.Now(), key)
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "demo.bundle")
	os.WriteFile(bundlePath, data, 0o640)
	s.dnsAddr, s.proxyAddr, s.edgeMetrics = addr(freePort(t)), addr(freePort(t)), addr(freePort(t))
	cfg := edge.Config{
		UAI: demo.UAI, StateDir: filepath.Join(dir, "edge"), PublicKey: keyPath + ".pub", Bundle: bundlePath,
		DNS:     edge.DNSConfig{Listen: s.dnsAddr, Upstreams: []string{startUpstream(t)}, UDPSockets: 1, Timeout: 200 * time.Millisecond},
		HTTP:    edge.HTTPConfig{Explicit: s.proxyAddr},
		Metrics: edge.MetricsConfig{Listen: s.edgeMetrics},
	}
	e, err := edge.New(cfg, edge.Deps{Log: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background()) })

	// Traffic: allowed and blocked names over DNS, a blocked page through
	// the proxy.
	c := &mdns.Client{Timeout: 2 * time.Second}
	for _, name := range []string{"eduscol.education.fr.", "pornhub.com.", "www.pornhub.com.", "eduscol.education.fr."} {
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		if _, _, err := c.Exchange(m, s.dnsAddr); err != nil {
			t.Fatalf("DNS query %s to the edge: %v", name, err)
		}
	}
	// An upstream that never answers, and a malformed packet (a header
	// announcing a question that is not there).
	m := new(mdns.Msg)
	m.SetQuestion("x.timeout.test.", mdns.TypeA)
	c.Exchange(m, s.dnsAddr)
	if u, err := net.Dial("udp", s.dnsAddr); err == nil {
		u.Write([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0})
		u.Close()
	}
	proxyURL, _ := url.Parse("http://" + s.proxyAddr)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://www.pornhub.com/")
	if err != nil {
		t.Fatalf("request through the edge's proxy: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("blocked page through the proxy: status %d, want 403", resp.StatusCode)
	}
	return s
}

func scrape(t *testing.T, hostport string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + hostport + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d %v", hostport, resp.StatusCode, err)
	}
	return body
}

// TestLiveMetrics starts the edge and the control plane in this process,
// checks their /metrics with promtool, then has a real Prometheus scrape
// them and runs every dashboard and alert query against what it stored.
func TestLiveMetrics(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	s := startStack(t)

	exposed := map[string]bool{}
	for _, c := range []struct{ name, addr string }{{"edge", s.edgeMetrics}, {"controlplane", s.cpMetrics}} {
		t.Run("promtool check metrics "+c.name, func(t *testing.T) {
			body := scrape(t, c.addr)
			for _, line := range strings.Split(string(body), "\n") {
				if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
					exposed[strings.Fields(f)[0]] = true
				}
			}
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(body)
			out, err := cmd.CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", c.name, err, out)
			}
		})
	}
	// Every family the code registers under vigie_ is exposed by these two
	// processes, except the components this test does not start and the
	// families that appear only after an event the test does not cause.
	notStarted := map[string]string{
		"vigie_controlplane_edge_":        "one series per enrolled edge, and this control plane has none enrolled",
		"vigie_firewall_":                 "the firewall needs root and a network namespace (testlab covers it)",
		"vigie_sync_":                     "the demo edge runs from a bundle file, without an edge token",
		"vigie_journal_ship_":             "the shipper runs only with a control plane URL, which the demo edge has not",
		"vigie_journal_disk_free_bytes":   "set by the shipper (see vigie_journal_ship_)",
		"vigie_archive_gap_records_total": "appears with a school's first archived batch (labelled by its UAI)",
		"vigie_flows_":                    "conntrack events need root in the gateway's namespace (testlab's flow scenarios cover it)",
		"vigie_radius_":                   "the RADIUS accounting server runs only when configured (testlab's identity scenario covers it)",
	}
	for name, m := range registeredMetrics(t) {
		if exposed[name] {
			continue
		}
		skip := false
		for prefix := range notStarted {
			skip = skip || strings.HasPrefix(name, prefix)
		}
		if !skip {
			t.Errorf("%s (registered at %s) is not exposed by the running edge or control plane", name, m.Pos)
		}
	}

	t.Run("no pprof unless enabled", func(t *testing.T) {
		resp, err := http.Get("http://" + s.edgeMetrics + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /debug/pprof/ on the metrics address: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("dashboard queries against Prometheus", func(t *testing.T) {
		prom := startPrometheus(t, s)
		qs := append(dashboardQueries(loadDashboard(t)), alertQueries(t)...)
		for _, q := range qs {
			expr := strings.NewReplacer("$__rate_interval", "20s", "$__interval", "5s", "$__range", "1h", "$uai", ".*").Replace(q.Expr)
			if _, err := prom.query(expr); err != nil {
				t.Errorf("%s: %v\n%s", q.Where, err, expr)
			}
		}
		// Every metric the dashboard reads has series, except those of
		// the components not started here.
		for name := range unknownMetrics(dashboardQueries(loadDashboard(t)), map[string]metricFamily{}) {
			skip := false
			for prefix := range notStarted {
				skip = skip || strings.HasPrefix(name, prefix)
			}
			n, err := prom.query(`count({__name__="` + name + `"})`)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if n == 0 && !skip {
				t.Errorf("the dashboard reads %s but the running stack exposes no series of it", name)
			}
		}
		// The panels an operator looks at first show the traffic sent.
		for _, c := range []struct{ what, expr string }{
			{"DNS blocked", `sum(vigie_dns_queries_total{verdict="block"})`},
			{"DNS allowed", `sum(vigie_dns_queries_total{verdict="allow"})`},
			{"HTTP blocked", `sum(vigie_http_requests_total{verdict="block"})`},
			{"policy serial", `max(vigie_edge_policy_serial{uai="` + demo.UAI + `"})`},
		} {
			v, err := prom.value(c.expr)
			if err != nil || v < 1 {
				t.Errorf("%s: %s = %v (%v), want ≥ 1", c.what, c.expr, v, err)
			}
		}
	})
}

type prometheusServer struct{ base string }

// startPrometheus runs Debian's prometheus on loopback, scraping the stack
// every second under the job names and labels the operator guide gives,
// and waits until it holds a few samples of each.
func startPrometheus(t *testing.T, s stack) *prometheusServer {
	t.Helper()
	bin := needTool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: vigie-edge
    static_configs:
      - targets: [%q]
        labels: {uai: %q}
  - job_name: vigie-controlplane
    static_configs:
      - targets: [%q]
`, s.edgeMetrics, demo.UAI, s.cpMetrics)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644)
	web := addr(freePort(t))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	p := &prometheusServer{base: "http://" + web}
	var n, up float64
	var err error
	if !tstest.WaitFor(30*time.Second, func() bool {
		n, err = p.value(`min(count_over_time(up[1m]))`)
		up, _ = p.value(`min(up)`)
		return err == nil && n >= 4 && up == 1
	}) {
		t.Fatalf("prometheus did not scrape the stack within 30s (samples %v, up %v, %v)\n%s", n, up, err, logs.String())
	}
	return p
}

// query runs an instant query and returns how many series it gave.
func (p *prometheusServer) query(expr string) (int, error) {
	res, err := p.do(expr)
	if err != nil {
		return 0, err
	}
	return len(res), nil
}

// value runs an instant query that gives one series and returns its value.
func (p *prometheusServer) value(expr string) (float64, error) {
	res, err := p.do(expr)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%d series", len(res))
	}
	s, _ := res[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p *prometheusServer) do(expr string) ([]promSample, error) {
	resp, err := http.PostForm(p.base+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status     string `json:"status"`
		Error      string `json:"error"`
		ResultType string `json:"resultType"`
		Data       struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var out []promSample
		err := json.Unmarshal(r.Data.Result, &out)
		return out, err
	case "scalar":
		var v [2]any
		err := json.Unmarshal(r.Data.Result, &v)
		return []promSample{{Value: v}}, err
	}
	return nil, fmt.Errorf("prometheus: result type %s", r.Data.ResultType)
}
