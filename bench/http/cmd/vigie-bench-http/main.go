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
	flag.Parse()
	o.Peers = strings.Split(*peers, ",")
	o.Sizes = strings.Split(*sizes, ",")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := httpbench.Run(ctx, o)
	if rep != nil {
		fmt.Println(rep.Table())
		fmt.Println(strings.Join(rep.Targets(), "\n"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
