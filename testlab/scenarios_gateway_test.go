package testlab

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/segment"
	"vigie/keyfile"
	"vigie/rules/policy"
	"vigie/tstest"
)

// The gateway lab's extra ports: the explicit proxy and the metrics.
const (
	ExplicitPort = 3128
	MetricsPort  = 9101
)

// gateway is a lab whose edge also runs the explicit proxy (opened to the
// pupils by a management flow, as a school opens it to configured
// devices), has the académie's interception CA, and whose pupils' profile
// shows block pages over HTTPS; the zones are dual-stack.
type gateway struct {
	*Lab
	// academie trusts the académie CA (and the lab internet's): a managed
	// device.
	academie *x509.CertPool
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	o := labOptions(t)
	o.NoEdge = true
	l := Start(t, o)
	g := &gateway{Lab: l}
	caCert, caKey, pool := academieCA(t, l.Dir)
	pool.AddCert(l.Net.CA)
	g.academie = pool

	p, err := Policy(o.Lists)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Schools[0].Zones {
		z := &p.Schools[0].Zones[i]
		switch z.Name {
		case "pedagogique":
			z.CIDRs = append(z.CIDRs, "fd00:10::/64")
		case "administratif":
			z.CIDRs = append(z.CIDRs, "fd00:20::/64")
		}
	}
	for i := range p.Profiles {
		if p.Profiles[i].ID == "eleves" {
			p.Profiles[i].HTTPSBlockPage = true
		}
	}
	p.Firewall.Management = append(p.Firewall.Management, policy.Flow{
		From: "pedagogique", Proto: "tcp", Ports: []string{fmt.Sprint(ExplicitPort)}, Comment: "Proxy explicite des postes configurés",
	})
	if _, err := l.Publish(p); err != nil {
		t.Fatal(err)
	}
	err = l.WriteEdgeConfig(map[string]any{
		"dns": map[string]any{
			"listen":         ":53",
			"upstreams":      []string{AuthDNSAddr + ":53"},
			"blockpage_ipv4": EdgePedAddr,
			"blockpage_ipv6": EdgePedAddr6,
		},
		"http": map[string]any{
			"explicit":          fmt.Sprintf(":%d", ExplicitPort),
			"transparent_http":  fmt.Sprintf(":%d", HTTPPort),
			"transparent_https": fmt.Sprintf(":%d", HTTPSPort),
			"ca_cert":           caCert,
			"ca_key":            caKey,
		},
		"metrics": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", MetricsPort), "pprof": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartEdge(context.Background()); err != nil {
		t.Fatal(err)
	}
	return g
}

// academieCA writes an ECDSA CA like the académie's into dir.
func academieCA(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Académie du laboratoire, AC d'interception"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "academie-ca.pem"), filepath.Join(dir, "academie-ca.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// connect sends a CONNECT to the explicit proxy at proxy from c's
// namespace and returns the connection, its reader and the answer.
func connect(t *testing.T, c *Client, proxy, target string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := c.NS.Dial(ctx, "tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(nc, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
	}
	return nc, br, resp
}

type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// frenchPage checks a block page answered over HTTPS under the académie CA.
func frenchPage(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `lang="fr"`) || !strings.Contains(body, "Accès refusé") {
		t.Fatalf("not the French block page (%d):\n%.500s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Lab-Origin") != "" {
		t.Fatal("the origin answered")
	}
}

// The gateway closes: the explicit proxy goes only where the policy says,
// one resolver serves the whole edge (SafeSearch and the destination check
// agree), every keep-alive request is answered, blocked HTTPS shows the
// French page where the académie CA is deployed, and an IPv6 pupil is
// filtered the same way. One lab for all: each subtest fails on the code
// before the gateway issue.
func TestScenarioGateway(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	g := startGateway(t)
	ctx := context.Background()
	pupil, pupil6 := g.Pupil(), g.Pupil6()
	proxy := addr(EdgePedAddr, ExplicitPort)
	proxy6 := net.JoinHostPort(EdgePedAddr6, fmt.Sprint(ExplicitPort))
	safe := netip.MustParseAddr(SafeSearchAddr)
	safe6 := netip.MustParseAddr(SafeSearchAddr6)

	t.Run("CONNECT whose server name differs from its host", func(t *testing.T) {
		for _, p := range []string{proxy, proxy6} {
			nc, br, resp := connect(t, pupil, p, allowedHost+":443")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("CONNECT to an allowed host: %s", resp.Status)
			}
			tc := tls.Client(readerConn{nc, br}, &tls.Config{ServerName: blockedHost, RootCAs: g.Net.CAPool})
			if err := tc.HandshakeContext(ctx); err == nil {
				t.Fatalf("via %s: a TLS session named %s completed through a CONNECT to %s", p, blockedHost, allowedHost)
			}
		}
		if g.Net.Leaf(blockedHost) != nil {
			t.Fatal("the origin saw the hello naming the blocked site")
		}
	})

	t.Run("CONNECT to the gateway's services and other ports", func(t *testing.T) {
		for _, target := range []string{
			"127.0.0.1:8080",                         // the control plane, on a gateway that hosts it
			fmt.Sprintf("127.0.0.1:%d", MetricsPort), // the edge's metrics and pprof
			fmt.Sprintf("%s:%d", allowedHost, ShellPort),
			fmt.Sprintf("%s:%d", OriginAddr, ShellPort),
			net.JoinHostPort(EdgeAdmAddr, "22"), // the gateway's SSH, for the administration only
		} {
			if _, _, resp := connect(t, pupil, proxy, target); resp.StatusCode != http.StatusForbidden {
				t.Errorf("CONNECT %s answered %s, want 403", target, resp.Status)
			}
		}
		if n := g.Net.ShellConns.Load(); n != 0 {
			t.Errorf("the non-web service got %d connections through the proxy", n)
		}
		for _, u := range []string{
			fmt.Sprintf("http://127.0.0.1:%d/metrics", MetricsPort),
			fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", MetricsPort),
			"http://127.0.0.1:8080/api/v1/health",
			fmt.Sprintf("http://[::1]:%d/metrics", MetricsPort),
		} {
			resp, err := pupil.ProxyHTTP(proxy, nil).Get(u)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Destination interdite") {
				t.Errorf("GET %s through the proxy: %s\n%.300s", u, resp.Status, body)
			}
		}
	})

	t.Run("a pupil gets https://www.google.com/ through SafeSearch", func(t *testing.T) {
		start := time.Now()
		resp, body, err := pupil.Get(ctx, "https://www.google.com/")
		if err != nil {
			t.Fatalf("transparent: %v", err)
		}
		if resp.StatusCode != http.StatusOK || body != OriginBody("www.google.com", "/") {
			t.Fatalf("transparent: %d %q", resp.StatusCode, body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("transparent: took %v", d)
		}
		resp, err = pupil.ProxyHTTP(proxy, nil).Get("https://www.google.com/search?q=vigie")
		if err != nil {
			t.Fatalf("explicit: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("explicit: %s", resp.Status)
		}
		served := g.Net.ServedAt("www.google.com")
		if len(served) != 2 || served[0] != safe || served[1] != safe {
			t.Fatalf("www.google.com was served at %v, want forcesafesearch.google.com's %s twice", served, safe)
		}
	})

	t.Run("a blocked HTTPS site shows the French page to a managed device", func(t *testing.T) {
		managed := pupil.HTTP()
		managed.Transport.(*http.Transport).TLSClientConfig.RootCAs = g.academie
		for name, c := range map[string]*http.Client{"transparent": managed, "explicit": pupil.ProxyHTTP(proxy, g.academie)} {
			resp, err := c.Get("https://" + blockedHost + "/video")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			frenchPage(t, resp, string(body))
		}
		// Allowed sites keep their own certificate.
		st, err := pupil.TLS(ctx, allowedHost, "")
		if err != nil {
			t.Fatal(err)
		}
		if leaf := g.Net.Leaf(allowedHost); leaf == nil || string(st.PeerCertificates[0].Raw) != string(leaf) {
			t.Fatal("an allowed site was intercepted")
		}
	})

	t.Run("every keep-alive request is judged and answered", func(t *testing.T) {
		v4, _ := LabAddrs(allowedHost)
		for _, tc := range []struct {
			name, target string
			hosts        []string
		}{
			{"transparent", addr(v4.String(), 80), []string{allowedHost, blockedHost, allowedHost}},
			// Where the filter sends blocked names: the block page.
			{"transparent, block page", addr(EdgePedAddr, 80), []string{blockedHost, blockedHost, "bloque.labo.test"}},
			{"explicit", proxy, []string{allowedHost, blockedHost, allowedHost}},
		} {
			name, target := tc.name, tc.target
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			nc, err := pupil.NS.Dial(dctx, "tcp", target)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(15 * time.Second))
			br := bufio.NewReader(nc)
			prefix := ""
			if name == "explicit" {
				prefix = "http://"
			}
			for i, host := range tc.hosts {
				uri := "/cours"
				if prefix != "" {
					uri = prefix + host + "/cours"
				}
				fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: vigie-lab\r\n\r\n", uri, host)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: request %d (%s) got no answer: %v", name, i+1, host, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := http.StatusOK
				if host != allowedHost {
					want = http.StatusForbidden
				}
				if resp.StatusCode != want {
					t.Fatalf("%s: request %d (%s): %d, want %d\n%.300s", name, i+1, host, resp.StatusCode, want, body)
				}
			}
			nc.Close()
		}
	})

	t.Run("an IPv6 pupil is filtered the same way", func(t *testing.T) {
		_, want6 := LabAddrs(allowedHost)
		if a, err := pupil6.Resolve(ctx, allowedHost); err != nil || a != want6 {
			t.Fatalf("AAAA of an allowed name: %v %v, want %s", a, err, want6)
		}
		if a, err := pupil6.Resolve(ctx, blockedHost); err != nil || a.String() != EdgePedAddr6 {
			t.Fatalf("AAAA of a blocked name: %v %v, want the block page %s", a, err, EdgePedAddr6)
		}
		if a, err := pupil6.Resolve(ctx, "www.google.com"); err != nil || a != safe6 {
			t.Fatalf("AAAA of www.google.com: %v %v, want SafeSearch's %s", a, err, safe6)
		}
		// Transparent HTTP and HTTPS over IPv6.
		resp, body, err := pupil6.Get(ctx, "http://"+allowedHost+"/v6")
		if err != nil || resp.StatusCode != http.StatusOK || body != OriginBody(allowedHost, "/v6") {
			t.Fatalf("allowed site over IPv6: %v %v %q", err, resp, body)
		}
		resp, body, err = pupil6.Get(ctx, "http://"+blockedHost+"/")
		if err != nil {
			t.Fatal(err)
		}
		blockPage(t, resp, body)
		resp, _, err = pupil6.Get(ctx, "https://www.google.com/v6")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("www.google.com over IPv6: %v %v", err, resp)
		}
		if served := g.Net.ServedAt("www.google.com"); len(served) == 0 || served[len(served)-1] != safe6 {
			t.Fatalf("www.google.com over IPv6 served at %v, want %s", served, safe6)
		}
		if _, err := pupil6.TLS(ctx, blockedHost, net.JoinHostPort(want6.String(), "443")); err == nil {
			t.Fatal("a TLS session to a blocked name completed over IPv6")
		}
		// The explicit proxy over IPv6 refuses what it refuses over IPv4.
		if _, _, resp := connect(t, pupil6, proxy6, "[::1]:443"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT [::1]:443 over IPv6: %s", resp.Status)
		}
		if _, _, resp := connect(t, pupil6, proxy6, fmt.Sprintf("%s:%d", allowedHost, ShellPort)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT to port %d over IPv6: %s", ShellPort, resp.Status)
		}
	})

	t.Run("the journal records the host judged", func(t *testing.T) {
		recs := edgeNavigation(t, g.Lab)
		var sni, google int
		for _, r := range recs {
			if r.Proto == "connect" && r.Host == blockedHost && r.Verdict == "block" && r.Category == "destination_incoherente" {
				sni++
			}
			if r.Host == "www.google.com" && r.Verdict == "allow" {
				google++
			}
		}
		if sni != 2 {
			t.Errorf("%d records of the CONNECT refused on its server name %s, want 2 (IPv4 and IPv6)", sni, blockedHost)
		}
		if google == 0 {
			t.Error("no record of www.google.com")
		}
	})
}

