package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigie/controlplane"
	"vigie/demo"
	"vigie/testlab"
	"vigie/tstest"
)

// guideStep is one block of the operator guide an operator runs.
type guideStep struct {
	Host string // academie, gateway or pupil
	Line int    // of the opening fence, for messages
	Body string
}

// guideHosts are the machines a step may run on.
var guideHosts = []string{"academie", "gateway", "pupil"}

// readGuide extracts the site-values block and the operator steps, in
// order, from the guide's fenced blocks "```sh operator-site" and
// "```sh operator-step HOST".
func readGuide(md string) (site string, steps []guideStep, err error) {
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		f := strings.Fields(info)
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
			end++
		}
		if end == len(lines) {
			return "", nil, fmt.Errorf("guide:%d: unclosed block", i+1)
		}
		body := strings.Join(lines[i+1:end], "\n") + "\n"
		switch {
		case len(f) >= 2 && f[1] == "operator-site":
			if site != "" {
				return "", nil, fmt.Errorf("guide:%d: a second operator-site block", i+1)
			}
			site = body
		case len(f) >= 2 && f[1] == "operator-step":
			if f[0] != "sh" || len(f) != 3 || !slices.Contains(guideHosts, f[2]) {
				return "", nil, fmt.Errorf("guide:%d: want ```sh operator-step HOST with HOST one of %v", i+1, guideHosts)
			}
			steps = append(steps, guideStep{Host: f[2], Line: i + 1, Body: body})
		}
		i = end
	}
	if site == "" || len(steps) == 0 {
		return "", nil, fmt.Errorf("guide: no operator-site block or no operator-step block")
	}
	return site, steps, nil
}

