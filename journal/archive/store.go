package archive

import (
	"context"
	"net/netip"
	"time"

	"vigie/journal"
)

// Store is where the archive keeps records. Its unit is the block: a run
// of one chain's records stored as one row with the small filters queries
// select by (blocks.go). SQLite (the default) serves one académie on one
// machine, PostgreSQL several replicas; a columnar engine or an object
// store can implement the same interface when volume outgrows them. The
// archive verifies signatures and chains before calling Put or PutBlock:
// a store only stores, indexes and answers.
type Store interface {
	// Chain finds a chain, registering it when create is set (ok false
	// when it is unknown and create is not set).
	Chain(ctx context.Context, k ChainKey, create bool) (c Chain, ok bool, err error)
	// Chains lists the chains of a school (all streams).
	Chains(ctx context.Context, uai string) ([]Chain, error)
	// Links returns the stored links of the records of chain with
	// sequence numbers in [from, to] (missing ones are absent).
	Links(ctx context.Context, chain int64, from, to uint64) (map[uint64]journal.Hash, error)
	// Get returns one stored record.
	Get(ctx context.Context, chain int64, seq uint64) (Stored, bool, error)
	// Put stores records of one chain, all in one transaction, and
	// accounts for [covered.First, covered.Last]: those sequence numbers
	// are no longer gaps, and anything between the chain's previous end
	// and covered.First becomes one. It returns the gaps it opened.
	Put(ctx context.Context, c Chain, recs []Stored, covered Gap) ([]Gap, error)
	// PutBlock stores one verified block of chain c as it is, replacing
	// the blocks wholly inside [b.First, b.Last] (the caller checked that
	// their records are the block's), and accounts for covered like Put.
	// It returns ErrOverlap, storing nothing, when a stored block
	// straddles the block's bounds: the caller then Puts the fresh records.
	PutBlock(ctx context.Context, c Chain, b Block, covered Gap) ([]Gap, error)
	// Gaps lists the open gaps of a school's chains.
	Gaps(ctx context.Context, uai string) ([]Gap, error)
	// Span describes the records of chain c whose time is in [from, to).
	Span(ctx context.Context, c int64, from, to time.Time) (Span, error)
	// Scan calls fn with the records matching q, chain by chain in
	// sequence order. Seq, Time, Link and Payload are filled; Host and
	// Client may not be (decode the payload). Stored.Payload is only
	// valid during the call.
	Scan(ctx context.Context, q Query, fn func(c Chain, r *Stored) error) error
	// Purge deletes the records of stream older than before, except
	// those a hold covers, and says how many went, by school.
	Purge(ctx context.Context, s journal.Stream, before time.Time, holds []Hold) (map[string]int64, error)
	// PlaceHold, ReleaseHold and Holds manage legal holds.
	PlaceHold(ctx context.Context, h Hold) (Hold, error)
	ReleaseHold(ctx context.Context, id int64, by string, at time.Time) (Hold, error)
	Holds(ctx context.Context, activeOnly bool) ([]Hold, error)
	Close() error
}

// ChainKey names a chain: a school's stream, started by one edge journal.
type ChainKey struct {
	UAI    string
	Stream journal.Stream
	ID     journal.ChainID
}

// Chain is a registered chain.
type Chain struct {
	ChainKey
	// Ref is the store's short reference of the chain.
	Ref int64
	// MaxSeq is the highest sequence number stored (0 when none).
	MaxSeq uint64
	// MaxLink is the link of record MaxSeq.
	MaxLink journal.Hash
}

// Stored is one archived record: its canonical payload, its chain link and
// the columns the indexes need.
type Stored struct {
	Seq     uint64
	Time    time.Time
	Client  netip.Addr
	Host    string
	Link    journal.Hash
	Payload []byte
	// Before is the link of record Seq-1 when a scan knows it without
	// another read (BeforeKnown): a search that picks records from a
	// block hashes their links from the record before. An export
	// starting a run there needs it (otherwise it asks Get).
	Before      journal.Hash
	BeforeKnown bool
}

