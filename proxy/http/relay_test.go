package httpproxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"vigie/journal"
)

// TestRelayFraming checks what the plain-HTTP relay keeps of the origin's
// framing: the length of a sized body, trailers, and the pace of a body
// of unknown length.
func TestRelayFraming(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/sized", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("v"), n))
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Somme")
		io.WriteString(w, "corps")
		w.Header().Set("X-Somme", "42")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "premier\n")
		w.(http.Flusher).Flush()
		// The rest only once the client has read the first line: a relay
		// that holds the first piece back shows "expire" instead.
		select {
		case <-release:
			io.WriteString(w, "fin\n")
		case <-time.After(30 * time.Second):
			io.WriteString(w, "expire\n")
		}
	})
	o := httptest.NewServer(mux)
	t.Cleanup(o.Close)
	base := "http://site.test:" + port(o.Listener.Addr().String())
	c := e.client("", nil)

	t.Run("sized body keeps its length", func(t *testing.T) {
		for _, n := range []int{0, 1 << 10, 100 << 10} {
			resp, err := c.Get(base + "/sized?n=" + strconv.Itoa(n))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(body) != n {
				t.Fatalf("n=%d: read %d bytes, err %v", n, len(body), err)
			}
			if resp.ContentLength != int64(n) || len(resp.TransferEncoding) != 0 {
				t.Errorf("n=%d: content length %d, transfer encoding %v: the origin's length was dropped", n, resp.ContentLength, resp.TransferEncoding)
			}
		}
		// The record is written when the relay closes the body, which
		// may come after the client has read it: wait for all three.
		recs := e.records(journal.Navigation, 3)
		if len(recs) != 3 {
			t.Fatalf("%d navigation records, want 3", len(recs))
		}
		var in []int64
		for _, r := range recs {
			if r.Status != 200 {
				t.Errorf("record with status %d", r.Status)
			}
			in = append(in, r.BytesIn)
		}
		slices.Sort(in)
		if !slices.Equal(in, []int64{0, 1 << 10, 100 << 10}) {
			t.Errorf("records' bytes in %v, want the three bodies", in)
		}
	})
	t.Run("trailers pass", func(t *testing.T) {
		resp, err := c.Get(base + "/trailer")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "corps" || resp.Trailer.Get("X-Somme") != "42" {
			t.Errorf("body %q, trailer %v", body, resp.Trailer)
		}
	})
	t.Run("body of unknown length is not held back", func(t *testing.T) {
		resp, err := c.Get(base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		if err != nil || first != "premier\n" {
			t.Fatalf("first line %q, err %v", first, err)
		}
		close(release)
		rest, _ := io.ReadAll(br)
		if string(rest) != "fin\n" {
			t.Errorf("rest %q: the first piece waited for the end of the body", rest)
		}
	})
}

// TestRelayWebSocketEarlyFrame sends a WebSocket frame in the same write
// as its upgrade request: the server has read it along with the request,
// and the relay must pass it on after the 101, not drop it.
func TestRelayWebSocketEarlyFrame(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	host := "site.test:" + port(o.Listener.Addr().String())
	c, err := net.Dial("tcp", e.explicit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	msg := "tôt"
	mask := [4]byte{9, 8, 7, 6}
	frame := append([]byte{0x81, 0x80 | byte(len(msg))}, mask[:]...)
	for i := range len(msg) {
		frame = append(frame, msg[i]^mask[i%4])
	}
	req := fmt.Sprintf("GET http://%s/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: http://%s\r\n\r\n", host, host, key, host)
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		t.Fatalf("no echo of the early frame: %v", err)
	}
	body := make([]byte, int(hdr[1]&0x7f))
	if _, err := io.ReadFull(br, body); err != nil || string(body) != msg {
		t.Fatalf("echo %q, %v; want %q", body, err, msg)
	}
}
