// Command cmd runs the control plane benchmark alone:
//
//	go run ./bench/controlplane/cmd -edges 1000 -rounds 3
//	go run ./bench/controlplane/cmd -edges 10000 -postgres -replicas 2 -skip-baseline
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"vigie/bench/controlplane"
)

func main() {
	var o controlplane.Options
	flag.IntVar(&o.Edges, "edges", 1000, "simulated edges")
	flag.IntVar(&o.Rounds, "rounds", 3, "one-domain publications measured")
	flag.IntVar(&o.BaselineEdges, "baseline-edges", 50, "edges of the whole-bundle baseline")
	flag.StringVar(&o.Lists, "lists", "", "blocklists folder (default: testdata/blocklists)")
	flag.StringVar(&o.Binary, "binary", "", "vigie binary (default: built from the repository)")
	flag.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of the control plane over the first round")
	flag.DurationVar(&o.Spread, "spread", 0, "agents' wait after applying before reporting and polling again (0: the agent's default)")
	flag.BoolVar(&o.Postgres, "postgres", false, "run on a throwaway PostgreSQL cluster instead of SQLite")
	flag.IntVar(&o.Replicas, "replicas", 1, "control plane processes sharing the database (more than one needs -postgres); edges are spread over them")
	flag.BoolVar(&o.SkipBaseline, "skip-baseline", false, "leave out the whole-bundle baseline")
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	flag.Parse()
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := controlplane.Run(ctx, o)
	if res != nil {
		if *asJSON {
			b, _ := json.MarshalIndent(res, "", "  ")
			fmt.Println(string(b))
		} else {
			fmt.Print(res.Markdown())
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