// Gap is a run of missing sequence numbers of a chain.
type Gap struct {
	Chain  int64     `json:"-"`
	UAI    string    `json:"uai,omitempty"`
	Stream string    `json:"stream,omitempty"`
	First  uint64    `json:"first"`
	Last   uint64    `json:"last"`
	Found  time.Time `json:"found,omitzero"`
}

// Span is a chain's extent over a time range: the records whose time is in
// the range have sequence numbers in [FirstSeq, LastSeq].
type Span struct {
	Count    int64
	FirstSeq uint64
	LastSeq  uint64
	// InSeqRange counts all stored records in [FirstSeq, LastSeq]: more
	// than Count when records outside the time range interleave (a long
	// connection is journaled at its end with its start time).
	InSeqRange int64
	// Before is the link of record FirstSeq-1 (the genesis link when
	// FirstSeq is 1); BeforeKnown is false when that record is gone
	// (purged or never received).
	Before      journal.Hash
	BeforeKnown bool
	Last        journal.Hash
}

// Query selects records for an export. UAI and the time range are
// required; the rest narrow it.
type Query struct {
	UAI      string
	From, To time.Time
	Streams  []journal.Stream
	Client   netip.Addr
	// Domain matches the host and its subdomains.
	Domain string
	// MAC and User match exactly.
	MAC, User string
	// NAT matches the translated source address (IPv4-mapped addresses
	// unmapped), and NATPort its port when not 0.
	NAT     netip.Addr
	NATPort uint16
	// EndFrom, when set, keeps only the records that had not ended by
	// then (time plus duration at or after EndFrom): the flows still
	// open at a requisition's instant. Blocks whose records all ended
	// before are not read.
	EndFrom time.Time
	// Outside, when set on a query without client, domain, MAC or user,
	// is told of the records whose sequence number lies within the range
	// of the period's records but whose time is outside the period (they
	// interleave: a connection is journaled when it ends, with the time
	// it started). An export counts them to prove its range complete
	// without a second pass over the archive.
	Outside func(c Chain, seq uint64)
}

// filtered reports whether q selects records by what they hold (then
// Outside is not used).
func (q Query) filtered() bool {
	return q.Client.IsValid() || q.Domain != "" || q.MAC != "" || q.User != "" || q.NAT.IsValid() || !q.EndFrom.IsZero()
}

// Block is one verified run of a chain's records as an edge sealed it: the
// signed batch (segment.DecodeBatch reads it), its bounds, the link of
// its last record, its filter (NewFilter) and its marks.
type Block struct {
	First, Last uint64
	Count       int
	TMin, TMax  time.Time
	// TEnd is the latest end (time plus duration) of its records: a
	// flow that ended before another block was sealed is still found
	// by a search for the moments it lasted.
	TEnd     time.Time
	LastLink journal.Hash
	Filter   []byte
	// Marks are the links of every segment.MarkEvery-th record
	// (segment.IsMark), one after the other: a search hashes a record's
	// link from the mark before it. Nil for a block stored without them.
	Marks []byte
	Batch []byte
}

// Hold exempts a school's records (optionally one client's) in a time
// range from purge until released.
type Hold struct {
	ID         int64      `json:"id"`
	UAI        string     `json:"uai"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Client     netip.Addr `json:"client,omitzero"`
	Reference  string     `json:"reference"`
	PlacedBy   string     `json:"placed_by"`
	PlacedAt   time.Time  `json:"placed_at"`
	ReleasedBy string     `json:"released_by,omitempty"`
	ReleasedAt time.Time  `json:"released_at,omitzero"`
}

// Active reports whether the hold is in force.
func (h Hold) Active() bool { return h.ReleasedAt.IsZero() }

// Covers reports whether the hold keeps a record of school uai, client and
// time t.
func (h Hold) Covers(uai string, client netip.Addr, t time.Time) bool {
	return h.Active() && h.UAI == uai && !t.Before(h.From) && t.Before(h.To) &&
		(!h.Client.IsValid() || h.Client == client)
}
