package dnsbench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"vigie/demo"
	"vigie/keyfile"
	"vigie/rules"
	"vigie/rules/policy"
)

// Peer names.
const (
	PeerUnbound = "unbound"
	PeerDnsmasq = "dnsmasq"
	// PeerVigie is Vigie as an edge runs it: durable journal on a real
	// disk, metrics, rate limiter, the demo's élèves settings (SafeSearch,
	// YouTube strict, a lunch window). The headline.
	PeerVigie = "vigie"
	// PeerVigieNoJournal is the same with the journal off, like the
	// peers' logs: the second row, what the journal costs.
	PeerVigieNoJournal = "vigie-nojournal"
	// PeerVigieBatch1 is Vigie reading and answering one datagram per
	// system call (UDPBatch 1): it shows what recvmmsg/sendmmsg bring.
	PeerVigieBatch1 = "vigie-batch1"
	// PeerBare is a bare miekg/dns server answering one fixed record: what
	// the DNS library costs before any filtering, the ceiling of a Go server.
	PeerBare = "miekg-bare"
	// PeerEcho sends each query back as its own empty answer, reading and
	// writing in recvmmsg/sendmmsg batches of 32 like Vigie: no server
	// can spend less per query on this machine (the kernel's floor).
	PeerEcho = "echo"
	// PeerVigieBase is PeerVigie run from another build of vigie-dns
	// (Options.BaseBin, typically the tree before a change): the change's
	// A/B in the same minutes as the tree's own runs.
	PeerVigieBase = "vigie-base"
	// PeerEchoBatch1 is the echo one datagram per system call.
	PeerEchoBatch1 = "echo-batch1"
)

// peer knows how to configure and start one server.
type peer struct {
	name string
	// command returns the argv of the server listening on 127.0.0.1:port.
	command func(port int) []string
	// blocks says whether the peer filters (the startup probe then waits
	// for NXDOMAIN on a listed name, proof that its list is loaded).
	blocks bool
}

// setup is what every peer is configured from.
type setup struct {
	work     string
	upstream string // 127.0.0.1:port
	blocked  []string
	// cacheEntries is large enough for the query file's working set.
	cacheEntries int
	// vigieBin is the server under test, built from bench/dns/cmd/vigie-dns.
	vigieBin string
	// baseBin is the vigie-base peer's binary (empty: no such peer).
	baseBin string
	// vigieArgs are its arguments once the bundle is made (made once for
	// both Vigie peers).
	vigieArgs []string
	// profile, when set, is where each Vigie run writes its profiles.
	profile string
}

