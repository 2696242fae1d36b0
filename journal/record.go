// Package journal is the connection journal shared by edge and control
// plane: the record schema of its two streams (field names in FIELDS.md),
// the Sink interface the data plane writes through, the canonical encoding
// of a record and the hash chain that links records of a stream.
//
// The parts built on it:
//
//	journal/segment  the edge's durable log: segment files, group commit,
//	                 crash recovery, sealing (compressed, signed batches)
//	journal/ship     the edge's shipper to the control plane
//	journal/archive  the control plane's verified ingest, SQLite store,
//	                 retention purge, legal holds, gaps
//	journal/export   the signed requisition export and its verifier
package journal

import (
	"net/netip"
	"sync"
	"time"
)

// Stream is one of the two log streams French rules ask for.
type Stream uint8

const (
	// Connexions identify connections (kept one year by law).
	Connexions Stream = iota + 1
	// Navigation records what was browsed and the verdict (a-posteriori
	// control, shorter or equal retention).
	Navigation
)

func (s Stream) String() string {
	switch s {
	case Connexions:
		return "connexions"
	case Navigation:
		return "navigation"
	}
	return "unknown"
}

// Record is one journal record. Field names are stable: they appear in
// exports. Zero values mean "not known".
type Record struct {
	Stream Stream
	Time   time.Time
	UAI    string
	// Client is the pupil's or staff device's address and source port.
	Client netip.AddrPort
	MAC    string
	User   string
	// NAT is the public source address and port after translation.
	NAT netip.AddrPort
	// Proto is dns, http, https (spliced or intercepted) or connect for
	// what the DNS filter and the proxy record; tcp, udp, icmp, icmpv6,
	// sctp... (the IP protocol) for a flow seen by conntrack.
	Proto string
	// Dest is the destination address and port.
	Dest     netip.AddrPort
	Duration time.Duration
	// BytesIn is from the server to the client, BytesOut the other way.
	BytesIn, BytesOut int64

	Host   string // DNS name, SNI or Host header as seen
	URL    string // full URL for plain HTTP and intercepted HTTPS
	Method string
	QType  string // DNS query type
	RCode  string // DNS response code
	Status int    // HTTP status
	// Verdict is allow or block; drop for a flow the firewall dropped.
	Verdict  string
	Category string
	// Reference is the short id shown on a block page.
	Reference       string
	UpstreamLatency time.Duration

	// Zone is the client's zone of the school's IP plan (pedagogique,
	// wifi...), or "edge" for a flow the edge itself opened (the proxy's
	// and DNS filter's upstream connections).
	Zone string
	// Reason says why a flow was dropped: the name of the firewall counter
	// of the rule that dropped it ("internet.pedagogique", "quic.wifi").
	Reason string
	// Link, on a flow record, names the part of the edge that also
	// journals this connection (proxy, dns): the flow is not duplicated,
	// and its records hold the client-side detail.
	Link string

	// Lost is set only on a gap marker, a record the journal itself writes
	// when it had to drop records (disk full, writer overloaded): how many
	// records of this stream were lost just before it. Never silent.
	Lost int64
	// Seq is the record's position in its stream's hash chain, assigned by
	// the journal (ignored on Append, set on records read back).
	Seq uint64
}

// Sink receives records from the data plane. Append must not block the
// caller for long and must not keep r after it returns (copy what it keeps).
type Sink interface {
	Append(r *Record)
}

// Memory is an in-memory Sink for tests and the demo.
type Memory struct {
	mu      sync.Mutex
	records []Record
}

// Append stores a copy of r.
func (m *Memory) Append(r *Record) {
	m.mu.Lock()
	m.records = append(m.records, *r)
	m.mu.Unlock()
}

// Records returns a copy of what was appended.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.records...)
}

// Discard drops every record.
type Discard struct{}

// Append does nothing.
func (Discard) Append(*Record) {}
