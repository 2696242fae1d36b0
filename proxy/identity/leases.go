package identity

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lease is one DHCP lease read from a server's lease file.
type Lease struct {
	Addr netip.Addr
	MAC  string
	// Start is zero when the format does not say (dnsmasq); End is zero
	// for an infinite lease.
	Start, End time.Time
}

// Lease file formats.
const (
	FormatISC     = "isc"
	FormatKea     = "kea"
	FormatDnsmasq = "dnsmasq"
)

// maxLeaseLine bounds one line of a lease file.
const maxLeaseLine = 64 << 10

// ParseLeases reads a lease file of the given format. name is used in
// errors, which give the line.
func ParseLeases(format, name string, r io.Reader) ([]Lease, error) {
	switch format {
	case FormatISC:
		return parseISC(name, r)
	case FormatKea:
		return parseKea(name, r)
	case FormatDnsmasq:
		return parseDnsmasq(name, r)
	}
	return nil, fmt.Errorf("identity: %s: unknown lease format %q (isc, kea, dnsmasq)", name, format)
}

func scanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLeaseLine)
	return sc
}

// parseDnsmasq reads dnsmasq's lease file: "expiry mac ip hostname
// client-id" per IPv4 lease; IPv6 leases ("expiry iaid ip6 ...") follow
// a "duid" line and carry no MAC, so they are skipped.
func parseDnsmasq(name string, r io.Reader) ([]Lease, error) {
	var out []Lease
	sc := scanner(r)
	line := 0
	v6 := false
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "duid" {
			v6 = true
			continue
		}
		if v6 {
			continue
		}
		if len(f) < 3 {
			return out, fmt.Errorf("identity: %s:%d: want expiry, MAC and address, got %d fields", name, line, len(f))
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || exp < 0 || exp > 1<<40 {
			return out, fmt.Errorf("identity: %s:%d: bad expiry %q", name, line, f[0])
		}
		a, err := netip.ParseAddr(f[2])
		if err != nil {
			return out, fmt.Errorf("identity: %s:%d: bad address %q", name, line, f[2])
		}
		mac := NormalizeMAC(f[1])
		if !isMAC(mac) {
			return out, fmt.Errorf("identity: %s:%d: bad MAC %q", name, line, f[1])
		}
		l := Lease{Addr: a, MAC: mac}
		if exp != 0 {
			l.End = time.Unix(exp, 0).UTC()
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("identity: %s:%d: %w", name, line+1, err)
	}
	return out, nil
}

// parseKea reads a Kea memfile lease4 CSV: columns by header name;
// expire is a Unix time and valid_lifetime the lease's length; state 0 is
// a lease in use (1 declined, 2 reclaimed).
func parseKea(name string, r io.Reader) ([]Lease, error) {
	cr := csv.NewReader(io.LimitReader(r, 1<<30))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("identity: %s:1: header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"address", "hwaddr", "valid_lifetime", "expire"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("identity: %s:1: no %q column (not a Kea lease4 file?)", name, need)
		}
	}
	get := func(rec []string, k string) string {
		i, ok := col[k]
		if !ok || i >= len(rec) {
			return ""
		}
		return rec[i]
	}
	var out []Lease
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("identity: %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < len(head) {
			return out, fmt.Errorf("identity: %s:%d: %d fields, header has %d", name, line, len(rec), len(head))
		}
		if st := get(rec, "state"); st != "" && st != "0" {
			continue
		}
		a, err := netip.ParseAddr(get(rec, "address"))
		if err != nil {
			return out, fmt.Errorf("identity: %s:%d: address: %v", name, line, err)
		}
		hw := get(rec, "hwaddr")
		if hw == "" {
			continue
		}
		mac := NormalizeMAC(hw)
		if !isMAC(mac) {
			return out, fmt.Errorf("identity: %s:%d: bad hwaddr %q", name, line, hw)
		}
		exp, err1 := strconv.ParseInt(get(rec, "expire"), 10, 64)
		life, err2 := strconv.ParseInt(get(rec, "valid_lifetime"), 10, 64)
		if err1 != nil || err2 != nil || exp < 0 || life < 0 || exp > 1<<40 || life > 1<<40 {
			return out, fmt.Errorf("identity: %s:%d: bad expire or valid_lifetime", name, line)
		}
		l := Lease{Addr: a, MAC: mac, End: time.Unix(exp, 0).UTC()}
		if life != 0xffffffff {
			l.Start = l.End.Add(-time.Duration(life) * time.Second)
		} else {
			l.End = time.Time{}
		}
		out = append(out, l)
	}
}

