// Command vigie-dns runs Vigie's DNS filter alone, on a signed policy
// bundle, for the side-by-side benchmark (bench/dns): the same code path as
// an edge (verify the bundle, load it as a generation, serve), without the
// edge's other components (firewall, proxy, sync) that would need root or
// a control plane. With -journal, -metrics and -ratelimit it carries what
// an edge always runs beside the filter: the durable journal (group commit
// to a real segment on disk), the Prometheus metrics and the per-source
// rate limiter. With -mode bare it is a bare miekg/dns server answering
// one fixed record: the library's own cost, the ceiling of a Go server.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/demo"
	"vigie/journal/segment"
	"vigie/keyfile"
	"vigie/proxy/dns"
	"vigie/proxy/generation"
	"vigie/rules"
)

func main() {
	mode := flag.String("mode", "filter", "filter (Vigie), bare (fixed answer, no filtering) or echo (each query sent back as its own empty answer: the kernel's floor)")
	listen := flag.String("listen", "127.0.0.1:5353", "UDP and TCP address")
	bundle := flag.String("bundle", "", "signed policy bundle")
	pub := flag.String("pub", "", "académie public key (PEM)")
	upstream := flag.String("upstream", "", "upstream resolver IP:port")
	uai := flag.String("uai", demo.UAI, "school served")
	cache := flag.Int("cache", 100000, "cache entries")
	batch := flag.Int("batch", 0, "datagrams per recvmmsg/sendmmsg (0: the default; 1: one at a time)")
	journalDir := flag.String("journal", "", "durable journal directory (empty: journal off)")
	metrics := flag.Bool("metrics", false, "register the Prometheus metrics, as an edge does")
	rateLimit := flag.Float64("ratelimit", -1, "queries per second per source (negative: limiter off)")
	verbose := flag.Bool("v", false, "log to stderr")
	profile := flag.String("profile", "", "directory for a CPU profile of the whole run, a heap profile and memory figures at exit, and a memory trace (empty: none)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	end := func() {}
	if *profile != "" {
		var perr error
		end, perr = startProfile(*profile)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "vigie-dns:", perr)
			os.Exit(1)
		}
		// Written when the signal arrives, before the shutdown frees
		// anything: the figures are those of the loaded server.
		context.AfterFunc(ctx, end)
	}
	switch *mode {
	case "filter":
		err = filter(ctx, log, filterOptions{listen: *listen, bundle: *bundle, pub: *pub, upstream: *upstream, uai: *uai,
			cache: *cache, batch: *batch, journal: *journalDir, metrics: *metrics, rateLimit: *rateLimit})
	case "bare":
		err = bare(ctx, *listen)
	case "echo":
		n := *batch
		if n == 0 {
			n = 32 // the filter's default batch
		}
		err = echo(ctx, *listen, n)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	end() // waits for the figures written when the signal came
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigie-dns:", err)
		os.Exit(1)
	}
}

type filterOptions struct {
	listen, bundle, pub, upstream, uai string
	cache, batch                       int
	journal                            string
	metrics                            bool
	rateLimit                          float64
}

func filter(ctx context.Context, log *slog.Logger, o filterOptions) error {
	data, err := os.ReadFile(o.bundle)
	if err != nil {
		return err
	}
	key, err := keyfile.LoadPublic(o.pub)
	if err != nil {
		return err
	}
	rs, h, err := rules.DecodeBundle(data, key)
	if err != nil {
		return err
	}
	var gen generation.Current
	gen.Store(&generation.Generation{Rules: rs, Serial: h.Serial, Hash: h.HashHex(), Applied: time.Now()})
	deps := dns.Deps{Gen: &gen, Log: log}
	if o.metrics {
		deps.Registry = prometheus.NewRegistry()
	}
	if o.journal != "" {
		// As proxy/edge opens it: both streams, the segment defaults
		// (5 ms group commit, fsync), the sealing key beside them.
		keyPath := filepath.Join(o.journal, "journal.key")
		if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
			if _, err := keyfile.Generate(keyPath); err != nil {
				return fmt.Errorf("journal: sealing key: %w", err)
			}
		}
		jkey, err := keyfile.LoadPrivate(keyPath)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		reg := deps.Registry
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		j, err := segment.OpenJournal(segment.Options{Dir: o.journal, UAI: o.uai, Key: ed25519.PrivateKey(jkey),
			Log: log.With("component", "journal"), Metrics: segment.NewMetrics(reg)})
		if err != nil {
			return err
		}
		defer j.Close()
		deps.Journal = j
	}
	srv, err := dns.New(dns.Config{
		UAI:       o.uai,
		Listen:    o.listen,
		Upstreams: []string{o.upstream},
		Cache:     dns.CacheConfig{Entries: o.cache},
		UDPBatch:  o.batch,
		// The benchmark passes a limit above what its one client sends:
		// the limiter then runs on every query without dropping any.
		RateLimit: dns.RateLimitConfig{QPS: o.rateLimit},
	}, deps)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func bare(ctx context.Context, listen string) error {
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 3600},
				A:   net.IPv4(198, 51, 100, 1),
			})
		}
		w.WriteMsg(m)
	})
	var servers []*mdns.Server
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		servers = append(servers, &mdns.Server{Addr: listen, Net: "udp", Handler: handler, UDPSize: 4096, ReusePort: true})
	}
	servers = append(servers, &mdns.Server{Addr: listen, Net: "tcp", Handler: handler})
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.ListenAndServe() }()
	}
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	for _, s := range servers {
		s.Shutdown()
	}
	return nil
}
