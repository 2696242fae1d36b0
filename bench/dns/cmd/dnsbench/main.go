// Command dnsbench runs the DNS side-by-side benchmark (package
// vigie/bench/dns) and writes its tables into bench/dns/README.md, between
// the results markers, and the raw runs into bench/dns/results.json:
//
//	go run ./bench/dns/cmd/dnsbench                 # 3 rounds, 10 s runs (about 10 minutes)
//	go run ./bench/dns/cmd/dnsbench -rounds 1 -d 5s # a quick look
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	dnsbench "vigie/bench/dns"
)

const (
	beginMark = "<!-- results: written by go run ./bench/dns/cmd/dnsbench -->"
	endMark   = "<!-- end of results -->"
)

func main() {
	root := flag.String("root", ".", "repository root")
	rounds := flag.Int("rounds", 3, "rounds (each peer against the Unbound baseline)")
	d := flag.Duration("d", 10*time.Second, "duration of each measured run (dnsperf -l)")
	clients := flag.Int("c", 10, "dnsperf clients")
	peers := flag.String("peers", "vigie,vigie-nojournal,dnsmasq,miekg-bare,vigie-batch1", "peers compared with Unbound")
	noWrite := flag.Bool("n", false, "print the tables, do not write README.md")
	noInstall := flag.Bool("no-install", false, "do not apt-get install missing tools")
	profile := flag.String("profile", "", "directory where each Vigie run writes cpu.pprof, heap.pprof, memory.txt and mem.tsv")
	baseBin := flag.String("base-bin", "", "vigie-dns binary of another revision, run as the vigie-base peer (build it with go build -o PATH ./bench/dns/cmd/vigie-dns in that tree)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(*root)
	if err != nil {
		fail(err)
	}
	res, err := dnsbench.Run(ctx, dnsbench.Options{
		Root: abs, Rounds: *rounds, Duration: *d, Clients: *clients,
		Peers: strings.Split(*peers, ","), NoInstall: *noInstall, Log: os.Stderr, Profile: *profile, BaseBin: *baseBin,
	})
	md := res.Markdown()
	fmt.Println(md)
	if err != nil {
		fail(err)
	}
	if *noWrite {
		return
	}
	readme := filepath.Join(abs, "bench", "dns", "README.md")
	text, err := os.ReadFile(readme)
	if err != nil {
		fail(err)
	}
	i, j := bytes.Index(text, []byte(beginMark)), bytes.Index(text, []byte(endMark))
	if i < 0 || j < i {
		fail(fmt.Errorf("%s has no results markers", readme))
	}
	out := append([]byte{}, text[:i+len(beginMark)]...)
	out = append(out, "\n"+md+"\n"...)
	out = append(out, text[j:]...)
	if err := os.WriteFile(readme, out, 0o644); err != nil {
		fail(err)
	}
	js, _ := json.MarshalIndent(struct {
		dnsbench.Result
		Summaries []dnsbench.Summary `json:"summaries"`
	}{res, res.Summaries()}, "", "  ")
	if err := os.WriteFile(filepath.Join(abs, "bench", "dns", "results.json"), append(js, '\n'), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dnsbench:", err)
	os.Exit(1)
}
