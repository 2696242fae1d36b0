package controlplane_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vigie/controlplane"
	"vigie/keyfile"
)

// floodChildEnv makes the test binary run a control plane alone (see
// TestMain in replicas_test.go), so that the benchmark measures the control plane's own RSS.
const floodChildEnv = "VIGIE_LOGIN_FLOOD_CHILD"

// flooderEnv makes the test binary run the 60 flooding clients against
// the control plane at its URL, apart from the process measuring the
// health latencies.
const flooderEnv = "VIGIE_LOGIN_FLOODER"

// flooder sends failed logins from 60 clients, each from ever new made-up
// addresses (a botnet: the per-address limit never applies, only the
// hashing cap protects), until its stdin closes; then it prints how many
// answers of each status it got.
func flooder(base string) int {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 30 * time.Second}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int64{}
	var seq atomic.Int64
	for c := range 60 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := seq.Add(1)
				body := fmt.Sprintf(`{"login":"inconnu%d","password":"mauvais mot de passe"}`, n)
				req, _ := http.NewRequest("POST", base+"/api/v1/session", bytes.NewReader([]byte(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", c, n/250%250, n%250+1))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Println(codes[401], codes[429])
	return 0
}

// floodChild serves a control plane from dir, behind loopback as a trusted
// proxy (so that X-Forwarded-For names made-up clients), prints its address
// and runs until its stdin closes.
func floodChild(dir string) int {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := keyfile.Generate(dir + "/academie.key"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Open(ctx, controlplane.Config{DataDir: dir, TrustedProxies: []string{"127.0.0.0/8"}}, controlplane.Deps{Log: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Close()
	if _, err := controlplane.CreateAccount(ctx, cp.Store, cp.Auth, "bench", "rssi", "rssi", "", false, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := cp.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// BenchmarkLoginFlood: 60 clients (another process, see flooder) send
// failed logins as fast as they can for 10 s per iteration, while this
// process asks GET /api/v1/health every 5 ms and samples the control
// plane's RSS (a third process). The baseline is the
// same control plane idle, measured first in the same run. Run with
// -benchtime 1x.
func BenchmarkLoginFlood(b *testing.B) {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), floodChildEnv+"="+b.TempDir())
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		child.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("control plane: %v", err)
	}
	base := "http://" + strings.TrimSpace(addr)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 30 * time.Second}

	// probe measures health latencies and the child's RSS until stop.
	probe := func(stop <-chan struct{}) (lat []time.Duration, peakRSS int64) {
		for {
			select {
			case <-stop:
				return lat, peakRSS
			default:
			}
			t0 := time.Now()
			resp, err := client.Get(base + "/api/v1/health")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			peakRSS = max(peakRSS, rssKiB(child.Process.Pid))
			time.Sleep(5 * time.Millisecond)
		}
	}
	measure := func(d time.Duration, flood bool) (p99 time.Duration, rss int64, codes map[int]int64) {
		codes = map[int]int64{}
		var fl *exec.Cmd
		var flIn io.WriteCloser
		var flOut bytes.Buffer
		if flood {
			fl = exec.Command(os.Args[0], "-test.run=^$")
			fl.Env = append(os.Environ(), flooderEnv+"="+base)
			flIn, _ = fl.StdinPipe()
			fl.Stdout, fl.Stderr = &flOut, os.Stderr
			if err := fl.Start(); err != nil {
				b.Fatal(err)
			}
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		var lat []time.Duration
		go func() { lat, rss = probe(stop); close(done) }()
		time.Sleep(d)
		close(stop)
		<-done
		if flood {
			flIn.Close()
			fl.Wait()
			var c401, c429 int64
			fmt.Sscan(flOut.String(), &c401, &c429)
			codes[401], codes[429] = c401, c429
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100], rss, codes
	}
	idleP99, idleRSS, _ := measure(3*time.Second, false)
	b.ResetTimer()
	var p99 time.Duration
	var rss int64
	var codes map[int]int64
	for range b.N {
		p99, rss, codes = measure(10*time.Second, true)
	}
	b.StopTimer()
	load, _ := os.ReadFile("/proc/loadavg")
	total := codes[401] + codes[429]
	b.ReportMetric(float64(rss)/1024, "rss-peak-MB")
	b.ReportMetric(float64(idleRSS)/1024, "rss-idle-MB")
	b.ReportMetric(float64(p99.Microseconds())/1000, "health-p99-ms")
	b.ReportMetric(float64(idleP99.Microseconds())/1000, "health-p99-idle-ms")
	b.ReportMetric(float64(p99)/float64(idleP99), "p99-ratio")
	b.ReportMetric(float64(codes[401])/10, "hashed-logins/s")
	b.ReportMetric(float64(codes[429])/10, "refused-429/s")
	b.Logf("login flood, 60 clients x 10 s: %d answers (401 %d, 429 %d, other %v); control plane RSS %.0f MB peak (idle %.0f MB); health p99 %s (idle %s); load average %s",
		total, codes[401], codes[429], codes, float64(rss)/1024, float64(idleRSS)/1024, p99, idleP99, strings.TrimSpace(string(load)))
}

// rssKiB is the resident size of process pid (VmRSS, KiB).
func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
