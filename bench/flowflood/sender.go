package flowflood

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/net/ipv4"
)

// senderEnv carries a sender's orders (JSON) to a re-executed binary.
const senderEnv = "VIGIE_FLOWFLOOD_SENDER"

// senderArgs are one sender's orders.
type senderArgs struct {
	// Rate is the target in packets (new flows) per second; 0 sends as
	// fast as the socket takes them.
	Rate float64 `json:"rate"`
	// Count packets, flows First to First+Count-1 (see tuple).
	Count int    `json:"count"`
	First uint64 `json:"first"`
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Batch int    `json:"batch"`
}

// senderOut is what a sender reports on its standard output.
type senderOut struct {
	Sent  int    `json:"sent"`
	Start int64  `json:"start_unix_ns"`
	End   int64  `json:"end_unix_ns"`
	Err   string `json:"err,omitempty"`
}

// IsSender says whether this process was started as a flood sender: a
// binary that runs Run (a test binary's TestMain, the command) must then
// call SenderMain and exit with its code.
func IsSender() bool { return os.Getenv(senderEnv) != "" }

// SenderMain sends the flood described by the environment and prints
// what it sent as JSON.
func SenderMain() int {
	var a senderArgs
	if err := json.Unmarshal([]byte(os.Getenv(senderEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "flowflood: sender orders:", err)
		return 2
	}
	out, err := send(a)
	if err != nil {
		out.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(out)
	if err != nil {
		return 1
	}
	return 0
}

// tuple is flow g's ports: 64,000 source ports (1024–65023) times 65,534
// destination ports (1–65534) give four billion distinct 5-tuples, so
// every packet of every step of a run is a new flow for conntrack.
func tuple(g uint64) (src, dst uint16) {
	return uint16(1024 + g%64000), uint16(1 + (g/64000)%65534)
}

// send writes a.Count UDP datagrams, each from its own source port to its
// own destination port, on a raw IPPROTO_UDP socket (the kernel adds the
// IP header; the UDP checksum is left at zero, "none", which IPv4 and
// conntrack accept) in sendmmsg batches, paced to a.Rate.
func send(a senderArgs) (senderOut, error) {
	// One thread sends; a second would only contend for the socket.
	runtime.GOMAXPROCS(1)
	var out senderOut
	if a.Batch <= 0 {
		a.Batch = 64
	}
	c, err := net.ListenPacket("ip4:udp", a.Src)
	if err != nil {
		return out, fmt.Errorf("flowflood: raw socket on %s: %w", a.Src, err)
	}
	defer c.Close()
	dst := &net.IPAddr{IP: net.ParseIP(a.Dst)}
	if dst.IP == nil {
		return out, fmt.Errorf("flowflood: destination %q is not an address", a.Dst)
	}
	pc := ipv4.NewPacketConn(c)
	msgs := make([]ipv4.Message, a.Batch)
	for i := range msgs {
		b := make([]byte, 9)
		binary.BigEndian.PutUint16(b[4:], 9) // UDP length: header + one byte
		msgs[i] = ipv4.Message{Buffers: [][]byte{b}, Addr: dst}
	}
	start := time.Now()
	out.Start = start.UnixNano()
	failures := 0
	for out.Sent < a.Count {
		n := min(a.Batch, a.Count-out.Sent)
		for i := 0; i < n; i++ {
			s, d := tuple(a.First + uint64(out.Sent+i))
			b := msgs[i].Buffers[0]
			binary.BigEndian.PutUint16(b[0:], s)
			binary.BigEndian.PutUint16(b[2:], d)
		}
		k, err := pc.WriteBatch(msgs[:n], 0)
		out.Sent += max(k, 0)
		if err != nil {
			// ENOBUFS from a full device queue: back off briefly; a
			// socket that keeps failing ends the sender.
			if failures++; failures > 1000 {
				out.End = time.Now().UnixNano()
				return out, fmt.Errorf("flowflood: sendmmsg after %d datagrams: %w", out.Sent, err)
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if a.Rate > 0 {
			due := start.Add(time.Duration(float64(out.Sent) / a.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
	}
	out.End = time.Now().UnixNano()
	return out, nil
}