func (s *setup) peers(names []string) ([]*peer, error) {
	var out []*peer
	for _, n := range names {
		var p *peer
		var err error
		switch n {
		case PeerUnbound:
			p, err = s.unbound()
		case PeerDnsmasq:
			p, err = s.dnsmasq()
		case PeerVigie:
			p, err = s.vigie()
		case PeerVigieNoJournal:
			if p, err = s.vigie(); err == nil {
				p.name = PeerVigieNoJournal
				p.command = s.vigieCommand(false)
			}
		case PeerVigieBase:
			if s.baseBin == "" {
				return nil, fmt.Errorf("dnsbench: peer %s needs a baseline binary (Options.BaseBin)", n)
			}
			if p, err = s.vigie(); err == nil {
				p.name = PeerVigieBase
				p.command = s.vigieCommandBin(s.baseBin, "base-journal", true)
			}
		case PeerVigieBatch1:
			if p, err = s.vigie(); err == nil {
				cmd := p.command
				p.name = PeerVigieBatch1
				p.command = func(port int) []string { return append(cmd(port), "-batch", "1") }
			}
		case PeerBare:
			p = &peer{name: PeerBare, command: func(port int) []string {
				return []string{s.vigieBin, "-mode", "bare", "-listen", "127.0.0.1:" + strconv.Itoa(port)}
			}}
		case PeerEcho, PeerEchoBatch1:
			batch := "32"
			if n == PeerEchoBatch1 {
				batch = "1"
			}
			p = &peer{name: n, command: func(port int) []string {
				return []string{s.vigieBin, "-mode", "echo", "-batch", batch, "-listen", "127.0.0.1:" + strconv.Itoa(port)}
			}}
		default:
			return nil, fmt.Errorf("dnsbench: unknown peer %q (known: unbound, dnsmasq, vigie, vigie-nojournal, vigie-base, vigie-batch1, miekg-bare, echo, echo-batch1)", n)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// unbound: local-zone always_nxdomain blocks a name and its subdomains;
// forwarding only (iterator module, no validator), one thread (the
// server gets one core), logging off, caches sized for the working set.
func (s *setup) unbound() (*peer, error) {
	dir := filepath.Join(s.work, "unbound")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var zones strings.Builder
	zones.WriteString("server:\n")
	for _, b := range s.blocked {
		fmt.Fprintf(&zones, "local-zone: \"%s.\" always_nxdomain\n", b)
	}
	if err := os.WriteFile(filepath.Join(dir, "blocklist.conf"), []byte(zones.String()), 0o644); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(s.upstream, ":")
	conf := func(listen int) string {
		return fmt.Sprintf(`server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	num-threads: 1
	so-reuseport: yes
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "%s"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	log-queries: no
	log-replies: no
	statistics-interval: 0
	module-config: "iterator"
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	msg-cache-size: 32m
	rrset-cache-size: 64m
	prefetch: no
	ratelimit: 0
	ip-ratelimit: 0
	minimal-responses: yes
	include: "%s"
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: %s@%s
`, listen, dir, filepath.Join(dir, "blocklist.conf"), host, port)
	}
	return &peer{name: PeerUnbound, blocks: true, command: func(port int) []string {
		path := filepath.Join(dir, "unbound-"+strconv.Itoa(port)+".conf")
		os.WriteFile(path, []byte(conf(port)), 0o644)
		return []string{"unbound", "-d", "-c", path}
	}}, nil
}

// dnsmasq: local=/name/ answers NXDOMAIN for a name and its subdomains
// (nothing under it is forwarded); no hosts file, no resolv.conf, logging
// off, cache sized for the working set.
func (s *setup) dnsmasq() (*peer, error) {
	dir := filepath.Join(s.work, "dnsmasq")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var conf strings.Builder
	for _, b := range s.blocked {
		fmt.Fprintf(&conf, "local=/%s/\n", b)
	}
	list := filepath.Join(dir, "blocklist.conf")
	if err := os.WriteFile(list, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	upstream := strings.Replace(s.upstream, ":", "#", 1)
	return &peer{name: PeerDnsmasq, blocks: true, command: func(port int) []string {
		return []string{"dnsmasq", "--keep-in-foreground", "--conf-file=" + list,
			"--port=" + strconv.Itoa(port), "--listen-address=127.0.0.1", "--bind-interfaces",
			"--no-resolv", "--no-hosts", "--no-poll", "--server=" + upstream,
			"--cache-size=" + strconv.Itoa(s.cacheEntries), "--dns-forward-max=1000",
			"--user=root", "--pid-file=", "--log-facility=" + filepath.Join(dir, "log")}
	}}, nil
}

// vigie: the blocklist as one plain list of one black category, compiled
// into a signed bundle as the control plane would publish it; the server
// under test loads it as an edge does (verify, map, swap in).
func (s *setup) vigie() (*peer, error) {
	if s.vigieArgs == nil {
		args, err := s.vigieBundle()
		if err != nil {
			return nil, err
		}
		s.vigieArgs = args
	}
	return &peer{name: PeerVigie, blocks: true, command: s.vigieCommand(true)}, nil
}

// vigieCommand runs the filter with the metrics and the rate limiter on,
// and the durable journal when journal is set. The limit is above what
// dnsperf, one source, sends: an edge's default (500 q/s per source)
// would drop nearly all of its queries, and the limiter's cost is the
// same per query whatever the limit.
func (s *setup) vigieCommand(journal bool) func(port int) []string {
	kind := "nojournal"
	if journal {
		kind = "journal"
	}
	return s.vigieCommandBin(s.vigieBin, kind, journal)
}

// vigieCommandBin is vigieCommand for the binary bin, whose profiles go
// under the name kind.
func (s *setup) vigieCommandBin(bin, kind string, journal bool) func(port int) []string {
	return func(port int) []string {
		args := append([]string{bin, "-mode", "filter", "-listen", "127.0.0.1:" + strconv.Itoa(port),
			"-metrics", "-ratelimit", "10000000"}, s.vigieArgs...)
		if journal {
			// On the work directory's disk (not a tmpfs): the group
			// commit's fsync is part of the cost.
			args = append(args, "-journal", filepath.Join(s.work, "vigie", "journal-"+strconv.Itoa(port)))
		}
		if s.profile != "" {
			args = append(args, "-profile", filepath.Join(s.profile, kind+"-"+strconv.Itoa(port)))
		}
		return args
	}
}

func (s *setup) vigieBundle() ([]string, error) {
	dir := filepath.Join(s.work, "vigie")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "blocklist.txt"), []byte(strings.Join(s.blocked, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	p := &policy.Policy{
		Version:    1,
		Academie:   "bench",
		Sources:    []policy.Source{{Name: "bench", Type: "plain", Path: "blocklist.txt", Category: "bench"}},
		Categories: []policy.Category{{ID: "bench", NameFR: "Liste du banc d'essai", Usage: "black"}},
		// The demo's élèves profile as it touches each query: SafeSearch
		// and YouTube strict rewrite, the lunch window computed per
		// query (a block window on the blocked category: it changes no
		// answer, so every peer still answers alike). The block answer
		// stays NXDOMAIN, like the peers'.
		Profiles: []policy.Profile{{ID: "bench", Block: []string{"bench"}, BlockAnswer: "nxdomain",
			SafeSearch: true, YouTube: "strict",
			Windows: []policy.Window{{Categories: []string{"bench"}, Action: "block", Days: []string{"lun", "mar", "jeu", "ven"}, From: "12:00", To: "13:30"}}}},
		Schools: []policy.School{{UAI: demo.UAI, Name: "bench", Zones: []policy.Zone{
			{Name: "pedagogique", CIDRs: []string{"127.0.0.0/8"}, Profile: "bench"},
		}}},
		Dir: dir,
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("dnsbench: policy: %w", err)
	}
	rs, _, err := rules.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("dnsbench: compile: %w", err)
	}
	if rs.Domains() < len(s.blocked)*99/100 {
		return nil, fmt.Errorf("dnsbench: compiled %d names of %d", rs.Domains(), len(s.blocked))
	}
	keyPath := filepath.Join(dir, "academie.key")
	if _, err := keyfile.Generate(keyPath); err != nil {
		return nil, err
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		return nil, err
	}
	data, err := rules.EncodeBundle(rs, 1, time.Now(), ed25519.PrivateKey(key))
	if err != nil {
		return nil, err
	}
	bundlePath := filepath.Join(dir, "policy.bundle")
	if err := os.WriteFile(bundlePath, data, 0o644); err != nil {
		return nil, err
	}
	return []string{"-bundle", bundlePath, "-pub", keyPath + ".pub", "-upstream", s.upstream,
		"-cache", strconv.Itoa(s.cacheEntries)}, nil
}

// ensureTools installs the peers and dnsperf with apt when missing.
func ensureTools(ctx context.Context, install bool, log func(string, ...any)) error {
	need := map[string]string{"unbound": "unbound", "dnsmasq": "dnsmasq-base", "dnsperf": "dnsperf", "taskset": "util-linux"}
	var missing []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !install {
		return fmt.Errorf("dnsbench: missing packages %v (install them or drop -no-install)", missing)
	}
	log("installing %v with apt-get", missing)
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("dnsbench: apt-get %s: %w\n%s", args[0], err, out)
		}
	}
	return nil
}
