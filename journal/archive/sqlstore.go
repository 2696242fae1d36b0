package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vigie/journal"
	"vigie/journal/segment"
)

// SQLStore is the Store on SQL: SQLite (OpenSQLite, the default) or
// PostgreSQL (OpenPostgres). The queries are shared; the dialect rebinds
// placeholders and PostgreSQL adds time partitions.
//
// A chain's records live in blocks, one row each, in two tables of the
// same shape: sealed_blocks, where ingest writes (partitioned by stream
// and month of the block's last time on PostgreSQL), and held_blocks,
// where a purge moves what a legal hold keeps of a block whose time is
// past (so that a whole partition can go). Blocks of a chain never
// overlap: a block [first, last] holds n of those sequence numbers (all
// of them, except after a purge under a hold). Reads look at both tables.
type SQLStore struct {
	w, r *sql.DB
	pg   bool
	// lockKey is PostgreSQL's advisory lock of this archive's writes
	// (locks are cluster-wide: each schema has its own).
	lockKey int64
	// partition, on PostgreSQL, makes sure the partition a block of
	// stream s ending at tmax goes to exists.
	partition func(ctx context.Context, tx *sql.Tx, s journal.Stream, tmax int64) error
	// dropPartitions, on PostgreSQL, drops the partitions of stream s
	// wholly older than before and returns the records dropped by school.
	dropPartitions func(ctx context.Context, s journal.Stream, before int64, holds []Hold) (map[string]int64, error)
	cache          blockCache
	closers        []func() error
	// decoded counts the blocks a scan decoded, and picked the records
	// a search decoded from them (tests and benchmarks see the filters
	// and the column selection at work).
	decoded, picked atomic.Int64
	// wholeBlocks makes a search decode every block its filter lets
	// through whole, as before the column selection (benchmarks
	// measure both in the same run; tests compare their answers).
	wholeBlocks bool
}

// SQLite is the SQLite store (the name callers know).
type SQLite = SQLStore

var _ Store = (*SQLStore)(nil)

// maxBlockRecords bounds a block of the archive's own encoding (a batch
// is stored whole, whatever its size).
const maxBlockRecords = 8192

var blockTables = [2]string{"sealed_blocks", "held_blocks"}

// q rebinds a query's placeholders for the dialect.
func (s *SQLStore) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// Close closes the database.
func (s *SQLStore) Close() error {
	errs := []error{s.r.Close()}
	if s.w != s.r {
		errs = append(errs, s.w.Close())
	}
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// ReverseHost returns the host with its labels reversed and each followed
// by a dot: "www.exemple.fr" -> "fr.exemple.www.".
func ReverseHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" {
		return ""
	}
	labels := strings.Split(h, ".")
	var b strings.Builder
	b.Grow(len(h) + 1)
	for i := len(labels) - 1; i >= 0; i-- {
		b.WriteString(labels[i])
		b.WriteByte('.')
	}
	return b.String()
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func scanChain(sc interface{ Scan(...any) error }) (Chain, error) {
	var c Chain
	var id, link []byte
	var stream int
	var maxSeq int64
	err := sc.Scan(&c.Ref, &c.UAI, &stream, &id, &maxSeq, &link)
	c.Stream = journal.Stream(stream)
	c.MaxSeq = uint64(maxSeq)
	copy(c.ID[:], id)
	copy(c.MaxLink[:], link)
	return c, err
}

const chainCols = `ref, uai, stream, id, max_seq, max_link`

