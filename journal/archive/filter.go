package archive

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"vigie/journal"
)

// A block's filter is a Bloom filter of what requisitions search by: the
// client addresses, every host with each of its parent domains (a domain
// query matches its subdomains), and the translated source (NAT) address
// with and without its port. A search tests each block of its time range
// and decodes only those that may hold a match: about one in a hundred
// false positives at ten bits per distinct key, about 1.3 bytes per record
// for the connexions stream, where nearly every flow has its own NAT port.
//
// Layout: the number of hash functions (one byte), then the bit array.
// Keys are hashed with xxhash (fixed, unseeded: filters are stored), and
// the k positions come from the two halves of that hash (Kirsch and
// Mitzenmacher's double hashing).

const (
	filterBitsPerKey = 10
	filterHashes     = 7
)

// Key kinds, the first byte of a key.
const (
	keyClient  = 'c'
	keyHost    = 'h'
	keyNAT     = 'n'
	keyNATAddr = 'a'
)

// filterBuilder collects the key hashes of one block's records.
type filterBuilder struct {
	hashes []uint64
	buf    []byte
	// A block's records repeat a few hundred clients and a few thousand
	// hosts: each distinct address and host is hashed once (a host with
	// each of its parents), so the hashes sorted by build are about as
	// many as the block's distinct keys, not a few per record.
	addrs    map[addrSeen]struct{}
	hosts    map[string]struct{}
	lastHost string
}

type addrSeen struct {
	kind byte
	addr netip.Addr
}

// once reports whether address a of key kind is new to the block.
func (f *filterBuilder) once(kind byte, a netip.Addr) bool {
	if f.addrs == nil {
		f.addrs = map[addrSeen]struct{}{}
	}
	k := addrSeen{kind, a}
	if _, ok := f.addrs[k]; ok {
		return false
	}
	f.addrs[k] = struct{}{}
	return true
}

func (f *filterBuilder) key(kind byte, parts ...[]byte) {
	f.buf = append(f.buf[:0], kind)
	for _, p := range parts {
		f.buf = append(f.buf, p...)
	}
	f.hashes = append(f.hashes, xxhash.Sum64(f.buf))
}

func addrKey(a netip.Addr, port int, buf *[18]byte) []byte {
	b := a.Unmap().As16()
	copy(buf[:], b[:])
	if port < 0 {
		return buf[:16]
	}
	binary.BigEndian.PutUint16(buf[16:], uint16(port))
	return buf[:18]
}

// add adds the keys of one record.
func (f *filterBuilder) add(r *journal.Record) {
	var b [18]byte
	if a := r.Client.Addr(); a.IsValid() && f.once(keyClient, a) {
		f.key(keyClient, addrKey(a, -1, &b))
	}
	if a := r.NAT.Addr(); a.IsValid() {
		// Nearly every flow has its own NAT port: that key is not
		// looked up first.
		f.key(keyNAT, addrKey(a, int(r.NAT.Port()), &b))
		if f.once(keyNATAddr, a) {
			f.key(keyNATAddr, addrKey(a, -1, &b))
		}
	}
	if r.Host != "" && r.Host != f.lastHost {
		f.lastHost = r.Host
		if f.hosts == nil {
			f.hosts = map[string]struct{}{}
		}
		if _, ok := f.hosts[r.Host]; ok {
			return
		}
		f.hosts[r.Host] = struct{}{}
		h := normHost(r.Host)
		for h != "" {
			f.buf = append(append(f.buf[:0], keyHost), h...)
			f.hashes = append(f.hashes, xxhash.Sum64(f.buf))
			_, rest, ok := strings.Cut(h, ".")
			if !ok {
				break
			}
			h = rest
		}
	}
}

// build returns the filter of the keys added.
func (f *filterBuilder) build() []byte {
	slices.Sort(f.hashes)
	keys := slices.Compact(f.hashes)
	bits := max(64, len(keys)*filterBitsPerKey)
	out := make([]byte, 1+(bits+7)/8)
	out[0] = filterHashes
	m := uint32((len(out) - 1) * 8)
	for _, h := range keys {
		h1, h2 := uint32(h), uint32(h>>32)|1
		for i := uint32(0); i < filterHashes; i++ {
			bit := (h1 + i*h2) % m
			out[1+bit/8] |= 1 << (bit % 8)
		}
	}
	return out
}

// mayHold reports whether filter may hold the key hash h. A damaged or
// empty filter may hold anything (the block is decoded).
func mayHold(filter []byte, h uint64) bool {
	if len(filter) < 2 || filter[0] == 0 {
		return true
	}
	k := uint32(filter[0])
	m := uint32((len(filter) - 1) * 8)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := uint32(0); i < k; i++ {
		bit := (h1 + i*h2) % m
		if filter[1+bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

// recordEnd is when a record's connection ended (µs): its time plus its
// duration.
func recordEnd(r *journal.Record) int64 { return micros(r.Time.Add(max(r.Duration, 0))) }

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// probes are the key hashes a query needs a block's filter to hold (all of
// them); nil when the query selects no record by content.
func (q Query) probes() []uint64 {
	var out []uint64
	var b [18]byte
	k := func(kind byte, p []byte) { out = append(out, xxhash.Sum64(append([]byte{kind}, p...))) }
	if q.Client.IsValid() {
		k(keyClient, addrKey(q.Client, -1, &b))
	}
	if q.Domain != "" {
		k(keyHost, []byte(normHost(q.Domain)))
	}
	if q.NAT.IsValid() {
		if q.NATPort != 0 {
			k(keyNAT, addrKey(q.NAT, int(q.NATPort), &b))
		} else {
			k(keyNATAddr, addrKey(q.NAT, -1, &b))
		}
	}
	return out
}

// matchesContent says whether decoded record r is one q selects by client,
// domain and NAT (MAC and user are matchesIdentity's).
func (q Query) matchesContent(r *journal.Record) bool {
	if q.Client.IsValid() && r.Client.Addr() != q.Client {
		return false
	}
	if q.Domain != "" {
		h, d := normHost(r.Host), normHost(q.Domain)
		if h != d && !strings.HasSuffix(h, "."+d) {
			return false
		}
	}
	if q.NAT.IsValid() && (r.NAT.Addr().Unmap() != q.NAT.Unmap() || (q.NATPort != 0 && r.NAT.Port() != q.NATPort)) {
		return false
	}
	if !q.EndFrom.IsZero() && recordEnd(r) < micros(q.EndFrom) {
		return false
	}
	return true
}
