package testlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"vigie/keyfile"
	"vigie/rules"
	"vigie/rules/policy"
)

//go:embed policy.yaml
var policyYAML []byte

// Policy returns the lab policy reading its lists from lists (a folder
// holding ut1/ and adult-top1m/).
func Policy(lists string) (*policy.Policy, error) {
	p, err := policy.Parse(policyYAML, "testlab/policy.yaml")
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(lists)
	if err != nil {
		return nil, fmt.Errorf("testlab: %w", err)
	}
	p.Dir = abs
	return p, nil
}

// Edge ports: where the edge's listeners are and the firewall redirects.
const (
	DNSPort   = 53
	HTTPPort  = 3129
	HTTPSPort = 3130
)

// prepareEdge creates the académie key, signs the first bundle from the
// lab policy and writes the edge configuration.
func (l *Lab) prepareEdge() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("testlab: key: %w", err)
	}
	l.Key = priv
	l.PublicKeyPath = filepath.Join(l.Dir, "academie.pub")
	if err := keyfile.WritePublic(l.PublicKeyPath, priv.Public().(ed25519.PublicKey)); err != nil {
		return err
	}
	p, err := Policy(l.opts.Lists)
	if err != nil {
		return err
	}
	if _, err := l.Publish(p); err != nil {
		return err
	}
	return l.WriteEdgeConfig(nil)
}

// BundlePath is the bundle file the edge starts from.
func (l *Lab) BundlePath() string { return filepath.Join(l.Dir, "policy.bundle") }

// ConfigPath is the edge's configuration file.
func (l *Lab) ConfigPath() string { return filepath.Join(l.Dir, "edge.yaml") }

// Publish compiles p, signs it with the lab key under the next serial and
// writes it where the edge starts from. It returns the bundle.
func (l *Lab) Publish(p *policy.Policy) ([]byte, error) {
	rs, _, err := rules.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("testlab: compile lab policy: %w", err)
	}
	l.mu.Lock()
	l.serial++
	serial := l.serial
	l.mu.Unlock()
	data, err := rules.EncodeBundle(rs, serial, time.Now(), l.Key)
	if err != nil {
		return nil, fmt.Errorf("testlab: sign bundle: %w", err)
	}
	if err := os.WriteFile(l.BundlePath(), data, 0o644); err != nil {
		return nil, fmt.Errorf("testlab: %w", err)
	}
	if l.CP != nil {
		l.CP.Offer(serial, data)
	}
	return data, nil
}

// NextSerial reserves the next serial without publishing (for a scenario
// that hands the edge a bundle of its own making).
func (l *Lab) NextSerial() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.serial++
	return l.serial
}

// Serial is the serial of the last published bundle.
func (l *Lab) Serial() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.serial
}

// EdgeConfig is the lab edge's configuration before extra sections.
func (l *Lab) EdgeConfig() map[string]any {
	return map[string]any{
		"uai":          UAI,
		"state_dir":    filepath.Join(l.Dir, "edge-state"),
		"public_key":   l.PublicKeyPath,
		"bundle":       l.BundlePath(),
		"controlplane": l.CP.ControlPlaneSection(),
		"firewall": map[string]any{
			"enabled":       true,
			"dns_port":      DNSPort,
			"http_port":     HTTPPort,
			"https_port":    HTTPSPort,
			"wan_interface": EdgeWANIf,
			"masquerade":    true,
		},
	}
}

// WriteEdgeConfig writes EdgeConfig with sections replaced or added (a
// nil value removes a section): what a scenario tweaks before StartEdge.
func (l *Lab) WriteEdgeConfig(sections map[string]any) error {
	cfg := l.EdgeConfig()
	for k, v := range extraSections() {
		cfg[k] = v
	}
	for k, v := range sections {
		if v == nil {
			delete(cfg, k)
			continue
		}
		cfg[k] = v
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("testlab: edge config: %w", err)
	}
	return os.WriteFile(l.ConfigPath(), data, 0o644)
}

// edgeProc is a running "vigie edge" inside the edge namespace.
type edgeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// StartEdge runs the edge binary in the edge namespace and waits until it
// says it is running (its policy, firewall included, is in force).
func (l *Lab) StartEdge(ctx context.Context) error {
	l.mu.Lock()
	if l.edge != nil {
		l.mu.Unlock()
		return errors.New("testlab: the edge is already running")
	}
	l.mu.Unlock()
	if l.opts.Binary == "" {
		return errors.New("testlab: no vigie binary to run as the edge")
	}
	logf, err := os.OpenFile(filepath.Join(l.Dir, "edge.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testlab: %w", err)
	}
	// ip netns exec execs the binary: the process we start is the edge.
	cmd := exec.Command("ip", "netns", "exec", l.Edge.Name, l.opts.Binary, "edge", "--config", l.ConfigPath())
	var outputs []io.Writer = []io.Writer{logf}
	if l.opts.EdgeLog != nil {
		outputs = append(outputs, l.opts.EdgeLog)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(append(outputs, pw)...)
	cmd.Stderr = io.MultiWriter(outputs...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("testlab: start edge: %w", err)
	}
	p := &edgeProc{cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), " running (policy serial ") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	l.mu.Lock()
	l.edge = p
	l.mu.Unlock()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-p.done:
		l.mu.Lock()
		l.edge = nil
		l.mu.Unlock()
		logf.Close()
		return fmt.Errorf("testlab: the edge exited at start (%v):\n%s", p.err, l.EdgeLog())
	case <-timer.C:
		err = fmt.Errorf("testlab: the edge did not come up in 60 s:\n%s", l.EdgeLog())
	case <-ctx.Done():
		err = ctx.Err()
	}
	l.StopEdge()
	return err
}

// StopEdge stops the edge (SIGTERM, then SIGKILL after 10 s).
func (l *Lab) StopEdge() error {
	l.mu.Lock()
	p := l.edge
	l.edge = nil
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop()
}

func (p *edgeProc) stop() error {
	defer p.log.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return errors.New("testlab: the edge ignored SIGTERM for 10 s")
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return p.err
	}
	return nil
}

// EdgeRunning reports whether the edge process is alive.
func (l *Lab) EdgeRunning() bool {
	l.mu.Lock()
	p := l.edge
	l.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// EdgeLog returns the edge's output so far (its last 8 KiB).
func (l *Lab) EdgeLog() string {
	data, _ := os.ReadFile(filepath.Join(l.Dir, "edge.log"))
	if len(data) > 8<<10 {
		data = data[len(data)-8<<10:]
	}
	return string(data)
}

// killNamespace kills every process left in a namespace.
func killNamespace(name string) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return
	}
	for _, f := range bytes.Fields(out) {
		if pid, err := strconv.Atoi(string(f)); err == nil && pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