func (s *SQLStore) Chain(ctx context.Context, k ChainKey, create bool) (Chain, bool, error) {
	for try := 0; ; try++ {
		c, err := scanChain(s.w.QueryRowContext(ctx, s.q(`SELECT `+chainCols+` FROM chains WHERE uai = ? AND stream = ? AND id = ?`), k.UAI, int(k.Stream), k.ID[:]))
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return c, false, fmt.Errorf("archive: chain: %w", err)
		}
		if !create || try > 0 {
			return c, false, nil
		}
		// Replicas may register the same chain at once: the loser's
		// insert does nothing and it reads the winner's.
		if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO chains (uai, stream, id, created) VALUES (?, ?, ?, ?) ON CONFLICT (uai, stream, id) DO NOTHING`),
			k.UAI, int(k.Stream), k.ID[:], micros(time.Now())); err != nil {
			return c, false, fmt.Errorf("archive: register chain: %w", err)
		}
	}
}

func (s *SQLStore) Chains(ctx context.Context, uai string) ([]Chain, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+chainCols+` FROM chains WHERE uai = ? ORDER BY stream, ref`), uai)
	if err != nil {
		return nil, fmt.Errorf("archive: chains: %w", err)
	}
	defer rows.Close()
	var out []Chain
	for rows.Next() {
		c, err := scanChain(rows)
		if err != nil {
			return nil, fmt.Errorf("archive: chains: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *SQLStore) chainByRef(ctx context.Context, db queryer, ref int64) (Chain, error) {
	c, err := scanChain(db.QueryRowContext(ctx, s.q(`SELECT `+chainCols+` FROM chains WHERE ref = ?`), ref))
	if err != nil {
		return c, fmt.Errorf("archive: chain %d: %w", ref, err)
	}
	return c, nil
}

// blockMeta is a stored block without its data.
type blockMeta struct {
	table       int // index in blockTables
	chain       int64
	first, last uint64
	n           int
	tmin, tmax  int64
	tend        int64
	kind        int
	lastLink    journal.Hash
	filter      []byte
}

const metaCols = `chain, first, last, n, tmin, tmax, tend, kind, last_link, bloom`

// blocks lists the blocks of both tables matching where (on the columns
// above), in the order of their first sequence number.
func (s *SQLStore) blocks(ctx context.Context, db queryer, where string, args ...any) ([]blockMeta, error) {
	var out []blockMeta
	for ti, table := range blockTables {
		bs, err := s.blocks1(ctx, db, table, ti, where, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	slices.SortFunc(out, func(a, b blockMeta) int {
		if a.chain != b.chain {
			return int(a.chain - b.chain)
		}
		return int(int64(a.first) - int64(b.first))
	})
	return out, nil
}

// overlapping lists the blocks of chain holding sequence numbers in
// [from, to]: those starting in the range and the last one before it when
// it reaches into it (blocks do not overlap, so that one is enough).
func (s *SQLStore) overlapping(ctx context.Context, db queryer, chain int64, from, to uint64) ([]blockMeta, error) {
	out, err := s.blocks(ctx, db, `chain = ? AND first >= ? AND first <= ?`, chain, int64(from), int64(min(to, 1<<62)))
	if err != nil {
		return nil, err
	}
	var before *blockMeta
	for ti, table := range blockTables {
		bs, err := s.blocks1(ctx, db, table, ti, `chain = ? AND first < ? ORDER BY first DESC LIMIT 1`, chain, int64(from))
		if err != nil {
			return nil, err
		}
		for i := range bs {
			if before == nil || bs[i].first > before.first {
				before = &bs[i]
			}
		}
	}
	if before != nil && before.last >= from {
		out = append([]blockMeta{*before}, out...)
	}
	return out, nil
}

func (s *SQLStore) blocks1(ctx context.Context, db queryer, table string, ti int, where string, args ...any) ([]blockMeta, error) {
	rows, err := db.QueryContext(ctx, s.q(`SELECT `+metaCols+` FROM `+table+` WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("archive: blocks: %w", err)
	}
	defer rows.Close()
	var out []blockMeta
	for rows.Next() {
		m := blockMeta{table: ti}
		var first, last int64
		var link []byte
		if err := rows.Scan(&m.chain, &first, &last, &m.n, &m.tmin, &m.tmax, &m.tend, &m.kind, &link, &m.filter); err != nil {
			return nil, fmt.Errorf("archive: blocks: %w", err)
		}
		m.first, m.last, m.lastLink = uint64(first), uint64(last), toHash(link)
		out = append(out, m)
	}
	return out, rows.Err()
}

// data reads a block's data.
func (s *SQLStore) data(ctx context.Context, db queryer, m *blockMeta) ([]byte, error) {
	var data []byte
	err := db.QueryRowContext(ctx, s.q(`SELECT data FROM `+blockTables[m.table]+` WHERE chain = ? AND first = ?`), m.chain, int64(m.first)).Scan(&data)
	if err != nil {
		return nil, fmt.Errorf("archive: block %d of chain %d: %w", m.first, m.chain, err)
	}
	return data, nil
}

// dataMarks reads a block's data and marks (nil when it has none).
func (s *SQLStore) dataMarks(ctx context.Context, db queryer, m *blockMeta) (data, marks []byte, err error) {
	err = db.QueryRowContext(ctx, s.q(`SELECT data, marks FROM `+blockTables[m.table]+` WHERE chain = ? AND first = ?`), m.chain, int64(m.first)).Scan(&data, &marks)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: block %d of chain %d: %w", m.first, m.chain, err)
	}
	return data, marks, nil
}

