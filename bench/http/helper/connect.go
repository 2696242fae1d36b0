package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// connectOptions drive the CONNECT load generator (role "connect"): conns
// clients each open a tunnel through the proxy (CONNECT host), speak TLS
// in it with host's name as SNI, send perTunnel keep-alive GETs of path,
// close it and start again, until tunnels tunnels were started or dur
// has passed, whichever comes first.
type connectOptions struct {
	proxy     string
	host      string // host:port asked for in the CONNECT
	path      string
	conns     int
	tunnels   int
	perTunnel int
	dur       time.Duration
	// timeout bounds each step (dial, CONNECT answer, handshake, response).
	timeout time.Duration
}

// connectResult is what the generator prints, one JSON line. A tunnel
// is counted ok when every one of its GETs was answered in full; a
// failed tunnel counts one error and the requests it completed before.
type connectResult struct {
	Tunnels        int64   `json:"tunnels"`
	TunnelsOK      int64   `json:"tunnels_ok"`
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	Bytes          int64   `json:"bytes"`
	ElapsedNs      int64   `json:"elapsed_ns"`
	TunnelsPerSec  float64 `json:"tunnels_per_sec"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	SetupP50       int64   `json:"setup_p50_ns"` // dial to end of TLS handshake
	SetupP99       int64   `json:"setup_p99_ns"`
	ReqP50         int64   `json:"req_p50_ns"`
	ReqP99         int64   `json:"req_p99_ns"`
	FirstError     string  `json:"first_error,omitempty"`
}

// tally gathers the workers' figures; its result is the accounting the
// test checks.
type tally struct {
	mu        sync.Mutex
	tunnels   int64
	tunnelsOK int64
	requests  int64
	errors    int64
	bytes     int64
	setup     []time.Duration
	reqs      []time.Duration
	firstErr  error
}

// add records one tunnel: its set-up time (zero when it was not set up),
// the latencies of the requests it completed, their body bytes, and its
// error (nil: all its requests were answered).
func (t *tally) add(setup time.Duration, reqs []time.Duration, bytes int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tunnels++
	if setup > 0 {
		t.setup = append(t.setup, setup)
	}
	t.reqs = append(t.reqs, reqs...)
	t.requests += int64(len(reqs))
	t.bytes += bytes
	if err != nil {
		t.errors++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.tunnelsOK++
}

func (t *tally) result(elapsed time.Duration) connectResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := connectResult{Tunnels: t.tunnels, TunnelsOK: t.tunnelsOK, Requests: t.requests,
		Errors: t.errors, Bytes: t.bytes, ElapsedNs: int64(elapsed)}
	if elapsed > 0 {
		r.TunnelsPerSec = float64(t.tunnelsOK) / elapsed.Seconds()
		r.RequestsPerSec = float64(t.requests) / elapsed.Seconds()
	}
	r.SetupP50, r.SetupP99 = int64(pct(t.setup, 0.50)), int64(pct(t.setup, 0.99))
	r.ReqP50, r.ReqP99 = int64(pct(t.reqs, 0.50)), int64(pct(t.reqs, 0.99))
	if t.firstErr != nil {
		r.FirstError = t.firstErr.Error()
	}
	return r
}

// pct is the q-quantile of v (nearest rank), 0 for none; v is sorted.
func pct(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	i := int(q*float64(len(v))+0.5) - 1
	return v[max(0, min(i, len(v)-1))]
}

func runConnect(o connectOptions) (connectResult, error) {
	if o.conns <= 0 || o.tunnels <= 0 || o.perTunnel <= 0 || o.dur <= 0 {
		return connectResult{}, errors.New("connect: conns, tunnels, per-tunnel and a duration are required")
	}
	if o.timeout <= 0 {
		o.timeout = 10 * time.Second
	}
	name, _, err := net.SplitHostPort(o.host)
	if err != nil {
		return connectResult{}, fmt.Errorf("connect: -host %q: %w", o.host, err)
	}
	// The origin is the benchmark's own, with a throwaway certificate:
	// what is measured is the proxy, not certificate checking.
	tc := &tls.Config{ServerName: name, InsecureSkipVerify: true, ClientSessionCache: nil}
	get := []byte("GET " + o.path + " HTTP/1.1\r\nHost: " + name + "\r\nUser-Agent: vigie-bench-connect\r\n\r\n")
	connect := []byte("CONNECT " + o.host + " HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n")
	var t tally
	var claimed atomic.Int64
	start := time.Now()
	deadline := start.Add(o.dur)
	var wg sync.WaitGroup
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && claimed.Add(1) <= int64(o.tunnels) {
				setup, reqs, n, err := oneTunnel(o, tc, connect, get, deadline)
				t.add(setup, reqs, n, err)
			}
		}()
	}
	wg.Wait()
	return t.result(time.Since(start)), nil
}

// oneTunnel opens a tunnel, does its GETs and closes it.
func oneTunnel(o connectOptions, tc *tls.Config, connect, get []byte, deadline time.Time) (setup time.Duration, reqs []time.Duration, bytes int64, err error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", o.proxy, o.timeout)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("dial proxy: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(o.timeout))
	if _, err := c.Write(connect); err != nil {
		return 0, nil, 0, fmt.Errorf("CONNECT: %w", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return 0, nil, 0, fmt.Errorf("CONNECT answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, 0, fmt.Errorf("CONNECT %s: %s", o.host, resp.Status)
	}
	if br.Buffered() > 0 {
		return 0, nil, 0, errors.New("CONNECT: bytes before the client hello")
	}
	tl := tls.Client(c, tc)
	if err := tl.Handshake(); err != nil {
		return 0, nil, 0, fmt.Errorf("TLS handshake through the tunnel: %w", err)
	}
	setup = time.Since(t0)
	tr := bufio.NewReader(tl)
	for i := range o.perTunnel {
		if i > 0 && !time.Now().Before(deadline) {
			break // the run is over: the tunnel still counts as complete
		}
		r0 := time.Now()
		tl.SetDeadline(r0.Add(o.timeout))
		if _, err := tl.Write(get); err != nil {
			return setup, reqs, bytes, fmt.Errorf("GET %d: %w", i+1, err)
		}
		resp, err := http.ReadResponse(tr, nil)
		if err != nil {
			return setup, reqs, bytes, fmt.Errorf("GET %d: %w", i+1, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return setup, reqs, bytes, fmt.Errorf("GET %d body: %w", i+1, err)
		}
		if resp.StatusCode != http.StatusOK {
			return setup, reqs, bytes, fmt.Errorf("GET %d: %s", i+1, resp.Status)
		}
		reqs = append(reqs, time.Since(r0))
		bytes += n
	}
	return setup, reqs, bytes, nil
}

// selfSigned is a throwaway certificate for the TLS origin's names.
func selfSigned(names ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
