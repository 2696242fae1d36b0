package sni

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// realHello records the ClientHello crypto/tls sends for cfg.
func realHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	go func() {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		tls.Client(c, cfg).Handshake()
		c.Close()
	}()
	s.SetDeadline(time.Now().Add(2 * time.Second))
	var buf bytes.Buffer
	// The client waits for the server after its hello: read what came.
	tmp := make([]byte, 65536)
	for {
		n, err := s.Read(tmp)
		buf.Write(tmp[:n])
		if err != nil {
			break
		}
		if _, _, err := Read(bytes.NewReader(buf.Bytes()), 0); err == nil {
			break
		}
	}
	s.Close()
	return buf.Bytes()
}

// fragment re-frames the handshake payload of one-record hello into
// records of at most size bytes, as some middleboxes and clients do.
func fragment(hello []byte, size int) []byte {
	payload := hello[5:]
	var out []byte
	for len(payload) > 0 {
		n := min(size, len(payload))
		out = append(out, 22, 3, 1, byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
	}
	return out
}

func TestRead(t *testing.T) {
	withSNI := realHello(t, &tls.Config{ServerName: "www.example.fr", NextProtos: []string{"h2", "http/1.1"}})
	noSNI := realHello(t, &tls.Config{InsecureSkipVerify: true})
	tests := []struct {
		name    string
		in      []byte
		sni     string
		alpn    int
		wantErr error
		errText string
	}{
		{name: "real hello with sni", in: withSNI, sni: "www.example.fr", alpn: 2},
		{name: "real hello without sni", in: noSNI, sni: ""},
		{name: "fragmented in 100-byte records", in: fragment(withSNI, 100), sni: "www.example.fr", alpn: 2},
		{name: "fragmented in 1-byte records", in: fragment(withSNI, 1), sni: "www.example.fr", alpn: 2},
		{name: "plain http", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), wantErr: ErrNotTLS},
		{name: "ssl2-like version", in: []byte{22, 2, 0, 0, 5, 1, 2, 3, 4, 5}, wantErr: ErrNotTLS},
		{name: "empty", in: nil, errText: "closed before any byte"},
		{name: "truncated header", in: []byte{22, 3}, errText: "record header"},
		{name: "truncated body", in: withSNI[:40], errText: "record body"},
		{name: "zero-length record", in: []byte{22, 3, 1, 0, 0}, errText: "out of range"},
		{name: "oversized record", in: []byte{22, 3, 1, 0xff, 0xff}, errText: "out of range"},
		{name: "not a client hello", in: []byte{22, 3, 1, 0, 4, 2, 0, 0, 0}, errText: "not client_hello"},
		{name: "hello claiming 16 MiB", in: []byte{22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, errText: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, h, err := Read(bytes.NewReader(tc.in), 0)
			if tc.wantErr != nil || tc.errText != "" {
				if err == nil {
					t.Fatalf("no error, hello %+v", h)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				if tc.errText != "" && !bytes.Contains([]byte(err.Error()), []byte(tc.errText)) {
					t.Fatalf("error %q does not say %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ServerName != tc.sni || len(h.ALPN) != tc.alpn {
				t.Fatalf("got %+v, want sni %q and %d alpn", h, tc.sni, tc.alpn)
			}
			if !bytes.Equal(raw, tc.in) {
				t.Fatalf("raw bytes differ from input: %d vs %d", len(raw), len(tc.in))
			}
		})
	}
}

// TestReadStopsAtHello checks that Read consumes the hello and nothing
// after it, so the bytes that follow stay on the connection for the splice.
func TestReadStopsAtHello(t *testing.T) {
	hello := realHello(t, &tls.Config{ServerName: "a.example"})
	r := bytes.NewReader(append(append([]byte(nil), hello...), "tail"...))
	raw, h, err := Read(r, 0)
	if err != nil || h.ServerName != "a.example" || len(raw) != len(hello) {
		t.Fatalf("raw %d bytes, hello %+v, err %v", len(raw), h, err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "tail" {
		t.Fatalf("left %q on the reader", rest)
	}
}

func TestReadLimit(t *testing.T) {
	hello := realHello(t, &tls.Config{ServerName: "a.example"})
	if _, _, err := Read(bytes.NewReader(hello), 100); err == nil {
		t.Fatal("a hello over the limit was accepted")
	}
}

func TestParseRejectsBadServerName(t *testing.T) {
	hello := realHello(t, &tls.Config{ServerName: "abc.example"})
	i := bytes.Index(hello, []byte("abc.example"))
	for _, b := range []byte{0, ' ', 0x80, '\n'} {
		bad := append([]byte(nil), hello...)
		bad[i+1] = b
		if _, h, err := Read(bytes.NewReader(bad), 0); err == nil {
			t.Errorf("byte 0x%02x accepted: %+v", b, h)
		}
	}
}

func TestAlertIsAccessDenied(t *testing.T) {
	c, s := net.Pipe()
	go func() {
		Read(s, 0)
		s.Write(Alert)
		s.Close()
	}()
	err := tls.Client(c, &tls.Config{ServerName: "blocked.example"}).Handshake()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("access denied")) {
		t.Fatalf("client saw %v, want an access denied alert", err)
	}
}

func BenchmarkRead(b *testing.B) {
	hello := realHello(b, &tls.Config{ServerName: "www.example.fr", NextProtos: []string{"h2", "http/1.1"}})
	b.ReportAllocs()
	b.SetBytes(int64(len(hello)))
	for b.Loop() {
		if _, _, err := Read(bytes.NewReader(hello), 0); err != nil {
			b.Fatal(err)
		}
	}
}
