package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"vigie/controlplane"
	"vigie/controlplane/auth"
	"vigie/controlplane/listtree"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/controlplane/ut1import"
	"vigie/keyfile"
	"vigie/rules/policy"
)

// runControlplane runs the académie control plane and its maintenance
// commands, which work on the data directory directly.
func runControlplane(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return controlplaneServe(args, stdout, stderr)
	}
	return subcommand("controlplane", args, map[string]func([]string) error{
		"serve":      func(a []string) error { return controlplaneServe(a, stdout, stderr) },
		"init":       func(a []string) error { return controlplaneInit(a, stdout, stderr) },
		"import-ut1": func(a []string) error { return controlplaneImport(a, stdout, stderr) },
		"migrate":    func(a []string) error { return controlplaneMigrate(a, stdout, stderr) },
	})
}

// controlplaneMigrate moves an académie's state from its SQLite file into
// an empty PostgreSQL schema, audit chain verified on both sides.
func controlplaneMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane migrate", stderr)
	from := fs.String("from", "", "the SQLite store: sqlite:PATH (DATA/vigie.db)")
	to := fs.String("to", "", "the PostgreSQL database: postgres://USER@HOST/DB (no password: PGPASSWORD, ~/.pgpass or --password-file)")
	schema := fs.String("schema", "vigie", "PostgreSQL schema of this académie")
	pwFile := fs.String("password-file", "", "file holding the PostgreSQL password")
	if err := parse(fs, args); err != nil {
		return err
	}
	path, ok := strings.CutPrefix(*from, "sqlite:")
	if !ok || path == "" || store.Backend(*to) != "postgres" {
		return usageError("usage: vigie controlplane migrate --from sqlite:PATH --to postgres://USER@HOST/DB [--schema NAME] [--password-file FILE]")
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("controlplane migrate: --from: %w", err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	src, err := store.OpenSQLite(path, 1)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := store.Open(ctx, *to, store.Options{Schema: *schema, PasswordFile: *pwFile, Log: log})
	if err != nil {
		return fmt.Errorf("controlplane migrate: --to: %w", err)
	}
	defer st.Close()
	rep, err := store.Move(ctx, src, st.(*store.Postgres))
	if err != nil {
		return err
	}
	for _, t := range []string{"draft", "lists", "list_entries", "sections", "versions", "edges", "users", "sessions", "api_tokens", "audit"} {
		fmt.Fprintf(stdout, "  %-13s %d rows\n", t, rep.Rows[t])
	}
	fmt.Fprintf(stdout, "moved into schema %q; audit chain verified on both sides: %d entries, head %d %x\n",
		*schema, rep.Copy.Entries, rep.Copy.HeadSeq, rep.Copy.Head[:])
	// The list trees the draft compiles from go to the database too, so
	// that replicas need nothing from this data directory.
	d, err := src.Draft(ctx)
	if err != nil {
		return err
	}
	dataDir := filepath.Dir(path)
	for _, s := range d.Policy.Sources {
		name := filepath.ToSlash(s.Path)
		if fi, err := os.Stat(filepath.Join(dataDir, s.Path)); filepath.IsAbs(s.Path) || !strings.HasPrefix(name, "lists/") || err != nil || !fi.IsDir() {
			continue
		}
		packed, err := listtree.Pack(filepath.Join(dataDir, s.Path))
		if err != nil {
			return err
		}
		if err := st.(listtree.Store).PutListTree(ctx, name, packed); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "list tree %s stored in the database (%d bytes packed)\n", name, len(packed))
	}
	fmt.Fprintf(stdout, "Now set in controlplane.yaml:\n  database: %s\n  database_schema: %s\n", *to, *schema)
	return nil
}

func controlplaneServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane serve", stderr)
	cfgPath := fs.String("config", "/etc/vigie/controlplane.yaml", "control plane configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := controlplane.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cp, err := controlplane.Open(ctx, cfg, controlplane.Deps{Log: log})
	if err != nil {
		return err
	}
	defer cp.Close()
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	h := cp.Publisher.Head()
	fmt.Fprintf(stdout, "vigie control plane on %s://%s (data %s, published serial %d)\n", scheme, cfg.Listen, cfg.DataDir, h.Serial)
	return cp.ListenAndServe(ctx)
}

