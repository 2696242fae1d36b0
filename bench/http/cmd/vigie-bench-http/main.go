// Command vigie-bench-http runs the HTTP proxy benchmark against Squid,
// Squid + squidGuard, E2Guardian and a bare goproxy, and writes its table
// into bench/http/README.md. Run it as root from the module root:
//
//	go run ./bench/http/cmd/vigie-bench-http
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	httpbench "vigie/bench/http"
)

func main() {
	var o httpbench.Options
	flag.DurationVar(&o.Duration, "d", 15*time.Second, "duration of one wrk run")
	flag.IntVar(&o.Reps, "reps", 3, "paired runs per peer and size")
	flag.IntVar(&o.Threads, "t", 2, "wrk threads")
	flag.IntVar(&o.Conns, "c", 50, "wrk connections")
	peers := flag.String("peers", strings.Join(httpbench.PeerNames, ","), "peers to run")
	sizes := flag.String("sizes", "1k,100k", "response sizes")
	flag.BoolVar(&o.Install, "install", true, "apt-get install missing peers and wrk")
	flag.StringVar(&o.README, "readme", "", "README to write the table into (- for none)")
	flag.StringVar(&o.ProfileDir, "profile", "", "directory for a CPU profile of Vigie under load")
	rates := flag.String("rates", "500,2000", "open-loop rates, req/s")
	olSizes := flag.String("ol-sizes", "1k,100k", "open-loop response sizes")
	flag.DurationVar(&o.OpenLoopDuration, "ol-d", 10*time.Second, "duration of one open-loop run")
	flag.IntVar(&o.OpenLoopConns, "ol-conns", 200, "open-loop keep-alive connections at most")
	olPeers := flag.String("ol-peers", "vigie", "peers of the open-loop runs")
	flag.BoolVar(&o.NoOpenLoop, "no-openloop", false, "skip the open-loop runs")
	flag.BoolVar(&o.Interleave, "interleave", false, "start every peer at once and alternate them rep by rep (ratios between peers then survive a drifting machine)")
	baseline := flag.String("baseline-rev", "", "comma-separated git revisions whose Vigie runs as one more peer each (vigie@REV, compared with vigie-nojournal)")
	connect := flag.Bool("connect", false, "CONNECT mode instead: HTTPS through the explicit proxy (CONNECT localhost:443, TLS with SNI, 1 KiB GETs), this tree's vigie-nojournal against -baseline-rev; the origin binds 127.0.0.1:443 (root)")
	var co httpbench.ConnectOptions
	flag.IntVar(&co.PerTunnel, "per-tunnel", 1, "connect: keep-alive GETs per tunnel")
	flag.StringVar(&co.Origin, "connect-origin", "127.0.0.1:443", "connect: TLS origin address (the policy allows CONNECT to port 443 only)")
	flag.Parse()
	for _, f := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bad rate %q\n", f)
			os.Exit(2)
		}
		o.OpenLoopRates = append(o.OpenLoopRates, n)
	}
	o.OpenLoopSizes = strings.Split(*olSizes, ",")
	if *baseline != "" {
		o.BaselineRevs = strings.Split(*baseline, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *connect {
		co.Conns, co.Reps, co.Duration, co.BaselineRevs = o.Conns, o.Reps, o.Duration, o.BaselineRevs
		rep, err := httpbench.RunConnect(ctx, co)
		if rep != nil {
			fmt.Println(rep.Table())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	o.OpenLoopPeers = strings.Split(*olPeers, ",")
	o.Peers = strings.Split(*peers, ",")
	o.Sizes = strings.Split(*sizes, ",")
	rep, err := httpbench.Run(ctx, o)
	if rep != nil {
		fmt.Println(rep.Table())
		fmt.Println(rep.OpenLoopTable())
		fmt.Println(strings.Join(rep.Targets(), "\n"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
