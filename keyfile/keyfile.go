// Package keyfile stores Ed25519 keys as PEM files (PKCS #8 for private
// keys, PKIX for public keys) so that standard tools (openssl pkey) can read
// them. The académie signs bundles and exports with them; edges seal journal
// segments with their own.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// Generate creates a key pair, writes the private key to path (mode 0600,
// refusing to overwrite) and the public key to path + ".pub".
func Generate(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keyfile: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	if err := WritePublic(path+".pub", pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// WritePublic writes a public key as PEM.
func WritePublic(path string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	return nil
}

// EncodePrivate returns the PEM text of a private key.
func EncodePrivate(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadPrivate reads an Ed25519 private key.
func LoadPrivate(path string) (ed25519.PrivateKey, error) {
	block, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("keyfile: %s: not an Ed25519 key (%T)", path, k)
	}
	return priv, nil
}

// LoadPublic reads an Ed25519 public key.
func LoadPublic(path string) (ed25519.PublicKey, error) {
	block, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	return ParsePublic(block, path)
}

// ParsePublic parses a DER public key; name is used in errors.
func ParsePublic(der []byte, name string) (ed25519.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: %w", name, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("keyfile: %s: not an Ed25519 key (%T)", name, k)
	}
	return pub, nil
}

// DecodePublicPEM parses PEM text of a public key.
func DecodePublicPEM(data []byte, name string) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("keyfile: %s: no PEM \"PUBLIC KEY\" block", name)
	}
	return ParsePublic(block.Bytes, name)
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("keyfile: %s: no PEM block", path)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("keyfile: %s: PEM block is %q, want %q", path, block.Type, typ)
	}
	return block.Bytes, nil
}
