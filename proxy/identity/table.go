// Package identity tells who was behind a client address at a given time:
// a time-indexed map from IP to MAC to user, fed by the school's RADIUS
// accounting (Wi-Fi controller, 802.1X switches), its DHCP lease files
// (ISC dhcpd, Kea memfile, dnsmasq) and the kernel's neighbour table.
//
// The edge asks it when a journal record is made and writes what it knows
// then into the record; nothing is filled in afterwards, because a value
// added later could not be proved to have been known at the time.
package identity

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Source says where a binding comes from; a RADIUS session outranks a
// DHCP lease, which outranks a neighbour entry, for the MAC.
type Source uint8

const (
	FromNeighbour Source = iota + 1
	FromDHCP
	FromRADIUS
)

func (s Source) String() string {
	switch s {
	case FromNeighbour:
		return "neighbour"
	case FromDHCP:
		return "dhcp"
	case FromRADIUS:
		return "radius"
	}
	return "unknown"
}

// Binding is what one source says about an address over an interval.
// A zero To means "still open".
type Binding struct {
	Addr     netip.Addr
	MAC      string
	User     string
	From, To time.Time
	Source   Source
	// Key identifies the binding within its source (a RADIUS session id,
	// a lease file) so that later news updates it instead of adding one.
	Key string
}

func (b *Binding) covers(at time.Time, slack time.Duration) bool {
	return !at.Before(b.From.Add(-slack)) && (b.To.IsZero() || !at.After(b.To.Add(slack)))
}

// Table is the time-indexed map. Safe for concurrent use; Lookup is on
// the path of every journal record and takes a read lock only.
type Table struct {
	mu sync.RWMutex
	by map[netip.Addr][]Binding
	// Keep is how long a closed binding is kept (a requisition's record
	// is made when the flow ends, so a little history is needed).
	Keep time.Duration
	// MaxPerAddr bounds the history of one address.
	MaxPerAddr int
	// Slack widens every interval: clocks of NAS, DHCP server and edge
	// differ by a little.
	Slack time.Duration
}

// NewTable returns an empty table with the default bounds.
func NewTable() *Table {
	return &Table{by: map[netip.Addr][]Binding{}, Keep: 24 * time.Hour, MaxPerAddr: 32, Slack: 2 * time.Second}
}

// Put adds b, or updates the binding of the same source and key for the
// same address. A new binding of a source for an address closes the open
// one of that source with another MAC (an address has one holder at a
// time).
func (t *Table) Put(b Binding) {
	b.Addr = b.Addr.Unmap()
	b.MAC = NormalizeMAC(b.MAC)
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.by[b.Addr]
	for i := range list {
		o := &list[i]
		if o.Source != b.Source {
			continue
		}
		if o.Key == b.Key && o.MAC == b.MAC && (o.To.IsZero() || !b.From.After(o.To)) {
			if b.From.Before(o.From) {
				o.From = b.From
			}
			o.To = b.To
			if b.User != "" {
				o.User = b.User
			}
			return
		}
		if o.To.IsZero() && b.From.After(o.From) && (o.MAC != b.MAC || o.Key != b.Key) {
			o.To = b.From
		}
	}
	list = append(list, b)
	if len(list) > t.MaxPerAddr {
		list = append(list[:0:0], list[len(list)-t.MaxPerAddr:]...)
	}
	t.by[b.Addr] = list
}

// Close ends the open binding of source s and key for addr at time to.
func (t *Table) Close(addr netip.Addr, s Source, key string, to time.Time) {
	addr = addr.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.by[addr] {
		b := &t.by[addr][i]
		if b.Source == s && b.Key == key && b.To.IsZero() {
			b.To = to
		}
	}
}

// CloseAll ends every open binding of source s whose key starts with
// prefix (a NAS that restarted has no session left).
func (t *Table) CloseAll(s Source, prefix string, to time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, list := range t.by {
		for i := range list {
			if b := &list[i]; b.Source == s && b.To.IsZero() && strings.HasPrefix(b.Key, prefix) {
				b.To = to
			}
		}
	}
}

// Lookup returns the MAC and user known for addr at time at (empty when
// unknown): the user from a RADIUS session, the MAC from the best source
// covering that time.
func (t *Table) Lookup(addr netip.Addr, at time.Time) (mac, user string) {
	if !addr.IsValid() {
		return "", ""
	}
	addr = addr.Unmap()
	t.mu.RLock()
	defer t.mu.RUnlock()
	list := t.by[addr]
	var best Source
	for i := len(list) - 1; i >= 0; i-- {
		b := &list[i]
		if !b.covers(at, t.Slack) {
			continue
		}
		if user == "" && b.User != "" {
			user = b.User
		}
		if b.MAC != "" && b.Source > best {
			mac, best = b.MAC, b.Source
		}
	}
	return mac, user
}

// Prune forgets bindings closed more than Keep before now.
func (t *Table) Prune(now time.Time) {
	cut := now.Add(-t.Keep)
	t.mu.Lock()
	defer t.mu.Unlock()
	for a, list := range t.by {
		kept := list[:0]
		for _, b := range list {
			if b.To.IsZero() || b.To.After(cut) {
				kept = append(kept, b)
			}
		}
		if len(kept) == 0 {
			delete(t.by, a)
		} else {
			t.by[a] = kept
		}
	}
}

// Len is the number of addresses known.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.by)
}

// NormalizeMAC writes a MAC address as lower-case colon-separated hex
// ("02:00:5e:00:01:02") from the forms NAS and DHCP servers use
// (02-00-5E-00-01-02, 0200.5e00.0102, 02005e000102, and a Wi-Fi
// controller's "02-00-5E-00-01-02:SSID"). Anything else is returned as
// is: it is still evidence.
func NormalizeMAC(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
		return hw.String()
	}
	if len(s) > 17 && (s[17] == ':' || s[17] == ';') {
		if hw, err := net.ParseMAC(s[:17]); err == nil && len(hw) == 6 {
			return hw.String()
		}
	}
	if len(s) == 12 {
		var b strings.Builder
		for i := 0; i < 12; i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(s[i : i+2])
		}
		if hw, err := net.ParseMAC(b.String()); err == nil {
			return hw.String()
		}
	}
	return s
}
