package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"vigie/demo"
	"vigie/keyfile"
	"vigie/proxy/edge"
	"vigie/rules"
)

// runDemo runs the system on loopback with embedded defaults. The control
// plane work extends it; today it compiles the demo policy, signs it and
// runs one edge on it.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dataDir := fs.String("data", "vigie-demo", "data directory (keys, state, database)")
	lists := fs.String("lists", "", "blocklists folder holding ut1/ and adult-top1m/ (default: ../shared/blocklists when present, else the embedded sample)")
	if err := parse(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return err
	}
	listsDir := demo.FindLists(*lists)
	if listsDir == "" {
		var err error
		if listsDir, err = demo.WriteSample(filepath.Join(*dataDir, "lists")); err != nil {
			return err
		}
		log.Info("using the embedded sample lists", "dir", listsDir)
	}
	keyPath := filepath.Join(*dataDir, "academie.key")
	if _, err := os.Stat(keyPath); os.IsNotExist(err) {
		if _, err := keyfile.Generate(keyPath); err != nil {
			return err
		}
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		return err
	}
	p, err := demo.Policy(listsDir)
	if err != nil {
		return err
	}
	start := time.Now()
	rs, rep, err := rules.Compile(p)
	if err != nil {
		return err
	}
	log.Info("demo policy compiled", "lists", listsDir, "domains", rs.Domains(), "rejected_lines", rep.Rejected, "took", time.Since(start).Round(time.Millisecond))
	data, err := rules.EncodeBundle(rs, 1, time.Now(), key)
	if err != nil {
		return err
	}
	bundlePath := filepath.Join(*dataDir, "demo.bundle")
	if err := writeFileAtomic(bundlePath, data); err != nil {
		return err
	}
	cfg := edge.Config{
		UAI:       demo.UAI,
		StateDir:  filepath.Join(*dataDir, "edge"),
		PublicKey: keyPath + ".pub",
		Bundle:    bundlePath,
	}
	demoEdgeConfig(&cfg)
	e, err := edge.New(cfg, edge.Deps{Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := e.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Vigie demo running for school %s (policy serial %d, %d domains).\n", demo.UAI, e.Generation().Serial(), rs.Domains())
	fmt.Fprintf(stdout, "Data directory: %s\nPress Ctrl-C to stop.\n", *dataDir)
	<-ctx.Done()
	return e.Shutdown(context.Background())
}

// demoEdgeConfig sets the loopback addresses of the demo edge.
func demoEdgeConfig(cfg *edge.Config) {}
