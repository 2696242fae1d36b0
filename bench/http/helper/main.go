// Command helper is the benchmark's subprocess: the loopback origin, the
// bare goproxy peer and Vigie's proxy, each in its own process so that the
// benchmark can measure each one's CPU time and memory alone.
//
//	helper -role origin  -listen 127.0.0.1:18080
//	helper -role goproxy -listen 127.0.0.1:18082
//	helper -role vigie   -listen 127.0.0.1:18083 -lists testdata/blocklists
//	helper -role load    -target 127.0.0.1:18083 -url http://127.0.0.1:18080/1k -proxied -rate 2000 -d 10s
//	helper -role tls-origin -listen 127.0.0.1:443
//	helper -role connect -target 127.0.0.1:18083 -host localhost:443 -conns 50 -tunnels 100000 -per-tunnel 1 -d 10s
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/demo"
	"vigie/journal"
	"vigie/journal/segment"
	"vigie/keyfile"
	"vigie/proxy/generation"
	httpproxy "vigie/proxy/http"
	"vigie/rules"
)

func main() {
	role := flag.String("role", "", "origin, tls-origin, goproxy, vigie, load or connect")
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	lists := flag.String("lists", "testdata/blocklists", "lists folder (vigie)")
	journalDir := flag.String("journal", "", "durable journal directory (vigie; empty: records discarded)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	idle := flag.Int("idle", 256, "upstream idle connections per host (goproxy)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: default)")
	var lo loadOptions
	flag.StringVar(&lo.target, "target", "", "load: address connections go to")
	flag.StringVar(&lo.url, "url", "", "load: absolute URL asked for")
	flag.BoolVar(&lo.proxied, "proxied", false, "load: target is a proxy (absolute-form request line)")
	flag.IntVar(&lo.rate, "rate", 500, "load: requests per second, on a fixed schedule")
	flag.DurationVar(&lo.dur, "d", 10*time.Second, "load: duration of the schedule")
	flag.DurationVar(&lo.warm, "warm", time.Second, "load: first part of the schedule left out of the figures")
	flag.IntVar(&lo.conns, "conns", 200, "load: keep-alive connections at most")
	var co connectOptions
	flag.StringVar(&co.host, "host", "localhost:443", "connect: host:port asked for in the CONNECT (its name is the SNI)")
	flag.StringVar(&co.path, "path", "/1k", "connect: path of the GETs in the tunnel")
	flag.IntVar(&co.tunnels, "tunnels", 1000000, "connect: tunnels at most")
	flag.IntVar(&co.perTunnel, "per-tunnel", 1, "connect: keep-alive GETs per tunnel")
	flag.Parse()
	if *role == "connect" {
		co.proxy, co.conns, co.dur = lo.target, lo.conns, lo.dur
		res, err := runConnect(co)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if *role == "load" {
		if lo.rate <= 0 || lo.conns <= 0 || lo.dur <= lo.warm {
			log.Fatal("load: rate, conns and a duration over the warm-up are required")
		}
		res, err := runLoad(lo)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *pprofAddr != "" {
		go http.ListenAndServe(*pprofAddr, nil)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var serve func() error
	switch *role {
	case "origin":
		serve = func() error { return http.Serve(ln, origin()) }
	case "tls-origin":
		cert, err := selfSigned("localhost")
		if err != nil {
			log.Fatal(err)
		}
		tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		serve = func() error { return http.Serve(tln, origin()) }
	case "goproxy":
		gp := goproxy.NewProxyHttpServer()
		gp.Logger = log.New(os.Stderr, "", 0)
		gp.Tr = &http.Transport{Proxy: nil, MaxIdleConns: 4 * *idle, MaxIdleConnsPerHost: *idle, IdleConnTimeout: 90 * time.Second}
		gp.ConnectDial = nil
		serve = func() error { return http.Serve(ln, gp) }
	case "vigie":
		p, err := vigie(*lists, *journalDir)
		if err != nil {
			log.Fatal(err)
		}
		serve = func() error { return p.ServeExplicit(ln) }
	default:
		log.Fatalf("unknown role %q", *role)
	}
	// Tell the parent where we listen, then serve until a signal.
	fmt.Println("listening", ln.Addr())
	go func() {
		if err := serve(); err != nil {
			log.Fatal(err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}

// origin serves /1k and /100k (any /<n>k) with a fixed body, uncacheable
// so that no peer answers from a cache.
func origin() http.Handler {
	bodies := map[string][]byte{}
	for _, k := range []int{1, 10, 100} {
		bodies["/"+strconv.Itoa(k)+"k"] = bytes.Repeat([]byte("v"), k<<10)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Cache-Control"] = []string{"no-store"}
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
	})
}

// vigie runs the proxy as an edge does: the demo policy compiled on the
// full lists (SafeSearch, YouTube strict), the client's zone profile, the
// metrics, and with journalDir the durable journal as proxy/edge opens it
// (both streams, group commit with fsync to a real segment). Without it
// the records are produced and discarded: the "journal off" row.
func vigie(lists, journalDir string) (*httpproxy.Proxy, error) {
	p, err := demo.Policy(lists)
	if err != nil {
		return nil, err
	}
	rs, _, err := rules.Compile(p)
	if err != nil {
		return nil, err
	}
	var cur generation.Current
	cur.Store(&generation.Generation{Rules: rs, Serial: 1, Applied: time.Now()})
	log.Printf("vigie: policy with %d domains", rs.Domains())
	// The benchmark's origin is on loopback, which the destination check
	// refuses otherwise.
	cfg := httpproxy.Config{UAI: demo.UAI, AllowDestinations: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var sink journal.Sink = journal.Discard{}
	if journalDir != "" {
		keyPath := filepath.Join(journalDir, "journal.key")
		if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
			if _, err := keyfile.Generate(keyPath); err != nil {
				return nil, fmt.Errorf("journal: sealing key: %w", err)
			}
		}
		key, err := keyfile.LoadPrivate(keyPath)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		// Closed by the process's exit: the benchmark stops the helper
		// with a signal, and a torn tail is what recovery is for.
		j, err := segment.OpenJournal(segment.Options{Dir: journalDir, UAI: demo.UAI, Key: key,
			Log: logger.With("component", "journal"), Metrics: segment.NewMetrics(reg)})
		if err != nil {
			return nil, err
		}
		sink = j
	}
	return httpproxy.New(cfg, httpproxy.Deps{
		Generation: &cur, Journal: sink, Registry: reg, Log: logger,
	})
}