// blockCache keeps the records of the last blocks read by Get: an export
// asks for the record before each run it writes, and a filtered export's
// runs are short and close together.
type blockCache struct {
	mu      sync.Mutex
	entries []cached
	// gen counts writes: a block read before a write is not cached
	// after it.
	gen uint64
}

type cached struct {
	table       int
	chain       int64
	first, last uint64
	recs        []Stored
}

const cachedBlocks = 4

func (c *blockCache) get(m *blockMeta) []Stored {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.entries {
		// The count is in the key: a purge on another replica that
		// rewrote a block keeps its bounds but not its count.
		if e.table == m.table && e.chain == m.chain && e.first == m.first && e.last == m.last && len(e.recs) == m.n {
			// Most recently used first.
			copy(c.entries[1:i+1], c.entries[:i])
			c.entries[0] = e
			return e.recs
		}
	}
	return nil
}

func (c *blockCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *blockCache) put(e cached, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) < cachedBlocks {
		c.entries = append(c.entries, cached{})
	}
	copy(c.entries[1:], c.entries[:len(c.entries)-1])
	c.entries[0] = e
}

// forget empties the cache (a write changed blocks).
func (c *blockCache) forget() {
	c.mu.Lock()
	c.entries = nil
	c.gen++
	c.mu.Unlock()
}

// records returns the records of a block, decoded once and cached.
func (s *SQLStore) records(ctx context.Context, db queryer, m *blockMeta) ([]Stored, error) {
	if recs := s.cache.get(m); recs != nil {
		return recs, nil
	}
	gen := s.cache.generation()
	data, err := s.data(ctx, db, m)
	if err != nil {
		return nil, err
	}
	recs := make([]Stored, 0, m.n)
	var arena []byte
	err = decodeBlock(m.kind, data, func(st *Stored, _ *journal.Record) error {
		if len(arena)+len(st.Payload) > cap(arena) {
			arena = make([]byte, 0, max(1<<20, len(st.Payload)))
		}
		start := len(arena)
		arena = append(arena, st.Payload...)
		r := *st
		r.Payload = arena[start:len(arena):len(arena)]
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive: block %d of chain %d: %w", m.first, m.chain, err)
	}
	s.cache.put(cached{table: m.table, chain: m.chain, first: m.first, last: m.last, recs: recs}, gen)
	return recs, nil
}

func (s *SQLStore) Links(ctx context.Context, chain int64, from, to uint64) (map[uint64]journal.Hash, error) {
	bs, err := s.overlapping(ctx, s.w, chain, from, to)
	if err != nil {
		return nil, err
	}
	out := map[uint64]journal.Hash{}
	for i := range bs {
		m := &bs[i]
		if m.last == from {
			// The block before the range: its last link is stored.
			out[m.last] = m.lastLink
			continue
		}
		recs, err := s.records(ctx, s.w, m)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Seq >= from && r.Seq <= to {
				out[r.Seq] = r.Link
			}
		}
	}
	return out, nil
}

func (s *SQLStore) Get(ctx context.Context, chain int64, seq uint64) (Stored, bool, error) {
	return s.get(ctx, s.r, chain, seq)
}

func (s *SQLStore) get(ctx context.Context, db queryer, chain int64, seq uint64) (Stored, bool, error) {
	bs, err := s.overlapping(ctx, db, chain, seq, seq)
	if err != nil || len(bs) == 0 {
		return Stored{}, false, err
	}
	recs, err := s.records(ctx, db, &bs[0])
	if err != nil {
		return Stored{}, false, err
	}
	i, ok := slices.BinarySearchFunc(recs, seq, func(r Stored, seq uint64) int {
		switch {
		case r.Seq < seq:
			return -1
		case r.Seq > seq:
			return 1
		}
		return 0
	})
	if !ok {
		return Stored{}, false, nil
	}
	return recs[i], true, nil
}

