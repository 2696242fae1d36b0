package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"vigie/demo"
	"vigie/testlab"
)

func runTestlab(args []string, stdout, stderr io.Writer) error {
	return subcommand("testlab", args, map[string]func([]string) error{
		"up":   func(a []string) error { return testlabUp(a, stdout, stderr) },
		"down": func(a []string) error { return testlabDown(a, stdout, stderr) },
	})
}

// testlabUp builds the virtual school, runs this very binary as its edge,
// and keeps the lab's internet serving until interrupted.
func testlabUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("testlab up", stderr)
	lists := fs.String("lists", "", "blocklists folder holding ut1/ and adult-top1m/ (default: testdata/blocklists or ../shared/blocklists when present, else the embedded sample)")
	verbose := fs.Bool("v", false, "copy the edge's log to the terminal")
	if err := parse(fs, args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("testlab: needs root (it creates network namespaces)")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("testlab: %w", err)
	}
	dir := demo.FindLists(*lists)
	if dir == "" {
		tmp, err := os.MkdirTemp("", "vigie-lab-lists-")
		if err != nil {
			return fmt.Errorf("testlab: %w", err)
		}
		defer os.RemoveAll(tmp)
		if dir, err = demo.WriteSample(tmp); err != nil {
			return err
		}
	}
	o := testlab.Options{Binary: self, Lists: dir}
	if *verbose {
		o.EdgeLog = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, err := testlab.Up(ctx, o)
	if err != nil {
		return err
	}
	defer l.Down()
	fmt.Fprintf(stdout, `Virtual collège %s up (lab %s, files in %s).

  Step into the pupil's device (zone pedagogique, 10.10.0.10):
    sudo ip netns exec %s bash
    curl -v http://eduscol.education.fr/          (allowed: the lab origin answers)
    curl -v http://pornhub.com/                   (blocked: the French block page)
    curl --cacert %s https://eduscol.education.fr/   (the origin's own certificate)
    curl -v --http3 https://eduscol.education.fr/ (QUIC: dropped)
  Its resolv.conf names the "public resolver" %s: the firewall
  sends its DNS to the edge's filter all the same.
  The secretariat (zone administratif, 10.20.0.10): sudo ip netns exec %s bash
  The gateway itself: sudo ip netns exec %s nft list table inet vigie
                      %s firewall counters --netns %s
  The edge's log: %s/edge.log

Ctrl-C removes everything. If this process is killed, run "vigie testlab down".
`, testlab.UAI, l.ID, l.Dir, l.Eleve.Name, l.CP.CAFile, testlab.PublicResolverAddr, l.Secretariat.Name, l.Edge.Name, self, l.Edge.Name, l.Dir)
	<-ctx.Done()
	fmt.Fprintln(stdout, "removing the lab...")
	return l.Down()
}

func testlabDown(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("testlab down", stderr)
	all := fs.Bool("all", false, "also remove labs whose process is still running")
	if err := parse(fs, args); err != nil {
		return err
	}
	removed, err := testlab.Cleanup(*all)
	for _, id := range removed {
		fmt.Fprintf(stdout, "removed lab %s\n", id)
	}
	if len(removed) == 0 && err == nil {
		fmt.Fprintln(stdout, "no lab to remove")
	}
	return err
}
