package httpproxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"vigie/proxy/http/sni"
)

// helloBytes is a real ClientHello as crypto/tls sends it.
func helloBytes(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	go func() {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		tls.Client(c, cfg).Handshake()
		c.Close()
	}()
	s.SetDeadline(time.Now().Add(2 * time.Second))
	defer s.Close()
	raw, _, err := sni.Read(s, sni.MaxHello)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FuzzPeekTunnel feeds arbitrary first bytes of a CONNECT tunnel (and an
// arbitrary CONNECT host) to the explicit proxy's ClientHello peek and
// SNI match: never a panic, never more than the bound read, every byte
// read given back for the replay, a canonical name, and a match only
// between a name and itself.
func FuzzPeekTunnel(f *testing.F) {
	f.Add("example.com", helloBytes(f, &tls.Config{ServerName: "Example.COM", InsecureSkipVerify: true}))
	f.Add("127.0.0.1", helloBytes(f, &tls.Config{ServerName: "site.test", NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true}))
	f.Add("example.com", helloBytes(f, &tls.Config{InsecureSkipVerify: true}))
	f.Add("example.com.", []byte("SSH-2.0-OpenSSH_9.6\r\n"))
	f.Add("[::1]", []byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 0})
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, host string, in []byte) {
		raw, name, err := peekTunnel(bytes.NewReader(in))
		if len(raw) > sni.MaxHello+5 {
			t.Fatalf("read %d bytes", len(raw))
		}
		if !bytes.HasPrefix(in, raw) {
			t.Fatal("the bytes to replay are not what the client sent")
		}
		if err != nil && name != "" {
			t.Fatalf("a name (%q) with an error (%v)", name, err)
		}
		if name != canonicalHost(name) || strings.HasSuffix(name, ".") {
			t.Fatalf("name %q is not canonical", name)
		}
		if sniMatches(host, name) && canonicalHost(host) != name {
			t.Fatalf("%q matched %q", name, host)
		}
		if name == "" && sniMatches(host, name) {
			t.Fatal("no name matched a host")
		}
	})
}
