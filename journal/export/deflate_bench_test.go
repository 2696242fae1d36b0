package export

import (
	stdflate "compress/flate"
	"crypto/sha256"
	"hash/crc32"
	"io"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"

	"vigie/journal"
	"vigie/journal/journaltest"
)

// BenchmarkDeflateSpeed measures the physical limit of an export on this
// machine: what compressing and hashing its text costs per megabyte, in
// CPU time of the benchmark's own thread (RUSAGE_THREAD), so the load of
// a shared machine weighs on no figure. The text is 100,000 records per
// stream formatted as the export formats them (CSV and JSON Lines). Each
// way is timed in turn on the same text, rounds alternating:
//
//   - klauspost BestSpeed, the export's choice (the baseline of the ratios);
//   - klauspost HuffmanOnly, no string matching: much faster, larger;
//   - compress/flate BestSpeed, the standard library;
//   - SHA-256 + CRC-32 alone, what every byte costs whatever the format.
//
// cpu-ms/MB for each, ratio-to-bestspeed, and the compressed share
// (out/in). Run: go test -run '^$' -bench DeflateSpeed -benchtime 3x ./journal/export/
func BenchmarkDeflateSpeed(b *testing.B) {
	text := exportText(100_000)
	type way struct {
		name  string
		write func(dst io.Writer, p []byte) error
	}
	ways := []way{
		{"bestspeed", func(dst io.Writer, p []byte) error {
			w, _ := flate.NewWriter(dst, flate.BestSpeed)
			w.Write(p)
			return w.Close()
		}},
		{"huffman", func(dst io.Writer, p []byte) error {
			w, _ := flate.NewWriter(dst, flate.HuffmanOnly)
			w.Write(p)
			return w.Close()
		}},
		{"stdlib", func(dst io.Writer, p []byte) error {
			w, _ := stdflate.NewWriter(dst, stdflate.BestSpeed)
			w.Write(p)
			return w.Close()
		}},
		{"hashes", func(dst io.Writer, p []byte) error {
			s, c := sha256.New(), crc32.NewIEEE()
			s.Write(p)
			c.Write(p)
			return nil
		}},
	}
	cpu := make([]time.Duration, len(ways))
	out := make([]int64, len(ways))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, w := range ways {
			var cw countWriter
			t0 := threadCPU()
			for _, p := range text {
				if err := w.write(&cw, p); err != nil {
					b.Fatal(err)
				}
			}
			cpu[k] += threadCPU() - t0
			out[k] = cw.n
		}
	}
	b.StopTimer()
	var in int64
	for _, p := range text {
		in += int64(len(p))
	}
	mb := float64(in) * float64(b.N) / 1e6
	for k, w := range ways {
		b.ReportMetric(float64(cpu[k].Milliseconds())/mb, w.name+"-cpu-ms/MB")
		b.ReportMetric(float64(cpu[k])/float64(cpu[0]), w.name+"-ratio")
		if k < 3 {
			b.ReportMetric(float64(out[k])/float64(in), w.name+"-out/in")
		}
	}
	b.ReportMetric(float64(in)/200_000, "text-B/record")
}

// exportText formats perStream records of each stream as an export does:
// the CSV and JSON Lines texts, one buffer per file.
func exportText(perStream int) [][]byte {
	var tf timeFormatter
	var files [][]byte
	for _, s := range streams {
		g := journaltest.New(uint64(s), uai, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))
		csv := csvHeader(s)
		var jsonl []byte
		var link journal.Hash
		for i := 0; i < perStream; i++ {
			r := g.Next(s)
			r.Seq = uint64(i + 1)
			link[i%len(link)] ^= byte(i)
			csv = tf.appendCSV(csv, &r)
			jsonl = tf.appendJSONOpen(jsonl, &r, 0, &link)
			jsonl = appendJSONEnd(jsonl, &link)
		}
		files = append(files, csv, jsonl)
	}
	return files
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// threadCPU is the calling thread's user and system CPU time.
func threadCPU() time.Duration {
	const rusageThread = 1
	var ru syscall.Rusage
	syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
