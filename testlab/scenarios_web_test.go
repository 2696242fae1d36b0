package testlab

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vigie/rules"
	"vigie/rules/policy"
)

// Names of the scenarios: real entries of the lists, and lab names.
const (
	allowedHost  = "eduscol.education.fr" // académie whitelist
	blockedHost  = "pornhub.com"          // adult-top1m, blocked for eleves
	downloadHost = "telechargement.labo.test"
)

func blockPage(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusOK {
		t.Errorf("block page status %d", resp.StatusCode)
	}
	if resp.Header.Get("X-Lab-Origin") != "" {
		t.Fatal("the origin answered: the request was not filtered")
	}
	if !strings.Contains(body, `lang="fr"`) || !strings.Contains(body, "Accès refusé") {
		t.Fatalf("not the French block page (%d):\n%.600s", resp.StatusCode, body)
	}
}

// Scenario 1: the pupil fetches an allowed site over plain HTTP, with no
// proxy configured, and gets the origin's own bytes.
func TestScenario1AllowedHTTP(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	resp, body, err := l.Pupil().Get(ctx, "http://"+allowedHost+"/cours/maths.html")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body != OriginBody(allowedHost, "/cours/maths.html") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Lab-Origin") != "1" {
		t.Fatal("the answer does not come from the origin")
	}
	if n := l.Net.PublicQueries.Load(); n != 0 {
		t.Fatalf("the public resolver the pupil is configured with got %d queries: DNS was not redirected", n)
	}
}

// Scenario 2: the pupil fetches a blocked site over HTTP and gets the
// French block page, whether the name resolves through the filter (to the
// gateway) or the pupil forces the site's real address.
func TestScenario2BlockedHTTP(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()
	t.Run("through DNS", func(t *testing.T) {
		resp, body, err := pupil.Get(ctx, "http://"+blockedHost+"/")
		if err != nil {
			t.Fatal(err)
		}
		blockPage(t, resp, body)
	})
	t.Run("with the real address forced", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+OriginAddr+"/video", nil)
		req.Host = blockedHost
		resp, err := pupil.HTTP().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		blockPage(t, resp, b.String())
	})
	if n := l.Net.HTTPRequests.Load(); n != 0 {
		t.Fatalf("the origin served %d requests for a blocked site", n)
	}
}

// Scenario 3: HTTPS to a blocked server name is refused; HTTPS to an
// allowed one completes with the origin's own certificate (the SNI is
// read, the traffic is not intercepted).
func TestScenario3HTTPS(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()
	st, err := pupil.TLS(ctx, allowedHost, "")
	if err != nil {
		t.Fatalf("allowed site over HTTPS: %v", err)
	}
	leaf := l.Net.Leaf(allowedHost)
	if leaf == nil || !bytes.Equal(st.PeerCertificates[0].Raw, leaf) {
		t.Fatalf("the pupil saw %q issued by %q, not the origin's own certificate",
			st.PeerCertificates[0].Subject, st.PeerCertificates[0].Issuer)
	}
	resp, body, err := pupil.Get(ctx, "https://"+allowedHost+"/devoirs")
	if err != nil || resp.StatusCode != http.StatusOK || body != OriginBody(allowedHost, "/devoirs") {
		t.Fatalf("GET over HTTPS: %v %v %q", err, resp, body)
	}
	// Blocked name, even with the real address forced: no handshake completes.
	if _, err := pupil.TLS(ctx, blockedHost, addr(OriginAddr, 443)); err == nil {
		t.Fatal("a TLS session to a blocked server name completed")
	}
	if l.Net.Leaf(blockedHost) != nil {
		t.Fatal("the origin saw a ClientHello for the blocked name")
	}
}

