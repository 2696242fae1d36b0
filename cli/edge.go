package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"vigie/proxy/edge"
)

func runEdge(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "check" {
		return edgeCheck(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	fs := newFlags("edge", stderr)
	cfgPath := fs.String("config", "/etc/vigie/edge.yaml", "edge configuration file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigie edge [run] [--config FILE]    run the edge\n       vigie edge check [--config FILE]  validate the configuration and the files it names, starting nothing")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := edge.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	edge.SoftwareVersion = Version
	e, err := edge.New(cfg, edge.Deps{Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := e.Start(ctx); err != nil {
		return err
	}
	// The key shows which académie key verified the bundle in force,
	// which an operator checks during a key rotation.
	key := e.PolicyKey()
	if key == "" {
		key = "none: built-in strict policy"
	}
	fmt.Fprintf(stdout, "vigie edge %s running (policy serial %d, key %s)\n", cfg.UAI, e.Generation().Serial(), key)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return e.Shutdown(context.Background())
	case err := <-e.Failed():
		// A dead listener leaves the school half filtered: exit non-zero
		// so that systemd restarts a whole edge (see proxy/edge/supervise.go).
		return errors.Join(err, e.Shutdown(context.Background()))
	}
}

// edgeCheck validates a configuration and the files it names, starting
// nothing: run it before "systemctl restart vigie-edge".
func edgeCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("edge check", stderr)
	cfgPath := fs.String("config", "/etc/vigie/edge.yaml", "edge configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := edge.Check(*cfgPath); err != nil {
		fmt.Fprintln(stderr, err)
		return exitError(1)
	}
	fmt.Fprintf(stdout, "%s: configuration OK\n", *cfgPath)
	return nil
}