// insertBlock writes one block row into table.
func (s *SQLStore) insertBlock(ctx context.Context, tx *sql.Tx, table string, c Chain, kind int, first, last uint64, n int, tmin, tmax, tend int64, lastLink journal.Hash, filter, marks, data []byte) error {
	if s.partition != nil && table == blockTables[0] {
		if err := s.partition(ctx, tx, c.Stream, tmax); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+table+` (chain, stream, first, last, n, tmin, tmax, tend, kind, last_link, bloom, marks, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.Ref, int(c.Stream), int64(first), int64(last), n, tmin, tmax, max(tend, tmax), kind, lastLink[:], filter, marks, data)
	if err != nil {
		return fmt.Errorf("archive: insert block %d-%d: %w", first, last, err)
	}
	return nil
}

// putRecords stores recs (sorted by sequence, one chain) as blocks of
// the archive's encoding in table, cut at every break in the sequence (so
// that no block straddles another) and every maxBlockRecords records.
func (s *SQLStore) putRecords(ctx context.Context, tx *sql.Tx, table string, c Chain, recs []Stored, cutAtBreaks bool) error {
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && end-start < maxBlockRecords && (!cutAtBreaks || recs[end].Seq == recs[end-1].Seq+1) {
			end++
		}
		eb, err := encodeRecords(recs[start:end])
		if err != nil {
			return fmt.Errorf("archive: encode block: %w", err)
		}
		if err := s.insertBlock(ctx, tx, table, c, kindRecords, eb.first, eb.last, eb.count, eb.tmin, eb.tmax, eb.tend, eb.lastLink, eb.filter, nil, eb.data); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (s *SQLStore) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("archive: begin: %w", err)
	}
	if s.pg {
		// Replicas write one at a time, like SQLite's one writer: the
		// continuity checks of ingest and the gap accounting need it.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockKey); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("archive: lock: %w", err)
		}
	}
	return tx, nil
}

func (s *SQLStore) Put(ctx context.Context, c Chain, recs []Stored, covered Gap) ([]Gap, error) {
	defer s.cache.forget()
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := s.putRecords(ctx, tx, blockTables[0], c, recs, true); err != nil {
		return nil, err
	}
	var top *Stored
	for i := range recs {
		if top == nil || recs[i].Seq > top.Seq {
			top = &recs[i]
		}
	}
	var maxSeq uint64
	var maxLink journal.Hash
	if top != nil {
		maxSeq, maxLink = top.Seq, top.Link
	}
	opened, err := s.account(ctx, tx, c, covered, maxSeq, maxLink)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("archive: commit: %w", err)
	}
	return opened, nil
}

// ErrOverlap: a stored block straddles the bounds of the block to store.
var ErrOverlap = errors.New("archive: a stored block straddles the block's bounds")

func (s *SQLStore) PutBlock(ctx context.Context, c Chain, b Block, covered Gap) ([]Gap, error) {
	defer s.cache.forget()
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	old, err := s.overlapping(ctx, tx, c.Ref, b.First, b.Last)
	if err != nil {
		return nil, err
	}
	for _, m := range old {
		if m.first < b.First || m.last > b.Last {
			return nil, ErrOverlap
		}
	}
	if len(old) == 1 && old[0].kind == kindBatch && old[0].first == b.First && old[0].last == b.Last {
		// The same batch again (a resent segment): nothing to replace.
		old = nil
		b.Batch = nil
	}
	for _, m := range old {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+blockTables[m.table]+` WHERE chain = ? AND first = ?`), c.Ref, int64(m.first)); err != nil {
			return nil, fmt.Errorf("archive: replace block %d: %w", m.first, err)
		}
	}
	if b.Batch != nil {
		if err := s.insertBlock(ctx, tx, blockTables[0], c, kindBatch, b.First, b.Last, b.Count, micros(b.TMin), micros(b.TMax), micros(b.TEnd), b.LastLink, b.Filter, b.Marks, b.Batch); err != nil {
			return nil, err
		}
	}
	opened, err := s.account(ctx, tx, c, covered, b.Last, b.LastLink)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("archive: commit: %w", err)
	}
	return opened, nil
}

// account updates the chain's end and its gaps for a stored range.
func (s *SQLStore) account(ctx context.Context, tx *sql.Tx, c Chain, covered Gap, top uint64, topLink journal.Hash) ([]Gap, error) {
	var oldMax int64
	var oldLink []byte
	if err := tx.QueryRowContext(ctx, s.q(`SELECT max_seq, max_link FROM chains WHERE ref = ?`), c.Ref).Scan(&oldMax, &oldLink); err != nil {
		return nil, fmt.Errorf("archive: chain %d: %w", c.Ref, err)
	}
	now := micros(time.Now())
	var opened []Gap
	if covered.First > uint64(oldMax)+1 {
		g := Gap{Chain: c.Ref, UAI: c.UAI, Stream: c.Stream.String(), First: uint64(oldMax) + 1, Last: covered.First - 1, Found: fromMicros(now)}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO gaps (chain, first, last, found) VALUES (?, ?, ?, ?)`), c.Ref, int64(g.First), int64(g.Last), now); err != nil {
			return nil, fmt.Errorf("archive: gap: %w", err)
		}
		opened = append(opened, g)
	}
	if covered.First <= uint64(oldMax) {
		// Filling in: cut the covered range out of the gaps it overlaps.
		rows, err := tx.QueryContext(ctx, s.q(`SELECT first, last, found FROM gaps WHERE chain = ? AND last >= ? AND first <= ?`), c.Ref, int64(covered.First), int64(covered.Last))
		if err != nil {
			return nil, fmt.Errorf("archive: gaps: %w", err)
		}
		var over []Gap
		for rows.Next() {
			var g Gap
			var first, last, found int64
			if err := rows.Scan(&first, &last, &found); err != nil {
				rows.Close()
				return nil, err
			}
			g.First, g.Last, g.Found = uint64(first), uint64(last), fromMicros(found)
			over = append(over, g)
		}
		rows.Close()
		for _, g := range over {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM gaps WHERE chain = ? AND first = ?`), c.Ref, int64(g.First)); err != nil {
				return nil, err
			}
			for _, rest := range []Gap{{First: g.First, Last: covered.First - 1}, {First: covered.Last + 1, Last: g.Last}} {
				if rest.First <= rest.Last && rest.First >= g.First && rest.Last <= g.Last {
					if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO gaps (chain, first, last, found) VALUES (?, ?, ?, ?)`), c.Ref, int64(rest.First), int64(rest.Last), micros(g.Found)); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if top > uint64(oldMax) {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE chains SET max_seq = ?, max_link = ? WHERE ref = ?`), int64(top), topLink[:], c.Ref); err != nil {
			return nil, fmt.Errorf("archive: chain: %w", err)
		}
	}
	return opened, nil
}

func (s *SQLStore) Gaps(ctx context.Context, uai string) ([]Gap, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT g.chain, c.uai, c.stream, g.first, g.last, g.found FROM gaps g JOIN chains c ON c.ref = g.chain WHERE c.uai = ? ORDER BY g.chain, g.first`), uai)
	if err != nil {
		return nil, fmt.Errorf("archive: gaps: %w", err)
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var g Gap
		var stream int
		var first, last, found int64
		if err := rows.Scan(&g.Chain, &g.UAI, &stream, &first, &last, &found); err != nil {
			return nil, fmt.Errorf("archive: gaps: %w", err)
		}
		g.First, g.Last = uint64(first), uint64(last)
		g.Stream, g.Found = journal.Stream(stream).String(), fromMicros(found)
		out = append(out, g)
	}
	return out, rows.Err()
}

