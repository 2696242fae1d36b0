package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/keyfile"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "cp.yaml")
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	tests := []struct {
		name, text, err string
	}{
		{"minimal", "data_dir: data\n", ""},
		{"unknown field", "data_dir: d\nlisten_adress: x\n", "listen_adress"},
		{"no data dir", "listen: 127.0.0.1:1\n", "data_dir is required"},
		{"half tls", "data_dir: d\ntls_cert: c.pem\n", "tls_cert and tls_key"},
		{"bad duration", "data_dir: d\nlong_poll: bientôt\n", "line 2"},
		{"bad proxy", "data_dir: d\ntrusted_proxies: [10.0.0.1, proxy.lan]\n", "trusted_proxies[1]"},
		{"sso unknown field", "data_dir: d\nsso:\n  issuer: https://idp.ac-exemple.fr\n  clinet_id: vigie\n", "clinet_id"},
		{"sso without client", "data_dir: d\nsso:\n  issuer: https://idp.ac-exemple.fr\n", "sso.client_id is required"},
		{"sso over http", "data_dir: d\nsso:\n  issuer: http://idp.ac-exemple.fr\n  client_id: v\n  client_secret_file: s\n  redirect_url: https://v/r\n", "sso.issuer"},
		{"sso bad role", "data_dir: d\nsso:\n  issuer: https://i\n  client_id: v\n  client_secret_file: s\n  redirect_url: https://v/r\n  roles: [{claim: groups, value: x, role: admin}]\n", "sso.roles[0].role"},
		{"sqlite database", "data_dir: data\ndatabase: sqlite:state/vigie.db\n", ""},
		{"postgres database", "data_dir: data\ndatabase: postgres://vigie@db.ac-strasbourg.fr/vigie\ndatabase_schema: ac_strasbourg\ndatabase_password_file: pw\n", ""},
		{"inline password", "data_dir: d\ndatabase: postgres://vigie:s3cret@db/vigie\n", "database: the password must not be written in the URL"},
		{"unknown engine", "data_dir: d\ndatabase: mysql://db/vigie\n", "database: "},
		{"schema without postgres", "data_dir: d\ndatabase_schema: x\n", "need a postgres:// database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(write(tt.text))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.DataDir != filepath.Join(dir, "data") || c.Listen != "127.0.0.1:8080" || c.Key != filepath.Join(dir, "data", "academie.key") {
					t.Fatalf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.err)
			}
		})
	}
}

func TestOpenServeShutdown(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	if _, err := Open(ctx, Config{DataDir: dir}, Deps{Log: quiet}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := keyfile.Generate(filepath.Join(dir, "academie.key")); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(ctx, Config{DataDir: dir, MetricsListen: "127.0.0.1:0"}, Deps{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	// A new data directory has a valid empty draft.
	d, err := cp.Store.Draft(ctx)
	if err != nil || len(d.Policy.Profiles) != 4 || d.Policy.Validate() != nil {
		t.Fatalf("initial draft %+v: %v", d, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cp.Serve(sctx, ln) }()
	// It answers, then stops when its context ends.
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/api/v1/health")
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	if code := <-answered; code != 200 {
		t.Fatalf("health: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