// siteVars are the variables a site block sets.
func siteVars(site string) []string {
	var out []string
	re := regexp.MustCompile(`^(?:export\s+)?([A-Z_][A-Z0-9_]*)=`)
	for _, l := range strings.Split(site, "\n") {
		if m := re.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// guideMilestones are what the tested path must go through, in this
// order: the guide cannot lose one without this test failing.
var guideMilestones = []string{"apt install", "vigie controlplane init", "import-ut1", "publish", "edges add",
	"systemctl enable --now vigie-edge", "bloquée par le filtrage", "controlplane backup", "controlplane restore"}

// TestGuideStepsAreComplete checks the guide's tested path (no root
// needed): its blocks parse, and the milestones come in order.
func TestGuideStepsAreComplete(t *testing.T) {
	md, err := os.ReadFile("../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	site, steps, err := readGuide(string(md))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, s := range steps {
		all.WriteString(s.Body)
	}
	text, at := all.String(), 0
	for _, m := range guideMilestones {
		i := strings.Index(text[at:], m)
		if i < 0 {
			t.Fatalf("the guide's operator steps lack %q (after position %d)", m, at)
		}
		at += i
	}
	if got := siteVars(site); !slices.Equal(got, slices.Sorted(slices.Values(siteVarNames))) {
		t.Fatalf("the guide's site block sets %v; the test sets %v: keep them in step", got, siteVarNames)
	}
	if _, _, err := readGuide("```sh operator-step cloud\nx\n```\n```sh operator-site\nA=1\n```\n"); err == nil {
		t.Fatal("an unknown host was accepted")
	}
	if _, _, err := readGuide("```sh operator-site\nA=1\n"); err == nil {
		t.Fatal("an unclosed block was accepted")
	}
}

// siteVarNames are the values the test gives in place of the guide's.
var siteVarNames = []string{"DEB", "ACADEMIE", "CP_LISTEN", "VIGIE_SERVER", "TLS_CERT", "TLS_KEY", "VIGIE_CA",
	"VIGIE_TOKEN_FILE", "UT1", "UAI", "SCHOOL", "PUPILS_CIDR", "PUPILS_GW", "EDGE_ID", "WAN_IF", "DNS_UPSTREAMS"}

// systemctlShim stands in for systemd, which does not run in the test's
// container: it starts a unit's ExecStart as the unit's User, with its
// AmbientCapabilities and StateDirectory, in the network namespace of the
// step that calls it, and stop kills it. The units themselves are checked
// by systemd-analyze in TestUnitsVerify.
const systemctlShim = `#!/bin/bash
set -u
run=${VIGIE_GUIDE_RUN:?}
verb=${1:?}; shift
if [ "$verb" = enable ] || [ "$verb" = disable ]; then
	[ "${1:-}" = --now ] || exit 0
	shift
	if [ "$verb" = enable ]; then verb=start; else verb=stop; fi
fi
case "$verb" in daemon-reload) exit 0 ;; esac
for u in "$@"; do
	u=${u%.service}.service
	f=/lib/systemd/system/$u
	[ -f "$f" ] || { echo "Unit $u not found." >&2; exit 5; }
	pidf=$run/$u.pid
	if [ "$verb" = stop ] || [ "$verb" = restart ]; then
		if [ -f "$pidf" ]; then
			pid=$(cat "$pidf")
			kill "$pid" 2>/dev/null
			for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			rm -f "$pidf"
		fi
	fi
	if [ "$verb" = start ] || [ "$verb" = restart ]; then
		if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then continue; fi
		exec_=$(sed -n 's/^ExecStart=//p' "$f")
		user=$(sed -n 's/^User=//p' "$f")
		for d in $(sed -n 's/^StateDirectory=//p' "$f"); do install -d -o "$user" -g "$user" -m 0750 "/var/lib/$d"; done
		caps=$(sed -n 's/^AmbientCapabilities=//p' "$f" | tr 'A-Z' 'a-z' | sed 's/cap_//g')
		capopt=()
		if [ -n "$caps" ]; then c=$(echo $caps | sed 's/ /,+/g'); capopt=(--inh-caps=+$c --ambient-caps=+$c); fi
		setsid setpriv --reuid="$user" --regid="$user" --init-groups "${capopt[@]}" -- $exec_ >>"$run/$u.log" 2>&1 </dev/null &
		echo $! >"$pidf"
	fi
done
`

// TestOperatorGuide runs the guide's operator steps in order, as root,
// with the built package, on three machines made of network namespaces:
// the académie's server, the school's gateway and a pupil's computer. The
// system's /etc, /usr and /var are overlaid in a private mount namespace,
// so that apt, dpkg and the maintainer scripts run for real without
// touching the host.
func TestOperatorGuide(t *testing.T) {
	tstest.RequireRoot(t)
	for _, tool := range [][2]string{{"unshare", "util-linux"}, {"setpriv", "util-linux"}, {"runuser", "util-linux"},
		{"apt", "apt"}, {"curl", "curl"}, {"ip", "iproute2"}, {"systemd-sysusers", "systemd"}} {
		tstest.RequireCommand(t, tool[0], tool[1])
	}
	md, err := os.ReadFile("../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	_, steps, err := readGuide(string(md))
	if err != nil {
		t.Fatal(err)
	}
	deb, _ := buildTestDeb(t)

	// The machines.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	lists, err := demo.WriteSample(filepath.Join(t.TempDir(), "sample"))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := testlab.Up(ctx, testlab.Options{Lists: lists, NoEdge: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Down() })
	hostNS := map[string]string{"academie": lab.Internet.Name, "gateway": lab.Edge.Name, "pupil": lab.Eleve.Name}

	// What the operator brings: the académie's PKI, UT1's tarball and its
	// MD5, the package. Readable by the vigie account where it must be.
	work, err := os.MkdirTemp("", "vigie-guide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	os.Chmod(work, 0o755)
	const cpName = "vigie.ac-labo.test"
	v4, _ := testlab.LabAddrs(cpName)
	caFile, certFile, keyFile := writePKI(t, work, cpName, net.IP(v4.AsSlice()))
	// The repository's real UT1 tree, every category the first policy
	// names, but without adult/domains (4 million names): the demo's
	// adult-top1m sample stands in for it, pornhub.com among them as in
	// the real tarball.
	adult, err := os.ReadFile(filepath.Join(lists, "adult-top1m", "domains"))
	if err != nil {
		t.Fatal(err)
	}
	ut1 := writeUT1Tarball(t, work, "../testdata/blocklists/ut1", map[string][]byte{"adult/domains": adult})
	home := filepath.Join(work, "home")
	run := filepath.Join(work, "run")
	shim := filepath.Join(work, "bin")
	for _, d := range []string{home, run, shim} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(shim, "systemctl"), []byte(systemctlShim), 0o755)
	// The services the steps start are this test's processes: stop them.
	t.Cleanup(func() {
		pids, _ := filepath.Glob(filepath.Join(run, "*.pid"))
		for _, p := range pids {
			b, _ := os.ReadFile(p)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	// The site's values, in place of the guide's.
	cpPort := "8443"
	site := map[string]string{
		"DEB": deb, "ACADEMIE": "Académie du laboratoire", "CP_LISTEN": ":" + cpPort,
		"VIGIE_SERVER": "https://" + cpName + ":" + cpPort, "TLS_CERT": certFile, "TLS_KEY": keyFile, "VIGIE_CA": caFile,
		"VIGIE_TOKEN_FILE": filepath.Join(home, ".vigie-token"), "UT1": ut1, "UAI": testlab.UAI, "SCHOOL": "Collège du laboratoire",
		"PUPILS_CIDR": "10.10.0.0/24", "PUPILS_GW": testlab.EdgePedAddr, "EDGE_ID": "labo-1", "WAN_IF": testlab.EdgeWANIf,
		"DNS_UPSTREAMS": `"` + testlab.AuthDNSAddr + `:53"`,
	}
	var siteSh strings.Builder
	for _, k := range siteVarNames {
		fmt.Fprintf(&siteSh, "export %s=%s\n", k, shellQuote(site[k]))
	}
	os.WriteFile(filepath.Join(work, "site.sh"), []byte(siteSh.String()), 0o600)

	// The runner: overlays, then each step in its machine's namespace.
	var r strings.Builder
	fmt.Fprintf(&r, "set -u\nov=%s\nmkdir -p $ov && mount -t tmpfs tmpfs $ov\n", filepath.Join(work, "overlay"))
	r.WriteString("for d in etc usr var; do mkdir -p $ov/$d/up $ov/$d/work && mount -t overlay overlay -o lowerdir=/$d,upperdir=$ov/$d/up,workdir=$ov/$d/work /$d || exit 1; done\n")
	for i, s := range steps {
		f := filepath.Join(work, fmt.Sprintf("step-%02d.sh", i+1))
		os.WriteFile(f, []byte(". "+filepath.Join(work, "site.sh")+"\ncd ~\nset -x\n"+s.Body), 0o600)
		fmt.Fprintf(&r, "echo '=== step %d (%s, guide line %d) ==='\n", i+1, s.Host, s.Line)
		fmt.Fprintf(&r, "ip netns exec %s env -i PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin HOME=%s LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive VIGIE_GUIDE_RUN=%s bash -eo pipefail %s || { echo '=== step %d FAILED ==='; exit 1; }\n",
			hostNS[s.Host], shim, home, run, f, i+1)
	}
	r.WriteString("echo '=== all steps passed ==='\n")
	os.WriteFile(filepath.Join(work, "runner.sh"), []byte(r.String()), 0o600)

	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "bash", filepath.Join(work, "runner.sh"))
	out, err := cmd.CombinedOutput()
	t.Logf("guide steps:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("=== all steps passed ===")) {
		for _, u := range []string{"vigie-controlplane.service", "vigie-edge.service"} {
			if b, err := os.ReadFile(filepath.Join(run, u+".log")); err == nil {
				t.Logf("%s log:\n%s", u, tail(b, 4000))
			}
		}
		t.Fatalf("the operator guide's steps failed: %v", err)
	}
	// The pupil's block, seen from outside the guide too.
	resp, body, err := lab.Pupil().Get(ctx, "http://www.pornhub.com/")
	if err != nil || !strings.Contains(body, "bloquée") {
		t.Fatalf("pupil: %v %v %.300s", err, resp, body)
	}
	for _, want := range []string{"BLOCKED http://www.pornhub.com/", "restored", "audit chain verified"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the steps' output lacks %q", want)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writePKI makes the académie's CA and the control plane's certificate.
func writePKI(t *testing.T, dir, name string, ip net.IP) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "AC de l'académie du laboratoire"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		IPAddresses: []net.IP{ip}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	pki := filepath.Join(dir, "pki")
	os.MkdirAll(pki, 0o755)
	ca, cert, key = filepath.Join(pki, "ca.pem"), filepath.Join(pki, "cert.pem"), filepath.Join(pki, "key.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return ca, cert, key
}

// writeUT1Tarball packs a UT1 tree as UT1 publishes it (blacklists/...)
// with MD5SUM.LST beside it.
func writeUT1Tarball(t *testing.T, dir, tree string, extra map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		name := filepath.ToSlash(filepath.Join("blacklists", rel))
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target})
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
	})
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: "blacklists/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(extra[name]))})
		}
		if err == nil {
			_, err = tw.Write(extra[name])
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	ut1 := filepath.Join(dir, "ut1")
	os.MkdirAll(ut1, 0o755)
	path := filepath.Join(ut1, "blacklists.tar.gz")
	os.WriteFile(path, buf.Bytes(), 0o644)
	sum := md5.Sum(buf.Bytes())
	os.WriteFile(filepath.Join(ut1, "MD5SUM.LST"), []byte(hex.EncodeToString(sum[:])+"  blacklists.tar.gz\n"), 0o644)
	return path
}

// TestGuidePurgeDestroysEverySecret: the guide's way of destroying what a
// purge keeps in /etc/vigie is the one postrm prints, and reaches every
// file there (the TLS key in tls/, the SSO secret), not a glob of some.
func TestGuidePurgeDestroysEverySecret(t *testing.T) {
	md, err := os.ReadFile("../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	postrm, err := os.ReadFile("debian/postrm")
	if err != nil {
		t.Fatal(err)
	}
	const destroy = "-type f -exec shred -u {} +"
	if !strings.Contains(string(md), "find /etc/vigie "+destroy) {
		t.Errorf("the guide does not destroy the secrets with find /etc/vigie %s", destroy)
	}
	if !strings.Contains(string(postrm), destroy) {
		t.Errorf("postrm does not print find ... %s", destroy)
	}
}

// TestGuideNamesFirstPolicyExclusions: every black category of UT1's
// global_usage that the first policy leaves out of the pupils' profile is
// named in the guide, so that an operator knows it is left out on purpose.
func TestGuideNamesFirstPolicyExclusions(t *testing.T) {
	md, err := os.ReadFile("../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	gu, err := os.ReadFile("../testdata/blocklists/ut1/global_usage")
	if err != nil {
		t.Fatal(err)
	}
	var eleves []string
	for _, p := range controlplane.FirstPolicy("A").Profiles {
		if p.ID == "eleves" {
			eleves = p.Block
		}
	}
	if len(eleves) == 0 {
		t.Fatal("the first policy has no eleves profile blocking anything")
	}
	name := ""
	for _, line := range strings.Split(string(gu), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "NAME":
			name = v
		case "DEFAULT_TYPE":
			if v == "black" && name != "" && !slices.Contains(eleves, name) && !strings.Contains(string(md), "`"+name+"`") {
				t.Errorf("UT1 black category %s is left out of the first policy, and the guide does not say so", name)
			}
		}
	}
}

// TestGuidePostgresBackupProcedure: the PostgreSQL procedure dumps both
// schemas, and restores with every replica stopped, --clean, then starts
// them, in that order.
func TestGuidePostgresBackupProcedure(t *testing.T) {
	md, err := os.ReadFile("../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	at := 0
	for _, want := range []string{"pg_dump -h DBHOST -U vigie -d vigie -Fc -n vigie -n vigie_journal", "systemctl stop vigie-controlplane        # on each replica",
		"pg_restore -h DBHOST -U vigie -d vigie --clean --if-exists --single-transaction", "systemctl start vigie-controlplane       # on each replica"} {
		i := strings.Index(s[at:], want)
		if i < 0 {
			t.Fatalf("the guide's PostgreSQL backup procedure lacks, or misplaces, %q", want)
		}
		at += i + len(want)
	}
}