// readTx is a consistent view for a read of several queries.
func (s *SQLStore) readTx(ctx context.Context) (*sql.Tx, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.pg {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("archive: read: %w", err)
	}
	return tx, nil
}

func (s *SQLStore) Span(ctx context.Context, ref int64, from, to time.Time) (Span, error) {
	var sp Span
	tx, err := s.readTx(ctx)
	if err != nil {
		return sp, err
	}
	defer tx.Rollback()
	c, err := s.chainByRef(ctx, tx, ref)
	if err != nil {
		return sp, err
	}
	f, t := micros(from), micros(to)
	bs, err := s.blocks(ctx, tx, `chain = ? AND tmax >= ? AND tmin < ?`, ref, f, t)
	if err != nil {
		return sp, err
	}
	for i := range bs {
		m := &bs[i]
		if m.tmin >= f && m.tmax < t {
			sp.Count += int64(m.n)
			sp.FirstSeq, sp.LastSeq = minSeq(sp.FirstSeq, m.first), max(sp.LastSeq, m.last)
			continue
		}
		recs, err := s.records(ctx, tx, m)
		if err != nil {
			return sp, err
		}
		for _, r := range recs {
			if rt := micros(r.Time); rt >= f && rt < t {
				sp.Count++
				sp.FirstSeq, sp.LastSeq = minSeq(sp.FirstSeq, r.Seq), max(sp.LastSeq, r.Seq)
			}
		}
	}
	if sp.Count == 0 {
		return Span{}, nil
	}
	in, err := s.overlapping(ctx, tx, ref, sp.FirstSeq, sp.LastSeq)
	if err != nil {
		return sp, err
	}
	for i := range in {
		m := &in[i]
		if m.first >= sp.FirstSeq && m.last <= sp.LastSeq {
			sp.InSeqRange += int64(m.n)
		} else {
			recs, err := s.records(ctx, tx, m)
			if err != nil {
				return sp, err
			}
			for _, r := range recs {
				if r.Seq >= sp.FirstSeq && r.Seq <= sp.LastSeq {
					sp.InSeqRange++
				}
			}
		}
		if m.last == sp.LastSeq {
			sp.Last = m.lastLink
		}
	}
	if sp.FirstSeq == 1 {
		sp.Before, sp.BeforeKnown = journal.Genesis(c.UAI, c.Stream, c.ID), true
	} else if r, ok, err := s.get(ctx, tx, ref, sp.FirstSeq-1); err != nil {
		return sp, err
	} else if ok {
		sp.Before, sp.BeforeKnown = r.Link, true
	}
	if sp.Last == (journal.Hash{}) {
		r, ok, err := s.get(ctx, tx, ref, sp.LastSeq)
		if err != nil || !ok {
			return sp, fmt.Errorf("archive: span: record %d vanished: %v", sp.LastSeq, err)
		}
		sp.Last = r.Link
	}
	return sp, nil
}

