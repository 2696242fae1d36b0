package httpbench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// blockedCategories are the UT1 categories of the demo "eleves" profile:
// every peer filters with the same lists Vigie loads.
var blockedCategories = []string{"adult", "agressif", "dating", "drogue", "gambling", "hacking", "malware", "phishing",
	"redirector", "vpn", "doh", "sect", "social_networks", "games", "cryptojacking", "warez", "shortener"}

// listFiles copies the blocked categories' domains and urls files into
// dir/<category>/ and returns the categories copied.
func (e *benchEnv) listFiles(dir string) ([]string, error) {
	var cats []string
	for _, c := range append(blockedCategories, "adult-top1m") {
		src := filepath.Join(e.lists, "ut1", c)
		if c == "adult-top1m" {
			src = filepath.Join(e.lists, "adult-top1m")
		}
		copied := false
		for _, f := range []string{"domains", "urls"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				continue
			}
			if err := os.MkdirAll(filepath.Join(dir, c), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, c, f), b, 0o644); err != nil {
				return nil, err
			}
			copied = true
		}
		if copied {
			cats = append(cats, c)
		}
	}
	return cats, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (e *benchEnv) startDaemon(ctx context.Context, name, addr string, cmdline ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = &prefixWriter{w: e.o.Log, prefix: "  [" + name + "] "}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, addr: addr, root: cmd.Process.Pid, stop: func() { stopGroup(cmd) }}
	deadline := time.Now().Add(120 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("%s did not listen on %s", name, addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startSquid runs Squid with no cache (the origin's answers are
// uncacheable anyway), no access log, one worker; with squidGuard as its
// URL rewriter (16 children, as Debian's examples) when guard is set.
func (e *benchEnv) startSquid(ctx context.Context, guard bool) (*proc, error) {
	dir := filepath.Join(e.work, "squid")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := []string{
		"http_port " + addr,
		"pid_filename " + filepath.Join(dir, "squid.pid"),
		"cache_log " + filepath.Join(dir, "cache.log"),
		"access_log none",
		"cache deny all",
		"cache_mem 8 MB",
		"http_access allow all",
		"coredump_dir " + dir,
		"shutdown_lifetime 1 seconds",
		"max_filedescriptors 8192",
		"netdb_filename none",
		"visible_hostname vigie-bench",
		"forwarded_for delete",
		"via off",
	}
	if guard {
		sg, err := e.squidGuardConf(filepath.Join(dir, "sg"))
		if err != nil {
			return nil, err
		}
		conf = append(conf,
			"url_rewrite_program /usr/bin/squidGuard -c "+sg,
			"url_rewrite_children 16 startup=16 idle=4 concurrency=0",
			"url_rewrite_bypass off")
	}
	path := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	exec.Command("chown", "-R", "proxy:proxy", dir).Run()
	name := "squid"
	if guard {
		name = "squid+squidguard"
	}
	return e.startDaemon(ctx, name, addr, "squid", "-N", "-f", path)
}

// squidGuardConf writes squidGuard's configuration and compiles its
// databases from the same UT1 lists.
func (e *benchEnv) squidGuardConf(dir string) (string, error) {
	db := filepath.Join(dir, "db")
	cats, err := e.listFiles(db)
	if err != nil {
		return "", err
	}
	os.MkdirAll(filepath.Join(dir, "log"), 0o755)
	var b strings.Builder
	fmt.Fprintf(&b, "dbhome %s\nlogdir %s\n\n", db, filepath.Join(dir, "log"))
	var pass []string
	for _, c := range cats {
		name := strings.ReplaceAll(c, "-", "_")
		fmt.Fprintf(&b, "dest %s {\n", name)
		if _, err := os.Stat(filepath.Join(db, c, "domains")); err == nil {
			fmt.Fprintf(&b, "  domainlist %s/domains\n", c)
		}
		if _, err := os.Stat(filepath.Join(db, c, "urls")); err == nil {
			fmt.Fprintf(&b, "  urllist %s/urls\n", c)
		}
		b.WriteString("}\n")
		pass = append(pass, "!"+name)
	}
	fmt.Fprintf(&b, "\nacl {\n  default {\n    pass %s all\n    redirect http://127.0.0.1/bloque?url=%%u\n  }\n}\n", strings.Join(pass, " "))
	conf := filepath.Join(dir, "squidGuard.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("squidGuard", "-c", conf, "-C", "all").CombinedOutput(); err != nil {
		return "", fmt.Errorf("squidGuard -C all: %v\n%s", err, out)
	}
	exec.Command("chown", "-R", "proxy:proxy", dir).Run()
	return conf, nil
}

// startE2Guardian runs E2Guardian with Debian's configuration, the UT1
// domains added to its banned site list, logging off; nophrase turns
// weighted phrase filtering (its content scan) off.
func (e *benchEnv) startE2Guardian(ctx context.Context, nophrase bool) (*proc, error) {
	name := "e2guardian"
	if nophrase {
		name = "e2guardian-nophrase"
	}
	// Each variant has its own directory and ports: interleaved runs
	// keep both alive at once.
	dir := filepath.Join(e.work, name)
	os.RemoveAll(dir)
	if out, err := exec.Command("cp", "-r", "/etc/e2guardian", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy e2guardian config: %v\n%s", err, out)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	// Debian's default transparent HTTPS port (8443) would be taken by
	// whichever variant started first.
	tlsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	lists := filepath.Join(e.work, "e2g-lists")
	cats, err := e.listFiles(lists)
	if err != nil {
		return nil, err
	}
	// Rewrite every /etc/e2guardian path to the copy.
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/etc/e2guardian", dir)), 0o644)
	})
	if err != nil {
		return nil, err
	}
	var inc strings.Builder
	for _, c := range cats {
		if _, err := os.Stat(filepath.Join(lists, c, "domains")); err == nil {
			fmt.Fprintf(&inc, ".Include<%s>\n", filepath.Join(lists, c, "domains"))
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "lists", "bannedsitelist"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	f.WriteString("\n" + inc.String())
	f.Close()
	mainConf := filepath.Join(dir, "e2guardian.conf")
	b, err := os.ReadFile(mainConf)
	if err != nil {
		return nil, err
	}
	set := map[string]string{
		"filterports": port, "transparenthttpsport": tlsPort, "filterip": "127.0.0.1", "nodaemon": "on", "loglevel": "0",
		"pidfilename": "'" + filepath.Join(dir, "e2guardian.pid") + "'",
		"loglocation": "'" + filepath.Join(dir, "access.log") + "'",
	}
	if nophrase {
		set["weightedphrasemode"] = "0"
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		key := strings.TrimSpace(strings.SplitN(strings.TrimLeft(l, "#"), "=", 2)[0])
		if _, ok := set[key]; ok && strings.Contains(l, "=") {
			continue
		}
		lines = append(lines, l)
	}
	for k, v := range set {
		lines = append(lines, k+" = "+v)
	}
	if err := os.WriteFile(mainConf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	exec.Command("chmod", "-R", "a+rX", dir, lists).Run()
	exec.Command("chown", "-R", "e2guardian:e2guardian", dir).Run()
	return e.startDaemon(ctx, name, addr, "e2guardian", "-N", "-c", mainConf)
}