// Scenario 4: the pupil asks the "public resolver" directly for a blocked
// name and still gets the filter's answer (port 53 is redirected, over UDP
// and TCP); the public resolver never hears of it.
func TestScenario4PublicResolver(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()
	m, err := pupil.Query(ctx, PublicResolverAddr, blockedHost, dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(m); got == WrongAddr || got != EdgePedAddr {
		t.Fatalf("blocked name answered %q (rcode %s), want the block page %s", got, dns.RcodeToString[m.Rcode], EdgePedAddr)
	}
	m, err = pupil.Query(ctx, PublicResolverAddr, allowedHost, dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := LabAddrs(allowedHost); firstA(m) != want.String() {
		t.Fatalf("allowed name answered %q, want %s through the filter", firstA(m), want)
	}
	// Over TCP too.
	c := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
	nc, err := pupil.NS.Dial(ctx, "tcp", addr(PublicResolverAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(blockedHost), dns.TypeA)
	m, _, err = c.ExchangeWithConn(q, &dns.Conn{Conn: nc})
	nc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(m); got != EdgePedAddr {
		t.Fatalf("over TCP the blocked name answered %q", got)
	}
	if n := l.Net.PublicQueries.Load(); n != 0 {
		t.Fatalf("the public resolver got %d queries", n)
	}
}

func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// labPolicy is the lab policy with extra domains in the académie's block list.
func labPolicy(t *testing.T, block ...string) *policy.Policy {
	t.Helper()
	p, err := Policy(listsDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Lists {
		if p.Lists[i].ID == "academie-bloque" {
			p.Lists[i].Domains = append(p.Lists[i].Domains, block...)
		}
	}
	return p
}

// Scenario 7: a new policy generation arrives while long downloads run
// (one through the proxy, one forwarded directly): both complete, and new
// connections see the new rules.
func TestScenario7NewGenerationDuringDownload(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()
	const size = 4 << 20
	query := fmt.Sprintf("/big?size=%d&chunk=65536&every=50ms", size) // about 3 s

	var wg sync.WaitGroup
	results := make([]error, 2)
	for i, dl := range []struct {
		client *Client
		url    string
	}{
		{pupil, "http://" + downloadHost + query}, // transparent proxy
		// Forwarded by the firewall: the staff's explicit line to 8080.
		{l.Secretary(), fmt.Sprintf("http://%s%s", addr(OriginAddr, DirectHTTPPort), query)},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := dl.url
			resp, body, err := dl.client.Get(ctx, url)
			switch {
			case err != nil:
				results[i] = err
			case resp.StatusCode != http.StatusOK || len(body) != size:
				results[i] = fmt.Errorf("%s: status %d, %d bytes of %d", url, resp.StatusCode, len(body), size)
			}
		}()
	}
	time.Sleep(700 * time.Millisecond) // the downloads are under way
	if _, err := l.Publish(labPolicy(t, downloadHost)); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	serial := l.Serial()
	if _, err := l.CP.WaitReport(20*time.Second, 0, func(r Report) bool { return r.Serial == serial && r.Error == "" }); err != nil {
		t.Fatalf("serial %d not applied: %v (reports %+v)", serial, err, l.CP.Reports())
	}
	t.Logf("serial %d applied %v after publishing", serial, time.Since(published).Round(time.Millisecond))
	wg.Wait()
	for _, err := range results {
		if err != nil {
			t.Fatalf("a download running across the new generation broke: %v", err)
		}
	}
	resp, body, err := pupil.Get(ctx, "http://"+downloadHost+"/")
	if err != nil {
		t.Fatal(err)
	}
	blockPage(t, resp, body)
}

// Scenario 8: a corrupt bundle, a wrongly signed one, and a validly signed
// one whose firewall the edge cannot build are refused and reported; the
// previous policy keeps filtering, firewall included.
func TestScenario8BadBundles(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()

	good, _, err := rules.Compile(labPolicy(t, downloadHost))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	badFW := labPolicy(t, downloadHost)
	// A zone no school has and no usual IP plan names: a typo.
	badFW.Firewall.Flows = append(badFW.Firewall.Flows, policy.Flow{From: "pedagogique", To: "serveur"})
	badRS, _, err := rules.Compile(badFW)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		make func(serial uint64) []byte
		says string
	}{
		{"corrupt", func(s uint64) []byte {
			b, err := rules.EncodeBundle(good, s, time.Now(), l.Key)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			return b
		}, "hash mismatch"},
		{"wrongly signed", func(s uint64) []byte {
			b, err := rules.EncodeBundle(good, s, time.Now(), otherKey)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "signature invalid"},
		{"firewall the edge cannot build", func(s uint64) []byte {
			b, err := rules.EncodeBundle(badRS, s, time.Now(), l.Key)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, `unknown zone "serveur"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serial := l.NextSerial()
			before := len(l.CP.Reports())
			l.CP.Offer(serial, tc.make(serial))
			rep, err := l.CP.WaitReport(20*time.Second, before, func(r Report) bool {
				// The agent may still be reporting the previous case's
				// bundle while it backs off: wait for this one's refusal.
				return r.Error != "" && strings.Contains(r.Error, tc.says)
			})
			if err != nil {
				t.Fatalf("no refusal reported: %v (reports %+v)", err, l.CP.Reports())
			}
			if rep.Serial != 1 {
				t.Fatalf("the edge reports serial %d in force, want 1", rep.Serial)
			}
			t.Logf("refused: %s", rep.Error)
			// The previous policy still filters, and its firewall is in place.
			resp, body, err := pupil.Get(ctx, "http://"+blockedHost+"/")
			if err != nil {
				t.Fatal(err)
			}
			blockPage(t, resp, body)
			resp, body, err = pupil.Get(ctx, "http://"+downloadHost+"/")
			if err != nil || resp.StatusCode != http.StatusOK || body != OriginBody(downloadHost, "/") {
				t.Fatalf("a site the refused bundle would block is blocked: %v %v", err, resp)
			}
			if err := pupil.Connect(ctx, addr(PublicResolverAddr, 853), time.Second); err == nil {
				t.Fatal("DoT went through: the firewall is gone")
			}
		})
	}
	if !l.EdgeRunning() {
		t.Fatalf("the edge died:\n%s", l.EdgeLog())
	}
}
