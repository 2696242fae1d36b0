package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"vigie/journal"
)

// SQLite is the default Store: one database file, WAL mode, written through
// one connection (SQLite serializes writers anyway) with FULL sync so that
// an acknowledged batch survives a power cut, read through a small pool.
type SQLite struct {
	w, r *sql.DB
}

var _ Store = (*SQLite)(nil)

// schema: times are Unix microseconds (the journal's precision). Records
// are keyed by (chain, seq), so the primary key scan is the chain order an
// export needs; the three secondary indexes are the ones requisitions ask
// by: school and time, client and time, host and time. Hosts are stored
// with their labels reversed ("fr.exemple.www.") so that a domain and all
// its subdomains are one index range.
const schema = `
CREATE TABLE IF NOT EXISTS chains (
	ref INTEGER PRIMARY KEY,
	uai TEXT NOT NULL,
	stream INTEGER NOT NULL,
	id BLOB NOT NULL,
	max_seq INTEGER NOT NULL DEFAULT 0,
	max_link BLOB,
	created INTEGER NOT NULL,
	UNIQUE (uai, stream, id)
);
CREATE TABLE IF NOT EXISTS records (
	chain INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	uai TEXT NOT NULL,
	stream INTEGER NOT NULL,
	time INTEGER NOT NULL,
	client TEXT NOT NULL,
	rhost TEXT NOT NULL,
	link BLOB NOT NULL,
	payload BLOB NOT NULL,
	PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_school_time ON records (uai, stream, time);
CREATE INDEX IF NOT EXISTS records_client_time ON records (client, time);
CREATE INDEX IF NOT EXISTS records_host_time ON records (rhost, time);
CREATE TABLE IF NOT EXISTS gaps (
	chain INTEGER NOT NULL,
	first INTEGER NOT NULL,
	last INTEGER NOT NULL,
	found INTEGER NOT NULL,
	PRIMARY KEY (chain, first)
);
CREATE TABLE IF NOT EXISTS holds (
	id INTEGER PRIMARY KEY,
	uai TEXT NOT NULL,
	start INTEGER NOT NULL,
	end INTEGER NOT NULL,
	client TEXT NOT NULL DEFAULT '',
	reference TEXT NOT NULL,
	placed_by TEXT NOT NULL,
	placed_at INTEGER NOT NULL,
	released_by TEXT NOT NULL DEFAULT '',
	released_at INTEGER NOT NULL DEFAULT 0
);
`

// OpenSQLite opens (creating if needed) the archive database at path.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	// A large page cache keeps the three secondary indexes (inserted in
	// random order) in memory during a batch instead of spilling to the
	// WAL and reading pages back through system calls; mmap serves reads
	// without a copy per page. Measured in BenchmarkIngest.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=cache_size(-131072)&_pragma=mmap_size(4294967296)&_pragma=temp_store(memory)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.Exec(schema + ";" + keysSchema + ";" + blocksSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("archive: %s: schema: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("archive: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &SQLite{w: w, r: r}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return errors.Join(s.r.Close(), s.w.Close()) }

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

func scanChain(sc interface{ Scan(...any) error }) (Chain, error) {
	var c Chain
	var id, link []byte
	var stream int
	err := sc.Scan(&c.Ref, &c.UAI, &stream, &id, &c.MaxSeq, &link)
	c.Stream = journal.Stream(stream)
	copy(c.ID[:], id)
	copy(c.MaxLink[:], link)
	return c, err
}

const chainCols = `ref, uai, stream, id, max_seq, max_link`

func (s *SQLite) Chain(ctx context.Context, k ChainKey, create bool) (Chain, bool, error) {
	c, err := scanChain(s.w.QueryRowContext(ctx, `SELECT `+chainCols+` FROM chains WHERE uai = ? AND stream = ? AND id = ?`, k.UAI, int(k.Stream), k.ID[:]))
	if err == nil {
		return c, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return c, false, fmt.Errorf("archive: chain: %w", err)
	}
	if !create {
		return c, false, nil
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO chains (uai, stream, id, created) VALUES (?, ?, ?, ?)`, k.UAI, int(k.Stream), k.ID[:], micros(time.Now()))
	if err != nil {
		return c, false, fmt.Errorf("archive: register chain: %w", err)
	}
	ref, _ := res.LastInsertId()
	// A new chain has all its (no) records in blocks; if this insert is
	// lost, MigrateBlocks lists the chain later.
	if _, err := s.w.ExecContext(ctx, `INSERT OR IGNORE INTO block_chains (chain) VALUES (?)`, ref); err != nil {
		return Chain{}, false, fmt.Errorf("archive: register chain: %w", err)
	}
	return Chain{ChainKey: k, Ref: ref}, true, nil
}

func (s *SQLite) Chains(ctx context.Context, uai string) ([]Chain, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+chainCols+` FROM chains WHERE uai = ? ORDER BY stream, ref`, uai)
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

func (s *SQLite) Links(ctx context.Context, chain int64, from, to uint64) (map[uint64]journal.Hash, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT seq, link FROM records WHERE chain = ? AND seq BETWEEN ? AND ?`, chain, from, to)
	if err != nil {
		return nil, fmt.Errorf("archive: links: %w", err)
	}
	defer rows.Close()
	out := map[uint64]journal.Hash{}
	for rows.Next() {
		var seq uint64
		var link []byte
		if err := rows.Scan(&seq, &link); err != nil {
			return nil, fmt.Errorf("archive: links: %w", err)
		}
		out[seq] = toHash(link)
	}
	return out, rows.Err()
}