// cliActor names the person running a maintenance command in the audit log.
func cliActor() publish.Actor {
	name := "cli"
	if u, err := user.Current(); err == nil {
		name = "cli:" + u.Username
	}
	return publish.Actor{Name: name, Role: "cli"}
}

func controlplaneInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane init", stderr)
	cfgPath := fs.String("config", "/etc/vigie/controlplane.yaml", "control plane configuration file")
	policyPath := fs.String("policy", "", "policy file (YAML) to start the draft from")
	admin := fs.String("admin", "rssi", "login of the first RSSI account")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := controlplane.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Key); errors.Is(err, os.ErrNotExist) {
		if _, err := keyfile.Generate(cfg.Key); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "generated the académie signing key %s (public key %s.pub: pin it in every edge)\n", cfg.Key, cfg.Key)
	}
	ctx := context.Background()
	cp, err := controlplane.Open(ctx, cfg, controlplane.Deps{Log: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		return err
	}
	defer cp.Close()
	if *policyPath != "" {
		p, err := policy.Load(*policyPath)
		if err != nil {
			return err
		}
		// Sources are read from the control plane's point of view.
		for i := range p.Sources {
			if !filepath.IsAbs(p.Sources[i].Path) {
				if p.Sources[i].Path, err = filepath.Abs(filepath.Join(p.Dir, p.Sources[i].Path)); err != nil {
					return err
				}
			}
		}
		if err := publish.ReplaceDraft(ctx, cp.Store, p, cliActor(), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "draft loaded from %s\n", *policyPath)
	}
	acc, err := controlplane.CreateAccount(ctx, cp.Store, cp.Auth, cliActor().Name, *admin, auth.RSSI, "", true, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "RSSI account %q created.\n  password:  %s\n  API token: %s\nKeep them safe: they are shown only once.\n", acc.Login, acc.Password, acc.Token)
	return nil
}

func controlplaneImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane import-ut1", stderr)
	cfgPath := fs.String("config", "/etc/vigie/controlplane.yaml", "control plane configuration file")
	md5URL := fs.String("md5", "", "URL of the MD5 file (default: MD5SUM.LST beside the tarball)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie controlplane import-ut1 [--config FILE] DIR|https://.../blacklists.tar.gz")
	}
	cfg, err := controlplane.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cp, err := controlplane.Open(ctx, cfg, controlplane.Deps{Log: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		return err
	}
	defer cp.Close()
	d, err := cp.Store.Draft(ctx)
	if err != nil {
		return err
	}
	prev := ""
	for _, s := range d.Policy.Sources {
		if s.Name == ut1import.SourceName {
			prev = s.Path
			if !filepath.IsAbs(prev) {
				prev = filepath.Join(cfg.DataDir, prev)
			}
		}
	}
	res, err := ut1import.Import(ctx, ut1import.Options{Source: fs.Arg(0), MD5: *md5URL, DataDir: cfg.DataDir, Previous: prev})
	if err != nil {
		return err
	}
	if err := ut1import.UpdateDraft(ctx, cp.Store, res, cliActor(), time.Now()); err != nil {
		return err
	}
	printImport(stdout, res)
	fmt.Fprintln(stdout, "The draft now uses this tree; publish to send it to the schools.")
	return nil
}

func printImport(w io.Writer, res *ut1import.Result) {
	fmt.Fprintf(w, "imported %s: %d categories, %d domains", res.Dir, len(res.Categories), res.Domains)
	if res.MD5 != "" {
		fmt.Fprintf(w, " (MD5 %s verified)", res.MD5)
	}
	fmt.Fprintln(w)
	changed := res.Changed()
	if len(changed) == 0 {
		fmt.Fprintln(w, "no category changed")
	}
	for _, c := range changed {
		fmt.Fprintf(w, "  %-24s %-9s domains %d -> %d (+%d -%d), urls %d -> %d\n", c.Category, c.Status,
			c.DomainsBefore, c.DomainsAfter, c.DomainsAdded, c.DomainsRemoved, c.URLsBefore, c.URLsAfter)
	}
	for i, p := range res.Problems {
		if i == 10 {
			fmt.Fprintf(w, "  ... and %d more problems\n", len(res.Problems)-10)
			break
		}
		fmt.Fprintln(w, "  problem:", p)
	}
}
