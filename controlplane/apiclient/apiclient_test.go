package apiclient

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivateCA: a control plane whose certificate comes from a private
// CA is refused until the client trusts that CA with CAFile.
func TestPrivateCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer jeton" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(401)
			w.Write([]byte(`{"type":"urn:vigie:problem:unauthenticated","title":"Authentification requise","status":401}`))
			return
		}
		w.Write([]byte(`{"status":"ok","serial":7}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := New(Options{Server: srv.URL, Token: "jeton"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted CA accepted: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = New(Options{Server: srv.URL, Token: "jeton", CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if serial, err := c.Health(ctx); err != nil || serial != 7 {
		t.Fatalf("with the CA: %d %v", serial, err)
	}
	c.Token = "faux"
	var p *Problem
	if _, err := c.Health(ctx); !errors.As(err, &p) || p.Kind() != "unauthenticated" || p.Status != 401 {
		t.Fatalf("problem: %v", err)
	}
	for _, bad := range []Options{{Server: "ftp://x"}, {Server: srv.URL, CAFile: filepath.Join(t.TempDir(), "absent.pem")}, {Server: srv.URL, CAFile: "/etc/hostname"}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}