// edgeNavigation stops the edge and reads its navigation journal.
func edgeNavigation(t *testing.T, l *Lab) []journal.Record {
	t.Helper()
	if err := l.StopEdge(); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(l.Dir, "edge-state")
	key, err := keyfile.LoadPrivate(filepath.Join(state, "journal.key"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(state, "journal"), UAI: UAI, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var out []journal.Record
	if _, err := j.Log(journal.Navigation).Verify(func(r *journal.Record) error {
		c := *r
		// The record may view the reader's buffers.
		c.Host, c.Proto, c.Verdict, c.Category = strings.Clone(r.Host), strings.Clone(r.Proto), strings.Clone(r.Verdict), strings.Clone(r.Category)
		c.URL, c.Method = strings.Clone(r.URL), strings.Clone(r.Method)
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// An upstream resolver the gateway has no route to (IPv6 while the IPv6
// route is down) does not stop the edge: it starts, answers through the
// other upstream, and uses the first again once its route is back.
func TestScenarioUnroutableUpstream(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	o := labOptions(t)
	o.NoEdge = true
	l := Start(t, o)
	ctx := context.Background()
	if err := l.Edge.IP(ctx, "-6", "route", "del", "default"); err != nil {
		t.Fatal(err)
	}
	err := l.WriteEdgeConfig(map[string]any{
		"dns": map[string]any{
			"listen":         ":53",
			"upstreams":      []string{net.JoinHostPort(AuthDNSAddr6, "53"), AuthDNSAddr + ":53"},
			"blockpage_ipv4": EdgePedAddr,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartEdge(ctx); err != nil {
		t.Fatalf("the edge did not start with an unroutable upstream: %v", err)
	}
	want, _ := LabAddrs(allowedHost)
	if a, err := l.Secretary().Resolve(ctx, allowedHost); err != nil || a != want {
		t.Fatalf("resolution through the other upstream: %v %v", a, err)
	}
	if !strings.Contains(l.EdgeLog(), "marked down") {
		t.Errorf("the edge did not say the upstream is down:\n%s", l.EdgeLog())
	}
	// The route comes back: the upstream is dialed and used again.
	if err := l.Edge.IP(ctx, "-6", "route", "add", "default", "via", ISPAddr6); err != nil {
		t.Fatal(err)
	}
	before := l.Net.AuthQueries6.Load()
	i := 0
	if !tstest.WaitFor(20*time.Second, func() bool {
		if l.Net.AuthQueries6.Load() != before {
			return true
		}
		l.Secretary().Resolve(ctx, fmt.Sprintf("n%d.%s", i, allowedHost))
		i++
		return false
	}) {
		t.Fatalf("the IPv6 upstream was never asked again:\n%s", l.EdgeLog())
	}
}
