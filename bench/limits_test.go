package main

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// The physical limits of bench/README.md: what the kernel charges for the
// cheapest loopback exchange, in CPU time of the whole process (user +
// system, both ends in process), so the load of a shared machine counts
// less than in wall time. Run:
//
//	go test -run '^$' -bench 'Loopback' -benchtime 200000x -count 3 ./bench/

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoopbackTCPRoundTrip: one byte there and back on a loopback
// TCP connection, the floor under a proxied keep-alive request (which
// makes two such round trips, client and origin).
func BenchmarkLoopbackTCPRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := []byte{1}
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/roundtrip")
}

// BenchmarkLoopbackUDPBatch: 64-byte datagrams sent with sendmmsg and
// received with recvmmsg in batches of 32 (what the DNS server does),
// against one at a time: the kernel's cost per datagram, both ways.
func BenchmarkLoopbackUDPBatch(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run("batch="+itoa(batch), func(b *testing.B) {
			rc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer rc.Close()
			sc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			rcv, snd := ipv4.NewPacketConn(rc), ipv4.NewPacketConn(sc)
			to := rc.LocalAddr()
			out := make([]ipv4.Message, batch)
			in := make([]ipv4.Message, batch)
			for i := range out {
				out[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 64)}, Addr: to}
				in[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 512)}}
			}
			cpu0 := processCPU()
			b.ResetTimer()
			got := 0
			for got < b.N {
				n := min(batch, b.N-got)
				// The receiver drains what was sent before the next
				// batch, so the socket buffer never overflows.
				if _, err := snd.WriteBatch(out[:n], 0); err != nil {
					b.Fatal(err)
				}
				for k := 0; k < n; {
					m, err := rcv.ReadBatch(in[:n-k], 0)
					if err != nil {
						b.Fatal(err)
					}
					k += m
				}
				got += n
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/datagram")
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
