package httpproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCertStore(t *testing.T) {
	now := time.Now()
	var generated atomic.Int32
	s := newCertStore(2, func() time.Time { return now }, func() { generated.Add(1) })
	leaf := func(notAfter time.Time) func() (*tls.Certificate, error) {
		return func() (*tls.Certificate, error) {
			time.Sleep(20 * time.Millisecond) // a signature takes time: callers pile up
			return &tls.Certificate{Leaf: &x509.Certificate{NotAfter: notAfter}}, nil
		}
	}
	t.Run("one signature for concurrent callers", func(t *testing.T) {
		var wg sync.WaitGroup
		certs := make([]*tls.Certificate, 50)
		for i := range certs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.Fetch("a.example", leaf(now.Add(365*24*time.Hour)))
				if err != nil {
					t.Error(err)
				}
				certs[i] = c
			}()
		}
		wg.Wait()
		if n := generated.Load(); n != 1 {
			t.Fatalf("%d signatures for one host", n)
		}
		for _, c := range certs {
			if c != certs[0] {
				t.Fatal("callers got different certificates")
			}
		}
	})
	t.Run("bounded, least recently used out", func(t *testing.T) {
		s.Fetch("b.example", leaf(now.Add(time.Hour*48)))
		s.Fetch("a.example", leaf(now.Add(time.Hour*48))) // a is now most recent
		s.Fetch("c.example", leaf(now.Add(time.Hour*48))) // evicts b
		if s.len() != 2 || s.get("b.example") != nil || s.get("a.example") == nil {
			t.Fatalf("cache holds %d, b present %v", s.len(), s.get("b.example") != nil)
		}
	})
	t.Run("no certificate near expiry is served", func(t *testing.T) {
		before := generated.Load()
		s.Fetch("d.example", leaf(now.Add(time.Hour)))
		s.Fetch("d.example", leaf(now.Add(time.Hour*48)))
		if generated.Load()-before != 2 {
			t.Fatal("a certificate expiring within a day was served from the cache")
		}
	})
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, key any, isCA bool) (string, string) {
		var pub any
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			pub = &k.PublicKey
		case *rsa.PrivateKey:
			pub = &k.PublicKey
		}
		tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, pub, key)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		cp, kp := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
		return cp, kp
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	okCert, okKey := write("ok", ec, true)
	rsaCert, rsaKey := write("rsa", rk, true)
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafCert, leafKey := write("leaf", ec2, false)
	tests := []struct {
		name, cert, key, err string
	}{
		{"ecdsa CA", okCert, okKey, ""},
		{"rsa CA refused", rsaCert, rsaKey, "want an ECDSA key"},
		{"not a CA", leafCert, leafKey, "not a CA"},
		{"missing file", filepath.Join(dir, "none.pem"), okKey, "no such file"},
		{"mismatched key", okCert, leafKey, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCA(tc.cert, tc.key)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.cert) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, tc.cert, tc.err)
			}
		})
	}
}
