package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"vigie/controlplane"
	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/keyfile"
	"vigie/proxy/edge"
)

// demoAccounts is what the demo writes to DATA/demo-accounts.json.
type demoAccounts struct {
	ControlPlane string                 `json:"control_plane"`
	UAI          string                 `json:"uai"`
	Accounts     []controlplane.Account `json:"accounts"`
	Edge         struct {
		ID        string `json:"id"`
		TokenFile string `json:"token_file"`
	} `json:"edge"`
	PublicKeys []string `json:"public_keys"`
}

// runDemo runs the control plane and one edge syncing from it, on
// loopback, with embedded defaults: the demo policy published as serial 1,
// one account per role, a generated académie key.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dataDir := fs.String("data", "vigie-demo", "data directory (keys, database, edge state, accounts)")
	lists := fs.String("lists", "", "blocklists folder holding ut1/ and adult-top1m/ (default: ../shared/blocklists when present, else the embedded sample)")
	listen := fs.String("listen", "127.0.0.1:8080", "control plane address")
	if err := parse(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	data, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		return err
	}
	listsDir := demo.FindLists(*lists)
	if listsDir == "" {
		if listsDir, err = demo.WriteSample(filepath.Join(data, "lists", "sample")); err != nil {
			return err
		}
		log.Info("using the embedded sample lists (UT1 excerpts, CC BY-SA 4.0)", "dir", listsDir)
	} else if listsDir, err = filepath.Abs(listsDir); err != nil {
		return err
	}
	keyPath := filepath.Join(data, "academie.key")
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if _, err := keyfile.Generate(keyPath); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := controlplane.Config{Listen: *listen, DataDir: data, Key: keyPath, InsecureCookies: true,
		Academie: "Académie de Strasbourg (démonstration)"}
	cp, err := controlplane.Open(ctx, cfg, controlplane.Deps{Log: log})
	if err != nil {
		return err
	}
	defer cp.Close()
	url := "http://" + *listen
	accountsPath := filepath.Join(data, "demo-accounts.json")
	tokenFile := filepath.Join(data, "edge", "edge.token")
	if cp.Publisher.Head().Serial == 0 {
		if err := demoSeed(ctx, cp, listsDir, url, keyPath, accountsPath, tokenFile, log); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- cp.ListenAndServe(ctx) }()

	ecfg := edge.Config{
		UAI:          demo.UAI,
		StateDir:     filepath.Join(data, "edge"),
		PublicKey:    keyPath + ".pub",
		ControlPlane: edge.ControlPlaneConfig{URL: url, TokenFile: tokenFile},
	}
	demoEdgeConfig(&ecfg)
	edge.SoftwareVersion = Version
	e, err := edge.New(ecfg, edge.Deps{Log: log})
	if err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}
	defer e.Shutdown(context.Background())
	// The edge starts from its last-known-good bundle, or strict until the
	// first sync: wait briefly for the published version to say where it is.
	deadline := time.Now().Add(10 * time.Second)
	for e.Generation().Serial() < cp.Publisher.Head().Serial && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintf(stdout, `Vigie demo running.
  Control plane (API):  %s/api/v1/  (OpenAPI: %s/api/v1/openapi.json)
  School %s edge:  DNS %s, proxy %s, policy serial %d
  Accounts (passwords, API tokens): %s
  Académie public key:  %s.pub
  Lists:                %s
Try:
  dig @127.0.0.1 -p 5353 pornhub.com
  VIGIE_TOKEN=<rssi token> vigie admin lists add academie_bloque exemple.org
  VIGIE_TOKEN=<rssi token> vigie admin publish -m "Bloquer exemple.org"
  VIGIE_TOKEN=<rssi token> vigie admin edges
Press Ctrl-C to stop.
`, url, url, demo.UAI, ecfg.DNS.Listen, ecfg.HTTP.Explicit, e.Generation().Serial(), accountsPath, keyPath, listsDir)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return <-errc
}

// demoSeed prepares a new demo data directory: the draft from the demo
// policy, serial 1, one account per role, the edge's registration.
func demoSeed(ctx context.Context, cp *controlplane.ControlPlane, listsDir, url, keyPath, accountsPath, tokenFile string, log *slog.Logger) error {
	pol, err := demo.Policy(listsDir)
	if err != nil {
		return err
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join(listsDir, pol.Sources[i].Path)
	}
	who := publish.Actor{Name: "demo", Role: "system"}
	now := time.Now()
	if err := publish.ReplaceDraft(ctx, cp.Store, pol, who, now); err != nil {
		return err
	}
	start := time.Now()
	v, err := cp.Publisher.Publish(ctx, who, "Politique de démonstration", false)
	if err != nil {
		return err
	}
	log.Info("demo policy published", "serial", v.Serial, "domains", v.Domains, "bytes", v.Size, "took", time.Since(start).Round(time.Millisecond))
	out := demoAccounts{ControlPlane: url, UAI: demo.UAI, PublicKeys: []string{keyPath + ".pub"}}
	for _, a := range []struct {
		login string
		role  auth.Role
		uai   string
	}{{"rssi", auth.RSSI, ""}, {"chef", auth.Chef, demo.UAI}, {"technicien", auth.Technicien, ""}, {"auditeur", auth.Auditeur, ""}} {
		acc, err := controlplane.CreateAccount(ctx, cp.Store, cp.Auth, "demo", a.login, a.role, a.uai, true, time.Now())
		if err != nil {
			return err
		}
		out.Accounts = append(out.Accounts, acc)
	}
	tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
	out.Edge.ID, out.Edge.TokenFile = "demo-edge", tokenFile
	err = cp.Store.Update(ctx, func(tx store.Tx) error {
		at := time.Now()
		e := store.Edge{ID: out.Edge.ID, UAI: demo.UAI, Name: "Passerelle de démonstration", CreatedAt: at, TokenHash: hash}
		if err := tx.CreateEdge(ctx, e); err != nil {
			return err
		}
		after, _ := json.Marshal(e)
		return tx.AppendAudit(ctx, &audit.Entry{Time: at, Actor: "demo", Action: "edge.create", Target: "edge/" + e.ID, After: after})
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return os.WriteFile(accountsPath, append(b, '\n'), 0o600)
}

// demoEdgeConfig sets the loopback addresses of the demo edge.
func demoEdgeConfig(cfg *edge.Config) {
	cfg.DNS.Listen = "127.0.0.1:5353"
	cfg.HTTP.Explicit = "127.0.0.1:3128"
}
