// Command vigie-dns runs Vigie's DNS filter alone, on a signed policy
// bundle, for the side-by-side benchmark (bench/dns): the same code path as
// an edge (verify the bundle, load it as a generation, serve), without the
// edge's other components (firewall, proxy, sync) that would need root or
// a control plane. With -mode bare it is a bare miekg/dns server answering
// one fixed record: the library's own cost, the ceiling of a Go server.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"vigie/demo"
	"vigie/keyfile"
	"vigie/proxy/dns"
	"vigie/proxy/generation"
	"vigie/rules"
)

func main() {
	mode := flag.String("mode", "filter", "filter (Vigie) or bare (fixed answer, no filtering)")
	listen := flag.String("listen", "127.0.0.1:5353", "UDP and TCP address")
	bundle := flag.String("bundle", "", "signed policy bundle")
	pub := flag.String("pub", "", "académie public key (PEM)")
	upstream := flag.String("upstream", "", "upstream resolver IP:port")
	uai := flag.String("uai", demo.UAI, "school served")
	cache := flag.Int("cache", 100000, "cache entries")
	batch := flag.Int("batch", 0, "datagrams per recvmmsg/sendmmsg (0: the default; 1: one at a time)")
	verbose := flag.Bool("v", false, "log to stderr")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch *mode {
	case "filter":
		err = filter(ctx, log, *listen, *bundle, *pub, *upstream, *uai, *cache, *batch)
	case "bare":
		err = bare(ctx, *listen)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigie-dns:", err)
		os.Exit(1)
	}
}

func filter(ctx context.Context, log *slog.Logger, listen, bundle, pub, upstream, uai string, cache, batch int) error {
	data, err := os.ReadFile(bundle)
	if err != nil {
		return err
	}
	key, err := keyfile.LoadPublic(pub)
	if err != nil {
		return err
	}
	rs, h, err := rules.DecodeBundle(data, key)
	if err != nil {
		return err
	}
	var gen generation.Current
	gen.Store(&generation.Generation{Rules: rs, Serial: h.Serial, Hash: h.HashHex(), Applied: time.Now()})
	srv, err := dns.New(dns.Config{
		UAI:       uai,
		Listen:    listen,
		Upstreams: []string{upstream},
		Cache:     dns.CacheConfig{Entries: cache},
		UDPBatch:  batch,
		// Like the peers: no per-client rate limit (dnsperf is one client).
		RateLimit: dns.RateLimitConfig{QPS: -1},
	}, dns.Deps{Gen: &gen, Log: log})
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
