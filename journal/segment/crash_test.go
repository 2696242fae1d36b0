package segment

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest"
)

// The crash test re-executes the test binary as a journal writer: this is
// the writer's side.
const writerEnv = "VIGIE_JOURNAL_CRASH_WRITER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(writerEnv); dir != "" {
		runWriter(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashOptions(dir string) Options {
	opt := testOptions(dir)
	opt.CommitInterval = 2 * time.Millisecond
	opt.SegmentRecords = 30000 // seal often, so the kill lands during sealing too
	opt.MinFreeBytes = -1
	return opt
}

// runWriter appends from four goroutines as fast as it can and prints,
// after each change, the durable sequence numbers it has been told about:
// those records were acknowledged to the data plane and must survive.
func runWriter(dir string) {
	j, err := OpenJournal(crashOptions(dir))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(30 * time.Second) // bounded even if nobody kills us
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := journaltest.New(uint64(g)+uint64(time.Now().UnixNano()), uai, time.Now())
			s := journal.Connexions
			if g%2 == 1 {
				s = journal.Navigation
			}
			for i := 0; time.Now().Before(deadline); i++ {
				r := gen.Next(s)
				j.Append(&r)
				if i%64 == 0 {
					time.Sleep(50 * time.Microsecond) // sustained, not a burst
				}
			}
		}()
	}
	var lastC, lastN uint64
	for time.Now().Before(deadline) {
		c, n := j.Log(journal.Connexions).Durable(), j.Log(journal.Navigation).Durable()
		if c != lastC || n != lastN {
			fmt.Fprintf(out, "durable %d %d\n", c, n)
			out.Flush()
			lastC, lastN = c, n
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	j.Close()
}

func TestKill9DuringSustainedWrites(t *testing.T) {
	dir := t.TempDir()
	var acked [3]uint64 // by stream
	var total uint64
	for round := 1; round <= 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		start := time.Now()
		for sc.Scan() {
			line := sc.Text()
			var c, n uint64
			if _, err := fmt.Sscanf(line, "durable %d %d", &c, &n); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("writer said %q", line)
			}
			if c < acked[journal.Connexions] || n < acked[journal.Navigation] {
				t.Fatalf("durable went backwards: %d %d after %v", c, n, acked)
			}
			acked[journal.Connexions], acked[journal.Navigation] = c, n
			// Kill well into sustained writing, at a moment nobody chose.
			if time.Since(start) > 1200*time.Millisecond+time.Duration(round)*137*time.Millisecond {
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		t.Logf("round %d: killed after %v", round, time.Since(start))
		openStart := time.Now()
		ropt := crashOptions(dir)
		ropt.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
		j, err := OpenJournal(ropt)
		t.Logf("round %d: reopened in %v", round, time.Since(openStart))
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
			l := j.Log(s)
			rec := l.Recovery()
			n := uint64(0)
			res, err := l.Verify(func(r *journal.Record) error {
				n++
				if r.Seq != n {
					return fmt.Errorf("record %d has sequence %d", n, r.Seq)
				}
				if r.UAI != uai || r.Stream != s {
					return fmt.Errorf("record %d: %+v", n, r)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("round %d %s: chain does not verify after kill -9: %v", round, s, err)
			}
			if len(res.Breaks) != 0 {
				t.Fatalf("round %d %s: breaks %v, quarantined %v", round, s, res.Breaks, rec.Quarantined)
			}
			if len(rec.Quarantined) != 0 || len(rec.Problems) != 0 {
				// kill -9 loses nothing written before it (the page
				// cache survives): recovery truncates a torn tail and
				// keeps the rest. A quarantine here is a recovery or
				// writer bug (it was a rotation killed between creating
				// the next segment and writing its header), never
				// damage: the reason is in the log lines above.
				t.Fatalf("round %d %s: undamaged journal quarantined after kill -9: %v, problems %v", round, s, rec.Quarantined, rec.Problems)
			}
			if res.LastSeq < acked[s] {
				t.Fatalf("round %d %s: %d records acknowledged durable, only %d after restart", round, s, acked[s], res.LastSeq)
			}
			t.Logf("round %d %s: acknowledged %d, recovered %d (%d more, unacknowledged but complete), torn tail %d bytes, %d segments, resealed %d",
				round, s, acked[s], res.LastSeq, res.LastSeq-acked[s], rec.TornBytes, res.Segments, rec.Resealed)
			if round == 3 {
				total += res.LastSeq
			}
		}
		// The reopened journal takes writes again before the next kill.
		r := journaltest.New(9, uai, time.Now()).Next(journal.Navigation)
		j.Append(&r)
		if err := j.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		acked[journal.Navigation]++
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Far fewer than an idle machine writes (about 100,000 per round), so
	// that a loaded CI or -race still passes, but enough to be sustained.
	if total < 5000 {
		t.Fatalf("only %d records written over three rounds: the writer did not sustain writes", total)
	}
	// The writer's files are all accounted for: no stray temp files.
	for _, s := range []string{"connexions", "navigation"} {
		ents, _ := os.ReadDir(dir + "/" + s)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasSuffix(e.Name(), ".corrupt") {
				t.Errorf("%s/%s left behind", s, e.Name())
			}
		}
	}
}

// testWriter sends the recovery's log lines to the test log, so that a
// failure says which check decided what.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
