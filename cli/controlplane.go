package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"vigie/controlplane"
	"vigie/controlplane/auth"
	"vigie/controlplane/backup"
	"vigie/controlplane/listtree"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/controlplane/ut1import"
	"vigie/journal/archive"
	"vigie/keyfile"
	"vigie/rules/policy"
)

// runControlplane runs the académie control plane and its maintenance
// commands, which work on the data directory directly.
func runControlplane(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		args = []string{"help"} // the list of subcommands
	} else if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return controlplaneServe(args, stdout, stderr)
	}
	return subcommand("controlplane", args, map[string]func([]string) error{
		"serve":      func(a []string) error { return controlplaneServe(a, stdout, stderr) },
		"init":       func(a []string) error { return controlplaneInit(a, stdout, stderr) },
		"import-ut1": func(a []string) error { return controlplaneImport(a, stdout, stderr) },
		"migrate":    func(a []string) error { return controlplaneMigrate(a, stdout, stderr) },
		"check":      func(a []string) error { return controlplaneCheck(a, stdout, stderr) },
		"backup":     func(a []string) error { return controlplaneBackup(a, stdout, stderr) },
		"restore":    func(a []string) error { return controlplaneRestore(a, stdout, stderr) },
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
	// The archive (journal.db next to the store) goes into the
	// schema's _journal twin; both ends are opened before anything moves.
	dataDir := filepath.Dir(path)
	var jsrc, jdst *archive.SQLStore
	if _, err := os.Stat(filepath.Join(dataDir, "journal.db")); err == nil {
		if jsrc, err = archive.OpenSQLite(filepath.Join(dataDir, "journal.db")); err != nil {
			return fmt.Errorf("controlplane migrate: archive: %w", err)
		}
		defer jsrc.Close()
		pw := ""
		if *pwFile != "" {
			b, err := os.ReadFile(*pwFile)
			if err != nil {
				return fmt.Errorf("controlplane migrate: --password-file: %w", err)
			}
			pw, _, _ = strings.Cut(string(b), "\n")
			pw = strings.TrimRight(pw, "\r")
		}
		if jdst, err = archive.OpenPostgres(ctx, *to, archive.PostgresConfig{Schema: *schema, Password: pw}); err != nil {
			return fmt.Errorf("controlplane migrate: --to: %w", err)
		}
		defer jdst.Close()
	}
	rep, err := store.Move(ctx, src, st.(*store.Postgres))
	if err != nil {
		return err
	}
	for _, t := range []string{"draft", "lists", "list_entries", "sections", "versions", "edges", "users", "sessions", "api_tokens", "audit", "ip_proposals"} {
		fmt.Fprintf(stdout, "  %-13s %d rows\n", t, rep.Rows[t])
	}
	fmt.Fprintf(stdout, "moved into schema %q; audit chain verified on both sides: %d entries, head %d %x\n",
		*schema, rep.Copy.Entries, rep.Copy.HeadSeq, rep.Copy.Head[:])
	if jsrc == nil {
		fmt.Fprintf(stdout, "no %s: no journal archive to move\n", filepath.Join(dataDir, "journal.db"))
	} else {
		arep, err := archive.Move(ctx, jsrc, jdst)
		if err != nil {
			return fmt.Errorf("%w\nThe store moved into schema %q but the journal archive did not: drop both schemas (DROP SCHEMA %s CASCADE; DROP SCHEMA %s_journal CASCADE) and run the migration again", err, *schema, *schema, *schema)
		}
		for _, t := range []string{"chains", "sealed_blocks", "held_blocks", "gaps", "holds", "edge_keys"} {
			fmt.Fprintf(stdout, "  %-13s %d rows\n", t, arep.Rows[t])
		}
		fmt.Fprintf(stdout, "journal archive moved into schema %q: %d chains verified on both sides, %d records, every link recomputed\n",
			*schema+"_journal", arep.Chains, arep.Records)
	}
	// The list trees the draft compiles from go to the database too, so
	// that replicas need nothing from this data directory.
	d, err := src.Draft(ctx)
	if err != nil {
		return err
	}
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
	md5URL := fs.String("md5", "", "MD5 file, URL or path (default: MD5SUM.LST beside the tarball; required to exist for a download)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie controlplane import-ut1 [--config FILE] [--md5 FILE|URL] DIR|FILE.tar.gz|http(s)://.../blacklists.tar.gz")
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
	// The same steps as the API's import, pruning included: an unchanged
	// tree is not copied again, and trees no draft uses are removed.
	res, err := ut1import.Run(ctx, cp.Store, ut1import.Options{Source: fs.Arg(0), MD5: *md5URL, DataDir: cfg.DataDir}, cliActor(), time.Now())
	if err != nil {
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
	if res.Unchanged {
		fmt.Fprintln(w, "identical to the tree the draft already uses: nothing copied")
	}
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

// controlplaneCheck validates a configuration and the files it names,
// starting nothing.
func controlplaneCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane check", stderr)
	cfgPath := fs.String("config", "/etc/vigie/controlplane.yaml", "control plane configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := controlplane.Check(*cfgPath); err != nil {
		fmt.Fprintln(stderr, err)
		return exitError(1)
	}
	fmt.Fprintf(stdout, "%s: configuration OK\n", *cfgPath)
	return nil
}

func controlplaneBackup(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane backup", stderr)
	cfgPath := fs.String("config", "/etc/vigie/controlplane.yaml", "control plane configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie controlplane backup [--config FILE] DIR (a new directory)")
	}
	cfg, err := controlplane.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := backupable(cfg, *cfgPath); err != nil {
		return err
	}
	m, err := backup.Backup(context.Background(), cfg.DataDir, fs.Arg(0), Version, time.Now())
	if err != nil {
		return err
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	fmt.Fprintf(stdout, "backup of %s in %s: %d files, %d bytes, manifest %s\n", cfg.DataDir, fs.Arg(0), len(m.Files), total, backup.ManifestName)
	fmt.Fprintf(stdout, "Not included: the académie signing key %s and the TLS key; keep them apart (see the operator guide).\n", cfg.Key)
	return nil
}

func controlplaneRestore(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("controlplane restore", stderr)
	cfgPath := fs.String("config", "/etc/vigie/controlplane.yaml", "control plane configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: vigie controlplane restore [--config FILE] DIR")
	}
	cfg, err := controlplane.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := backupable(cfg, *cfgPath); err != nil {
		return err
	}
	// Replacing the databases under a running server would lose writes
	// and confuse its caches.
	if c, err := net.DialTimeout("tcp", cfg.Listen, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("a control plane answers on %s: stop it first (systemctl stop vigie-controlplane)", cfg.Listen)
	}
	aside, err := backup.Restore(fs.Arg(0), cfg.DataDir, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s (manifest verified)\nThe replaced files are in %s: remove them once the control plane runs.\n", cfg.DataDir, fs.Arg(0), aside)
	return nil
}

// backupable refuses a store that is not the data directory's vigie.db,
// saying what to back up instead. On PostgreSQL both the store and the
// journal archive live in the database (the archive in the schema's
// _journal twin, list trees in the store), so pg_dump of the two schemas
// is the whole backup and the data directory's journal.db is not used.
func backupable(cfg controlplane.Config, path string) error {
	switch {
	case store.Backend(cfg.Database) == "postgres":
		schema := cfg.DatabaseSchema
		if schema == "" {
			schema = "vigie"
		}
		return fmt.Errorf("%s: database is PostgreSQL: the store and the journal archive are both in it; back them up with pg_dump -Fc -n %s -n %s_journal (restore with pg_restore; the data directory's journal.db is not used) (operator guide, section 10)", path, schema, schema)
	case cfg.Database != "" && filepath.Clean(strings.TrimPrefix(cfg.Database, "sqlite:")) != filepath.Join(cfg.DataDir, "vigie.db"):
		return fmt.Errorf("%s: database %s is outside data_dir: this command copies data_dir's vigie.db and journal.db only; back up %s and %s as SQLite files yourself (sqlite3 FILE \".backup COPY\", or copy them with the service stopped) (operator guide, section 10)",
			path, cfg.Database, strings.TrimPrefix(cfg.Database, "sqlite:"), filepath.Join(cfg.DataDir, "journal.db"))
	}
	return nil
}
