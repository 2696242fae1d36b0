// Command cmd runs the conntrack flood ladder alone (root):
//
//	go run ./bench/flowflood/cmd
//	go run ./bench/flowflood/cmd -rates 20000,50000,0 -step 1s -json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"vigie/bench/flowflood"
)

func main() {
	if flowflood.IsSender() {
		os.Exit(flowflood.SenderMain())
	}
	var o flowflood.Options
	rates := flag.String("rates", "", "comma-separated target new flows/s per step, 0 for unpaced (default: 10000 to 100000, then unpaced)")
	flag.DurationVar(&o.Step, "step", 0, "length of a step at its target rate (default 2s)")
	flag.IntVar(&o.MaxFlows, "max-flows", 0, "flows per step at most (default 150000)")
	flag.IntVar(&o.Senders, "senders", 0, "sender processes (default: one per core)")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	profile := flag.String("cpuprofile", "", "write a CPU profile of this process (the recorder) over the run")
	flag.Parse()
	for _, r := range strings.Split(*rates, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		v, err := strconv.ParseFloat(r, 64)
		if err != nil || v < 0 {
			fmt.Fprintf(os.Stderr, "flowflood: -rates: %q is not a rate\n", r)
			os.Exit(2)
		}
		o.Rates = append(o.Rates, v)
	}
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flowflood:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	res, err := flowflood.Run(ctx, o)
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	if res != nil {
		if *asJSON {
			b, _ := json.MarshalIndent(res, "", "  ")
			fmt.Println(string(b))
		} else {
			fmt.Print(res.Markdown())
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowflood:", err)
		os.Exit(1)
	}
}
