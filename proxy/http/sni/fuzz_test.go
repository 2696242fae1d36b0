package sni

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the ClientHello reader: it must never
// panic, never read past its bound, and a hello it accepts must give back
// exactly the bytes it consumed.
func FuzzRead(f *testing.F) {
	f.Add(realHello(f, &tls.Config{ServerName: "www.example.fr", NextProtos: []string{"h2"}}))
	f.Add(realHello(f, &tls.Config{InsecureSkipVerify: true}))
	f.Add(fragment(realHello(f, &tls.Config{ServerName: "x.fr"}), 7))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 4096
		raw, h, err := Read(bytes.NewReader(in), max)
		if len(raw) > max+recordHeaderLen {
			t.Fatalf("read %d bytes, bound %d", len(raw), max)
		}
		if !bytes.HasPrefix(in, raw) {
			t.Fatal("raw is not a prefix of the input")
		}
		if err == nil && len(h.ServerName) > 255 {
			t.Fatalf("server name of %d bytes", len(h.ServerName))
		}
	})
}