func (s *SQLite) Get(ctx context.Context, chain int64, seq uint64) (Stored, bool, error) {
	var r Stored
	var t int64
	var client, rhost string
	var link []byte
	err := s.r.QueryRowContext(ctx, `SELECT seq, time, client, rhost, link, payload FROM records WHERE chain = ? AND seq = ?`, chain, seq).
		Scan(&r.Seq, &t, &client, &rhost, &link, &r.Payload)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("archive: record %d: %w", seq, err)
	}
	r.Time = fromMicros(t)
	r.Client, _ = netip.ParseAddr(client)
	r.Link = toHash(link)
	return r, true, nil
}

func (s *SQLite) Put(ctx context.Context, c Chain, recs []Stored, covered Gap) ([]Gap, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback()
	var maxSeq uint64
	var maxLink []byte
	if err := tx.QueryRowContext(ctx, `SELECT max_seq, max_link FROM chains WHERE ref = ?`, c.Ref).Scan(&maxSeq, &maxLink); err != nil {
		return nil, fmt.Errorf("archive: chain %d: %w", c.Ref, err)
	}
	// Rows go in 64 at a time: one statement per row costs more in the
	// driver than SQLite spends storing it.
	const perStmt = 64
	const cols = `INSERT INTO records (chain, seq, uai, stream, time, client, rhost, link, payload) VALUES `
	one := "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
	full, err := tx.PrepareContext(ctx, cols+strings.TrimSuffix(strings.Repeat(one+",", perStmt), ","))
	if err != nil {
		return nil, fmt.Errorf("archive: insert: %w", err)
	}
	defer full.Close()
	args := make([]any, 0, 9*perStmt)
	for start := 0; start < len(recs); start += perStmt {
		chunk := recs[start:min(start+perStmt, len(recs))]
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			args = append(args, c.Ref, r.Seq, c.UAI, int(c.Stream), micros(r.Time), addrText(r.Client), ReverseHost(r.Host), r.Link[:], r.Payload)
			if r.Seq > maxSeq {
				maxSeq, maxLink = r.Seq, r.Link[:]
			}
		}
		if len(chunk) == perStmt {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, cols+strings.TrimSuffix(strings.Repeat(one+",", len(chunk)), ","), args...)
		}
		if err != nil {
			return nil, fmt.Errorf("archive: insert records %d-%d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	if err := putBlocks(ctx, tx, c.Ref, recs); err != nil {
		return nil, err
	}
	now := micros(time.Now())
	var opened []Gap
	var oldMax uint64
	if err := tx.QueryRowContext(ctx, `SELECT max_seq FROM chains WHERE ref = ?`, c.Ref).Scan(&oldMax); err != nil {
		return nil, fmt.Errorf("archive: chain %d: %w", c.Ref, err)
	}
	if covered.First > oldMax+1 {
		g := Gap{Chain: c.Ref, UAI: c.UAI, Stream: c.Stream.String(), First: oldMax + 1, Last: covered.First - 1, Found: fromMicros(now)}
		if _, err := tx.ExecContext(ctx, `INSERT INTO gaps (chain, first, last, found) VALUES (?, ?, ?, ?)`, c.Ref, g.First, g.Last, now); err != nil {
			return nil, fmt.Errorf("archive: gap: %w", err)
		}
		opened = append(opened, g)
	}
	if covered.First <= oldMax {
		// Filling in: cut the covered range out of the gaps it overlaps.
		rows, err := tx.QueryContext(ctx, `SELECT first, last, found FROM gaps WHERE chain = ? AND last >= ? AND first <= ?`, c.Ref, covered.First, covered.Last)
		if err != nil {
			return nil, fmt.Errorf("archive: gaps: %w", err)
		}
		var over []Gap
		for rows.Next() {
			var g Gap
			var found int64
			if err := rows.Scan(&g.First, &g.Last, &found); err != nil {
				rows.Close()
				return nil, err
			}
			g.Found = fromMicros(found)
			over = append(over, g)
		}
		rows.Close()
		for _, g := range over {
			if _, err := tx.ExecContext(ctx, `DELETE FROM gaps WHERE chain = ? AND first = ?`, c.Ref, g.First); err != nil {
				return nil, err
			}
			for _, rest := range []Gap{{First: g.First, Last: covered.First - 1}, {First: covered.Last + 1, Last: g.Last}} {
				if rest.First <= rest.Last && rest.First >= g.First && rest.Last <= g.Last {
					if _, err := tx.ExecContext(ctx, `INSERT INTO gaps (chain, first, last, found) VALUES (?, ?, ?, ?)`, c.Ref, rest.First, rest.Last, micros(g.Found)); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE chains SET max_seq = ?, max_link = ? WHERE ref = ?`, maxSeq, maxLink, c.Ref); err != nil {
		return nil, fmt.Errorf("archive: chain: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("archive: commit: %w", err)
	}
	return opened, nil
}

func (s *SQLite) Gaps(ctx context.Context, uai string) ([]Gap, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT g.chain, c.uai, c.stream, g.first, g.last, g.found FROM gaps g JOIN chains c ON c.ref = g.chain WHERE c.uai = ? ORDER BY g.chain, g.first`, uai)
	if err != nil {
		return nil, fmt.Errorf("archive: gaps: %w", err)
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var g Gap
		var stream int
		var found int64
		if err := rows.Scan(&g.Chain, &g.UAI, &stream, &g.First, &g.Last, &found); err != nil {
			return nil, fmt.Errorf("archive: gaps: %w", err)
		}
		g.Stream, g.Found = journal.Stream(stream).String(), fromMicros(found)
		out = append(out, g)
	}
	return out, rows.Err()
}

func (s *SQLite) chainByRef(ctx context.Context, ref int64) (Chain, error) {
	c, err := scanChain(s.r.QueryRowContext(ctx, `SELECT `+chainCols+` FROM chains WHERE ref = ?`, ref))
	if err != nil {
		return c, fmt.Errorf("archive: chain %d: %w", ref, err)
	}
	return c, nil
}

func (s *SQLite) Span(ctx context.Context, ref int64, from, to time.Time) (Span, error) {
	var sp Span
	c, err := s.chainByRef(ctx, ref)
	if err != nil {
		return sp, err
	}
	var lo, hi sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT count(*), min(seq), max(seq) FROM records WHERE uai = ? AND stream = ? AND time >= ? AND time < ? AND chain = ?`,
		c.UAI, int(c.Stream), micros(from), micros(to), ref).Scan(&sp.Count, &lo, &hi)
	if err != nil {
		return sp, fmt.Errorf("archive: span: %w", err)
	}
	if sp.Count == 0 {
		return sp, nil
	}
	sp.FirstSeq, sp.LastSeq = uint64(lo.Int64), uint64(hi.Int64)
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE chain = ? AND seq BETWEEN ? AND ?`, ref, sp.FirstSeq, sp.LastSeq).Scan(&sp.InSeqRange); err != nil {
		return sp, fmt.Errorf("archive: span: %w", err)
	}
	if sp.FirstSeq == 1 {
		sp.Before, sp.BeforeKnown = journal.Genesis(c.UAI, c.Stream, c.ID), true
	} else if r, ok, err := s.Get(ctx, ref, sp.FirstSeq-1); err != nil {
		return sp, err
	} else if ok {
		sp.Before, sp.BeforeKnown = r.Link, true
	}
	r, ok, err := s.Get(ctx, ref, sp.LastSeq)
	if err != nil || !ok {
		return sp, fmt.Errorf("archive: span: record %d vanished: %v", sp.LastSeq, err)
	}
	sp.Last = r.Link
	return sp, nil
}

func (s *SQLite) Scan(ctx context.Context, q Query, fn func(c Chain, r *Stored) error) error {
	return s.scan(ctx, q, true, fn)
}

// ScanRows is Scan reading only the per-record rows, never the blocks
// (tests compare the two; the naive export benchmark reads rows).
func (s *SQLite) ScanRows(ctx context.Context, q Query, fn func(c Chain, r *Stored) error) error {
	return s.scan(ctx, q, false, fn)
}

func (s *SQLite) scan(ctx context.Context, q Query, useBlocks bool, fn func(c Chain, r *Stored) error) error {
	chains, err := s.Chains(ctx, q.UAI)
	if err != nil {
		return err
	}
	for _, c := range chains {
		if len(q.Streams) > 0 && !slices.Contains(q.Streams, c.Stream) {
			continue
		}
		if useBlocks && !q.Client.IsValid() && q.Domain == "" {
			ok, err := s.hasBlocks(ctx, c.Ref)
			if err != nil {
				return err
			}
			if ok {
				if err := s.scanBlocks(ctx, c, q, fn); err != nil {
					return err
				}
				continue
			}
		}
		if err := s.scanChain(ctx, c, q, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *SQLite) scanChain(ctx context.Context, c Chain, q Query, fn func(c Chain, r *Stored) error) error {
	const cols = `SELECT seq, time, client, rhost, link, payload FROM records `
	var rows *sql.Rows
	var err error
	from, to := micros(q.From), micros(q.To)
	switch {
	case q.Client.IsValid():
		// Few records: the client index, then sort by sequence.
		rows, err = s.r.QueryContext(ctx, cols+`WHERE client = ? AND time >= ? AND time < ? AND chain = ? ORDER BY seq`, q.Client.String(), from, to, c.Ref)
	case q.Domain != "":
		rh := ReverseHost(q.Domain)
		rows, err = s.r.QueryContext(ctx, cols+`WHERE rhost >= ? AND rhost < ? AND time >= ? AND time < ? AND chain = ? ORDER BY seq`,
			rh, rh[:len(rh)-1]+"/", from, to, c.Ref)
	default:
		// A whole school over a range: find the sequence range through
		// the school-time index, then read the primary key in order.
		var lo, hi sql.NullInt64
		if err := s.r.QueryRowContext(ctx, `SELECT min(seq), max(seq) FROM records WHERE uai = ? AND stream = ? AND time >= ? AND time < ? AND chain = ?`,
			c.UAI, int(c.Stream), from, to, c.Ref).Scan(&lo, &hi); err != nil {
			return fmt.Errorf("archive: scan: %w", err)
		}
		if !lo.Valid {
			return nil
		}
		if q.Outside != nil {
			// Read the whole sequence range and sort out the time in
			// the loop below, reporting the records outside.
			rows, err = s.r.QueryContext(ctx, cols+`WHERE chain = ? AND seq BETWEEN ? AND ?`, c.Ref, lo.Int64, hi.Int64)
		} else {
			rows, err = s.r.QueryContext(ctx, cols+`WHERE chain = ? AND seq BETWEEN ? AND ? AND time >= ? AND time < ?`, c.Ref, lo.Int64, hi.Int64, from, to)
		}
	}
	outside := q.Outside
	if q.Client.IsValid() || q.Domain != "" || q.MAC != "" || q.User != "" {
		outside = nil
	}
	if err != nil {
		return fmt.Errorf("archive: scan: %w", err)
	}
	defer rows.Close()
	var r Stored
	var t int64
	// RawBytes: an export reads millions of rows, and each copy of a
	// payload would be garbage a moment later. fn must not keep them.
	var client, rhost, link, payload sql.RawBytes
	var dec journal.Record
	for rows.Next() {
		if err := rows.Scan(&r.Seq, &t, &client, &rhost, &link, &payload); err != nil {
			return fmt.Errorf("archive: scan: %w", err)
		}
		if outside != nil && (t < from || t >= to) {
			outside(c, r.Seq)
			continue
		}
		r.Time = fromMicros(t)
		r.Client, _ = netip.ParseAddr(string(client))
		r.Link = toHash(link)
		r.Payload = payload
		if ok, err := q.matchesIdentity(c, &r, &dec); err != nil {
			return err
		} else if !ok {
			continue
		}
		if err := fn(c, &r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *SQLite) Purge(ctx context.Context, st journal.Stream, before time.Time, holds []Hold) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT uai FROM chains WHERE stream = ?`, int(st))
	if err != nil {
		return nil, fmt.Errorf("archive: purge: %w", err)
	}
	var schools []string
	for rows.Next() {
		var u string
		rows.Scan(&u)
		schools = append(schools, u)
	}
	rows.Close()
	out := map[string]int64{}
	for _, uai := range schools {
		// Holds become exclusions in the WHERE clause.
		where := `uai = ? AND stream = ? AND time < ?`
		args := []any{uai, int(st), micros(before)}
		for _, h := range holds {
			if !h.Active() || h.UAI != uai {
				continue
			}
			if h.Client.IsValid() {
				where += ` AND NOT (time >= ? AND time < ? AND client = ?)`
				args = append(args, micros(h.From), micros(h.To), h.Client.String())
			} else {
				where += ` AND NOT (time >= ? AND time < ?)`
				args = append(args, micros(h.From), micros(h.To))
			}
		}
		// In chunks, so that one purge never holds the writer for long.
		for {
			res, err := s.w.ExecContext(ctx, `DELETE FROM records WHERE (chain, seq) IN (SELECT chain, seq FROM records WHERE `+where+` LIMIT 20000)`, args...)
			if err != nil {
				return out, fmt.Errorf("archive: purge %s: %w", uai, err)
			}
			n, _ := res.RowsAffected()
			out[uai] += n
			if n == 0 {
				break
			}
		}
		// The rows go first: between the two, an export may still see
		// records that were just purged, never miss one that is kept.
		if err := s.fixBlocksAfterPurge(ctx, uai, st, before, holds); err != nil {
			return out, err
		}
	}
	return out, nil
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

const holdCols = `id, uai, start, end, client, reference, placed_by, placed_at, released_by, released_at`

func (s *SQLite) PlaceHold(ctx context.Context, h Hold) (Hold, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO holds (uai, start, end, client, reference, placed_by, placed_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		h.UAI, micros(h.From), micros(h.To), addrText(h.Client), h.Reference, h.PlacedBy, micros(h.PlacedAt))
	if err != nil {
		return h, fmt.Errorf("archive: place hold: %w", err)
	}
	h.ID, _ = res.LastInsertId()
	return h, nil
}

// ErrNotFound is returned for an unknown hold.
var ErrNotFound = errors.New("archive: not found")

func (s *SQLite) ReleaseHold(ctx context.Context, id int64, by string, at time.Time) (Hold, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE holds SET released_by = ?, released_at = ? WHERE id = ? AND released_at = 0`, by, micros(at), id)
	if err != nil {
		return Hold{}, fmt.Errorf("archive: release hold: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Hold{}, fmt.Errorf("archive: hold %d: %w (or already released)", id, ErrNotFound)
	}
	return scanHold(s.w.QueryRowContext(ctx, `SELECT `+holdCols+` FROM holds WHERE id = ?`, id))
}

func (s *SQLite) Holds(ctx context.Context, activeOnly bool) ([]Hold, error) {
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

const keysSchema = `CREATE TABLE IF NOT EXISTS edge_keys (
	edge TEXT PRIMARY KEY,
	uai TEXT NOT NULL,
	pub BLOB NOT NULL,
	first_seen INTEGER NOT NULL
)`

// PinEdgeKey records an edge's sealing key the first time it is seen and
// refuses any other key for that edge afterwards (trust on first use,
// behind the edge's token: the token says which edge, the pin says which
// key). It reports whether the key was pinned just now.
func (s *SQLite) PinEdgeKey(ctx context.Context, edge, uai string, pub []byte) (bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO edge_keys (edge, uai, pub, first_seen) VALUES (?, ?, ?, ?) ON CONFLICT (edge) DO NOTHING`, edge, uai, pub, micros(time.Now()))
	if err != nil {
		return false, fmt.Errorf("archive: pin key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	var pinned []byte
	var pinnedUAI string
	if err := s.w.QueryRowContext(ctx, `SELECT pub, uai FROM edge_keys WHERE edge = ?`, edge).Scan(&pinned, &pinnedUAI); err != nil {
		return false, fmt.Errorf("archive: pin key: %w", err)
	}
	if string(pinned) != string(pub) || pinnedUAI != uai {
		return false, ErrKeyMismatch
	}
	return false, nil
}

// UnpinEdgeKey forgets an edge's key (the RSSI does it when an edge is
// reinstalled with a new key).
func (s *SQLite) UnpinEdgeKey(ctx context.Context, edge string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM edge_keys WHERE edge = ?`, edge)
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

// matchesIdentity says whether r is of the device (MAC) or user q asks
// for; with neither asked, every record is, and none is decoded.
func (q Query) matchesIdentity(c Chain, r *Stored, dec *journal.Record) (bool, error) {
	if q.MAC == "" && q.User == "" {
		return true, nil
	}
	if err := journal.DecodeRecord(r.Payload, dec); err != nil {
		return false, fmt.Errorf("archive: record %d of chain %d: %w", r.Seq, c.Ref, err)
	}
	return (q.MAC == "" || strings.EqualFold(dec.MAC, q.MAC)) && (q.User == "" || dec.User == q.User), nil
}
