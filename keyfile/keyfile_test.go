package keyfile

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateLoadFingerprint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "academie.key")
	pub, err := Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadPublic(path + ".pub")
	if err != nil || !got.Equal(pub) {
		t.Fatalf("LoadPublic = %x, %v; want %x", got, err, pub)
	}
	priv, err := LoadPrivate(path)
	if err != nil || !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("LoadPrivate: %v", err)
	}
	fp := Fingerprint(pub)
	sum := sha256.Sum256(pub)
	if len(fp) != 8 || fp != hex.EncodeToString(sum[:])[:8] {
		t.Fatalf("Fingerprint = %q, want the first 8 hex digits of SHA-256 of the raw key", fp)
	}
	other, err := Generate(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(other) == fp {
		t.Fatal("two generated keys have the same fingerprint")
	}
	if _, err := Generate(path); err == nil {
		t.Fatal("Generate overwrote an existing private key")
	}
}

func TestLoadPublicRefuses(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "academie.key")
	if _, err := Generate(priv); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pub")
	os.WriteFile(garbage, []byte("not a key\n"), 0o644)
	cases := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "absent.pub"), "absent.pub"},
		{"not PEM", garbage, "garbage.pub"},
		{"private key given", priv, "PRIVATE KEY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadPublic(c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadPublic(%s) = %v, want an error naming %q", c.path, err, c.want)
			}
		})
	}
}