// parseISC reads ISC dhcpd's dhcpd.leases: "lease ADDR { ... }" blocks
// with "starts", "ends" (weekday date time in UTC, "epoch N", or
// "never"), "binding state" and "hardware ethernet". Later blocks for an
// address supersede earlier ones, as in dhcpd itself; only active leases
// are kept.
func parseISC(name string, r io.Reader) ([]Lease, error) {
	sc := scanner(r)
	line := 0
	var out []Lease
	// last is the index in out of each address's lease: a later block
	// replaces it, or removes it when the later one is not active.
	last := map[netip.Addr]int{}
	var cur *Lease
	active := false
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(s, '#'); i >= 0 && !strings.Contains(s[:i], "\"") {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		switch {
		case cur == nil && strings.HasPrefix(s, "lease "):
			rest := strings.TrimSpace(strings.TrimPrefix(s, "lease "))
			addr, brace, _ := strings.Cut(rest, " ")
			if strings.TrimSpace(brace) != "{" {
				return out, fmt.Errorf("identity: %s:%d: want \"lease ADDRESS {\"", name, line)
			}
			a, err := netip.ParseAddr(addr)
			if err != nil {
				return out, fmt.Errorf("identity: %s:%d: bad lease address %q", name, line, addr)
			}
			cur, active = &Lease{Addr: a}, true
		case cur == nil:
			// Other top-level statements (server-duid, authoring-byte-order,
			// failover state blocks on one line) say nothing about leases.
			continue
		case s == "}":
			i, seen := last[cur.Addr]
			switch {
			case active && cur.MAC != "" && seen:
				out[i] = *cur
			case active && cur.MAC != "":
				last[cur.Addr] = len(out)
				out = append(out, *cur)
			case seen:
				out[i] = Lease{}
			}
			cur = nil
		default:
			if !strings.HasSuffix(s, ";") {
				return out, fmt.Errorf("identity: %s:%d: statement without ';'", name, line)
			}
			s = strings.TrimSuffix(s, ";")
			f := strings.Fields(s)
			var err error
			switch {
			case len(f) >= 2 && f[0] == "starts":
				cur.Start, err = iscTime(f[1:])
			case len(f) >= 2 && f[0] == "ends":
				cur.End, err = iscTime(f[1:])
			case len(f) == 3 && f[0] == "binding" && f[1] == "state":
				active = f[2] == "active"
			case len(f) == 3 && f[0] == "hardware" && f[1] == "ethernet":
				cur.MAC = NormalizeMAC(f[2])
				if !isMAC(cur.MAC) {
					err = fmt.Errorf("bad MAC %q", f[2])
				}
			}
			if err != nil {
				return out, fmt.Errorf("identity: %s:%d: %v", name, line, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("identity: %s:%d: %w", name, line+1, err)
	}
	if cur != nil {
		return out, fmt.Errorf("identity: %s:%d: lease block not closed", name, line)
	}
	kept := out[:0]
	for _, l := range out {
		if l.Addr.IsValid() {
			kept = append(kept, l)
		}
	}
	return kept, nil
}

func iscTime(f []string) (time.Time, error) {
	switch {
	case f[0] == "never":
		return time.Time{}, nil
	case f[0] == "epoch" && len(f) >= 2:
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return time.Time{}, fmt.Errorf("bad epoch time %q", f[1])
		}
		return time.Unix(n, 0).UTC(), nil
	case len(f) >= 3:
		t, err := time.Parse("2006/01/02 15:04:05", f[1]+" "+f[2])
		if err != nil {
			return time.Time{}, fmt.Errorf("bad time %q", strings.Join(f, " "))
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("bad time %q", strings.Join(f, " "))
}

func isMAC(s string) bool {
	return len(s) == 17 && bytes.Count([]byte(s), []byte{':'}) == 5
}
