package dnsbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one running peer.
type server struct {
	cmd     *exec.Cmd
	port    int
	started time.Time
	// startup is the time from exec to the first correct answer.
	startup time.Duration
	stderr  bytes.Buffer
	// exited receives the process's exit.
	exited chan error
}

// start runs argv pinned to cpus (when set) and waits until it answers: a
// filtering peer must answer NXDOMAIN for probe (its list is loaded), the
// bare server any answer.
func start(ctx context.Context, argv []string, cpus string, nice int, port int, probe string, blocks bool) (*server, error) {
	argv = pinned(argv, cpus, nice)
	s := &server{port: port}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stderr = &s.stderr
	s.cmd.Stdout = &s.stderr
	s.cmd.Env = os.Environ()
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dnsbench: start %s: %w", argv[0], err)
	}
	exited := make(chan error, 1)
	s.exited = exited
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rcode, ok := ask(port, probe)
		if ok && (!blocks || rcode == 3) {
			s.startup = time.Since(s.started)
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("dnsbench: %s exited before answering: %v\n%s", argv[0], err, s.stderr.String())
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("dnsbench: %s did not answer within 2 minutes\n%s", argv[0], s.stderr.String())
		}
	}
}

// pinned prefixes argv with taskset (cpus) and nice: both exec the next
// program in place, so the server's PID stays the one started.
func pinned(argv []string, cpus string, nice int) []string {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	if nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(nice)}, argv...)
	}
	return argv
}

// ask sends one A query for name and returns the answer's rcode.
func ask(port int, name string) (int, bool) {
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return 0, false
	}
	defer c.Close()
	q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	q = append(q, 0, 0, 1, 0, 1)
	c.Write(q)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil || n < 12 || buf[0] != 0x12 || buf[1] != 0x34 {
		return 0, false
	}
	return int(buf[3] & 0xF), true
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// cpuTicks is the server's user+system CPU time in clock ticks.
func (s *server) cpuTicks() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.serverPID()))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

// rss is the server's resident memory in bytes.
func (s *server) rss() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.serverPID()))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// serverPID is the server's own PID: taskset execs it in place, so the
// PID is the same.
func (s *server) serverPID() int { return s.pid() }

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// stop terminates the server and waits for it.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// perf is what one dnsperf run reports.
type perf struct {
	Sent, Completed, Lost int64
	QPS                   float64
	// AvgLatency is in seconds.
	AvgLatency float64
	Elapsed    float64
}

var (
	rePerfCount = regexp.MustCompile(`Queries (sent|completed|lost):\s+(\d+)`)
	rePerfQPS   = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	rePerfLat   = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	rePerfRun   = regexp.MustCompile(`Run time \(s\):\s+([0-9.]+)`)
)

// parsePerf reads dnsperf's summary.
func parsePerf(out string) (perf, error) {
	var p perf
	for _, m := range rePerfCount.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		switch m[1] {
		case "sent":
			p.Sent = v
		case "completed":
			p.Completed = v
		case "lost":
			p.Lost = v
		}
	}
	m := rePerfQPS.FindStringSubmatch(out)
	if m == nil || p.Completed == 0 {
		return p, fmt.Errorf("dnsbench: no result in dnsperf output:\n%s", out)
	}
	p.QPS, _ = strconv.ParseFloat(m[1], 64)
	if m := rePerfLat.FindStringSubmatch(out); m != nil {
		p.AvgLatency, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := rePerfRun.FindStringSubmatch(out); m != nil {
		p.Elapsed, _ = strconv.ParseFloat(m[1], 64)
	}
	return p, nil
}

// dnsperf drives the server at port with the query file.
func dnsperf(ctx context.Context, cpus string, nice int, port int, file string, clients int, limit time.Duration, once bool) (perf, string, error) {
	args := []string{"dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", file, "-c", strconv.Itoa(clients), "-t", "2"}
	if once {
		args = append(args, "-n", "1")
	} else {
		args = append(args, "-l", strconv.Itoa(int(limit/time.Second)))
	}
	args = pinned(args, cpus, nice)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	line := strings.Join(args, " ")
	if err != nil {
		return perf{}, line, fmt.Errorf("dnsbench: %s: %w\n%s", line, err, out)
	}
	p, err := parsePerf(string(out))
	return p, line, err
}

// freePort finds a port free for UDP and TCP on loopback.
func freePort() (int, error) {
	for i := 0; i < 50; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, errors.New("dnsbench: no free port")
}