func minSeq(a, b uint64) uint64 {
	if a == 0 {
		return b
	}
	return min(a, b)
}

func (s *SQLStore) Scan(ctx context.Context, q Query, fn func(c Chain, r *Stored) error) error {
	chains, err := s.Chains(ctx, q.UAI)
	if err != nil {
		return err
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range chains {
		if len(q.Streams) > 0 && !slices.Contains(q.Streams, c.Stream) {
			continue
		}
		if err := s.scanChain(ctx, tx, c, q, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanChain reads one chain's records of the period from its blocks. A
// query by content (client, domain, NAT) reads only the blocks whose
// filter may hold it, and those column by column (search.go). Otherwise
// the records of the period have sequence numbers in [lo, hi], found from
// the blocks' time bounds, and every block in that range is read, so that
// the records outside the period that interleave are reported (Outside).
func (s *SQLStore) scanChain(ctx context.Context, tx *sql.Tx, c Chain, q Query, fn func(c Chain, r *Stored) error) error {
	from, to := micros(q.From), micros(q.To)
	bs, err := s.blocks(ctx, tx, `chain = ? AND tmax >= ? AND tmin < ?`, c.Ref, from, to)
	if err != nil || len(bs) == 0 {
		return err
	}
	probes := q.probes()
	outside := q.Outside
	if q.filtered() {
		outside = nil
	} else {
		// The whole sequence range: blocks wholly outside the period
		// but between two in it hold records that interleave.
		lo, hi := bs[0].first, bs[0].last
		for _, m := range bs {
			lo, hi = min(lo, m.first), max(hi, m.last)
		}
		if bs, err = s.overlapping(ctx, tx, c.Ref, lo, hi); err != nil {
			return err
		}
	}
	if q.filtered() {
		return s.scanFiltered(ctx, tx, c, q, bs, probes, fn)
	}
	// Records outside the period wait here until a record of the period
	// follows them: only those between the period's first and last
	// records are reported.
	var pending []uint64
	seen := false
	for i := range bs {
		m := &bs[i]
		data, err := s.data(ctx, tx, m)
		if err != nil {
			return err
		}
		s.decoded.Add(1)
		err = decodeBlock(m.kind, data, func(st *Stored, r *journal.Record) error {
			t := micros(st.Time)
			if t < from || t >= to {
				if outside != nil && seen {
					pending = append(pending, st.Seq)
				}
				return nil
			}
			seen = true
			for _, p := range pending {
				outside(c, p)
			}
			pending = pending[:0]
			return fn(c, st)
		})
		if err != nil {
			return fmt.Errorf("archive: block %d of chain %d: %w", m.first, c.Ref, err)
		}
	}
	return nil
}

// scanWindow is how many blocks a filtered scan reads at once, beside
// the caller: reading (inflate, columns, the records picked and their
// links) is the whole cost of a search, and it spreads over the cores
// while the matches are delivered in order.
const scanWindow = 3

type matched struct {
	recs []Stored
	err  error
}

// scanFiltered delivers the records of the period that q selects, from
// the blocks of bs whose filter may hold them.
func (s *SQLStore) scanFiltered(ctx context.Context, tx *sql.Tx, c Chain, q Query, bs []blockMeta, probes []uint64, fn func(c Chain, r *Stored) error) error {
	var queue []chan matched
	deliver := func() error {
		res := <-queue[0]
		queue = queue[1:]
		if res.err != nil {
			return res.err
		}
		for i := range res.recs {
			if err := fn(c, &res.recs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	// Decoders still running when an error returns finish on their own
	// into their buffered channel. At most scanWindow run at once, each
	// in Buffers it takes from free and gives back: a scan reuses them
	// from block to block, and drops them when it returns.
	free := make(chan *segment.Buffers, scanWindow)
	for range scanWindow {
		free <- new(segment.Buffers)
	}
	for i := range bs {
		m := &bs[i]
		if slices.ContainsFunc(probes, func(h uint64) bool { return !mayHold(m.filter, h) }) {
			continue
		}
		if !q.EndFrom.IsZero() && m.tend < micros(q.EndFrom) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, marks, err := s.dataMarks(ctx, tx, m)
		if err != nil {
			return err
		}
		s.decoded.Add(1)
		ch := make(chan matched, 1)
		queue = append(queue, ch)
		go func(m blockMeta) {
			var out matched
			keep := q.keeper(c, &out.recs)
			var n int
			if s.wholeBlocks {
				out.err = decodeBlock(m.kind, data, func(st *Stored, r *journal.Record) error { n++; return keep(st, r) })
			} else {
				bufs := <-free
				n, out.err = searchBlock(q, m.kind, m.tmin, m.tmax, data, marks, bufs, keep)
				free <- bufs
			}
			s.picked.Add(int64(n))
			if out.err != nil {
				out.err = fmt.Errorf("archive: block %d of chain %d: %w", m.first, c.Ref, out.err)
			}
			ch <- out
		}(*m)
		if len(queue) >= scanWindow {
			if err := deliver(); err != nil {
				return err
			}
		}
	}
	for len(queue) > 0 {
		if err := deliver(); err != nil {
			return err
		}
	}
	return nil
}

// matchesIdentity says whether r is of the device (MAC) or user q asks
// for (every record is when neither is asked).
func (q Query) matchesIdentity(r *journal.Record) bool {
	return (q.MAC == "" || strings.EqualFold(r.MAC, q.MAC)) && (q.User == "" || r.User == q.User)
}

func (s *SQLStore) Purge(ctx context.Context, st journal.Stream, before time.Time, holds []Hold) (map[string]int64, error) {
	defer s.cache.forget()
	out := map[string]int64{}
	b := micros(before)
	if s.dropPartitions != nil {
		dropped, err := s.dropPartitions(ctx, st, b, holds)
		for k, v := range dropped {
			out[k] += v
		}
		if err != nil {
			return out, err
		}
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT ref, uai, stream, id, max_seq, max_link FROM chains WHERE stream = ?`), int(st))
	if err != nil {
		return out, fmt.Errorf("archive: purge: %w", err)
	}
	var chains []Chain
	for rows.Next() {
		c, err := scanChain(rows)
		if err != nil {
			rows.Close()
			return out, fmt.Errorf("archive: purge: %w", err)
		}
		chains = append(chains, c)
	}
	rows.Close()
	for _, c := range chains {
		var mine []Hold
		for _, h := range holds {
			if h.Active() && h.UAI == c.UAI {
				mine = append(mine, h)
			}
		}
		n, err := s.purgeChain(ctx, c, b, mine)
		out[c.UAI] += n
		if err != nil {
			return out, fmt.Errorf("archive: purge %s: %w", c.UAI, err)
		}
	}
	return out, nil
}

// purgeChain deletes one chain's records older than before (µs) that no
// hold keeps, in one transaction: blocks wholly older and held by nothing
// go whole; the others that lose records are written again with what is
// left, into held_blocks when they are wholly older (what remains is
// there only for a hold) and in place otherwise.
func (s *SQLStore) purgeChain(ctx context.Context, c Chain, before int64, holds []Hold) (int64, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	old, err := s.blocks(ctx, tx, `chain = ? AND tmin < ?`, c.Ref, before)
	if err != nil {
		return 0, err
	}
	var n int64
	for i := range old {
		m := &old[i]
		heldAny := slices.ContainsFunc(holds, func(h Hold) bool { return micros(h.From) <= m.tmax && micros(h.To) > m.tmin })
		del := func() error {
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+blockTables[m.table]+` WHERE chain = ? AND first = ?`), c.Ref, int64(m.first))
			return err
		}
		if m.tmax < before && !heldAny {
			if err := del(); err != nil {
				return 0, err
			}
			n += int64(m.n)
			continue
		}
		data, err := s.data(ctx, tx, m)
		if err != nil {
			return 0, err
		}
		var keep []Stored
		var dec journal.Decoder
		var scratch journal.Record
		err = decodeBlock(m.kind, data, func(st *Stored, r *journal.Record) error {
			t := st.Time
			if micros(t) < before {
				rec, err := recordOf(st, r, &dec, &scratch)
				client := st.Client
				if err == nil {
					client = rec.Client.Addr()
				}
				if !slices.ContainsFunc(holds, func(h Hold) bool { return h.Covers(c.UAI, client, t) }) {
					return nil
				}
			}
			k := *st
			k.Payload = append([]byte(nil), st.Payload...)
			keep = append(keep, k)
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("block %d: %w", m.first, err)
		}
		if len(keep) == m.n {
			continue
		}
		if err := del(); err != nil {
			return 0, err
		}
		n += int64(m.n - len(keep))
		table := blockTables[0]
		if m.tmax < before {
			table = blockTables[1]
		}
		// What is left keeps the block's bounds: no other block can
		// come between its records.
		if len(keep) > 0 {
			if err := s.putRecords(ctx, tx, table, c, keep, false); err != nil {
				return 0, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

func scanHold(sc interface{ Scan(...any) error }) (Hold, error) {
	var h Hold
	var from, to, placed, released int64
	var client string
	err := sc.Scan(&h.ID, &h.UAI, &from, &to, &client, &h.Reference, &h.PlacedBy, &placed, &h.ReleasedBy, &released)
	h.From, h.To, h.PlacedAt, h.ReleasedAt = fromMicros(from), fromMicros(to), fromMicros(placed), fromMicros(released)
	h.Client, _ = netip.ParseAddr(client)
	return h, err
}

const holdCols = `id, uai, start, "end", client, reference, placed_by, placed_at, released_by, released_at`

func (s *SQLStore) PlaceHold(ctx context.Context, h Hold) (Hold, error) {
	err := s.w.QueryRowContext(ctx, s.q(`INSERT INTO holds (uai, start, "end", client, reference, placed_by, placed_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		h.UAI, micros(h.From), micros(h.To), addrText(h.Client), h.Reference, h.PlacedBy, micros(h.PlacedAt)).Scan(&h.ID)
	if err != nil {
		return h, fmt.Errorf("archive: place hold: %w", err)
	}
	return h, nil
}

// ErrNotFound is returned for an unknown hold.
var ErrNotFound = errors.New("archive: not found")

func (s *SQLStore) ReleaseHold(ctx context.Context, id int64, by string, at time.Time) (Hold, error) {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE holds SET released_by = ?, released_at = ? WHERE id = ? AND released_at = 0`), by, micros(at), id)
	if err != nil {
		return Hold{}, fmt.Errorf("archive: release hold: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Hold{}, fmt.Errorf("archive: hold %d: %w (or already released)", id, ErrNotFound)
	}
	return scanHold(s.w.QueryRowContext(ctx, s.q(`SELECT `+holdCols+` FROM holds WHERE id = ?`), id))
}

func (s *SQLStore) Holds(ctx context.Context, activeOnly bool) ([]Hold, error) {
	q := `SELECT ` + holdCols + ` FROM holds`
	if activeOnly {
		q += ` WHERE released_at = 0`
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("archive: holds: %w", err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("archive: holds: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// ErrKeyMismatch means an edge presented another key than the one pinned.
var ErrKeyMismatch = errors.New("archive: the edge presents another sealing key than the one pinned to it")

// PinEdgeKey records an edge's sealing key the first time it is seen and
// refuses any other key for that edge afterwards (trust on first use,
// behind the edge's token: the token says which edge, the pin says which
// key). It reports whether the key was pinned just now.
func (s *SQLStore) PinEdgeKey(ctx context.Context, edge, uai string, pub []byte) (bool, error) {
	res, err := s.w.ExecContext(ctx, s.q(`INSERT INTO edge_keys (edge, uai, pub, first_seen) VALUES (?, ?, ?, ?) ON CONFLICT (edge) DO NOTHING`), edge, uai, pub, micros(time.Now()))
	if err != nil {
		return false, fmt.Errorf("archive: pin key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	var pinned []byte
	var pinnedUAI string
	if err := s.w.QueryRowContext(ctx, s.q(`SELECT pub, uai FROM edge_keys WHERE edge = ?`), edge).Scan(&pinned, &pinnedUAI); err != nil {
		return false, fmt.Errorf("archive: pin key: %w", err)
	}
	if string(pinned) != string(pub) || pinnedUAI != uai {
		return false, ErrKeyMismatch
	}
	return false, nil
}

// UnpinEdgeKey forgets an edge's key (the RSSI does it when an edge is
// reinstalled with a new key).
func (s *SQLStore) UnpinEdgeKey(ctx context.Context, edge string) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM edge_keys WHERE edge = ?`), edge)
	if err != nil {
		return fmt.Errorf("archive: unpin key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("archive: edge %s: %w", edge, ErrNotFound)
	}
	return nil
}

// toHash copies a stored link; a damaged one (wrong length) comes out
// zero, which no chain check accepts.
func toHash(b []byte) journal.Hash {
	var h journal.Hash
	if len(b) == len(h) {
		copy(h[:], b)
	}
	return h
}
