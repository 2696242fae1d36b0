package archive

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"vigie/journal"
)

// Blocks: besides one indexed row per record (what filtered queries and
// the chain checks of ingest need), the SQLite store keeps every record a
// second time in blocks: one row per run of up to maxBlockRecords
// consecutive sequence numbers of a chain, holding each record's time,
// link and canonical payload back to back. An export of a whole school
// over a day reads a few thousand blocks instead of stepping through
// millions of rows, which was most of its time (SQLite's per-row work and
// database/sql's per-column conversions, not the bytes).
//
// Invariants, kept in the same transactions as the rows:
//   - a block holds a contiguous run [first, last] of one chain, exactly
//     the records rows of that range (n = last-first+1);
//   - blocks of a chain do not overlap;
//   - a chain listed in block_chains has every one of its records in a
//     block. Chains archived before blocks existed are not listed until
//     MigrateBlocks has built their blocks; Scan reads their rows.
const blocksSchema = `
CREATE TABLE IF NOT EXISTS blocks (
	chain INTEGER NOT NULL,
	first INTEGER NOT NULL,
	last INTEGER NOT NULL,
	tmin INTEGER NOT NULL,
	tmax INTEGER NOT NULL,
	data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS blocks_chain_first ON blocks (chain, first);
CREATE INDEX IF NOT EXISTS blocks_chain_time ON blocks (chain, tmax, tmin, first, last);
CREATE TABLE IF NOT EXISTS block_chains (
	chain INTEGER PRIMARY KEY
);
`

// maxBlockRecords bounds a block: about half a megabyte, small enough
// that a purge boundary or a time range cut wastes little, large enough
// that a day is a few thousand rows.
const maxBlockRecords = 4096

// blockEntry encoding, per record in sequence order: the time as a
// zigzag varint delta from the previous record's (the first from 0), the
// 32-byte link, the payload length as a uvarint, the payload.

func appendBlockEntry(dst []byte, prevTime int64, r *Stored) []byte {
	t := micros(r.Time)
	dst = binary.AppendVarint(dst, t-prevTime)
	dst = append(dst, r.Link[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Payload)))
	return append(dst, r.Payload...)
}

// blockReader walks the entries of one block.
type blockReader struct {
	data []byte
	seq  uint64
	last uint64
	time int64
}

var errBadBlock = errors.New("damaged block")

// next decodes the next entry into r (Payload aliases the block); ok is
// false at the end.
func (b *blockReader) next(r *Stored) (t int64, ok bool, err error) {
	if len(b.data) == 0 {
		if b.seq != b.last+1 {
			return 0, false, fmt.Errorf("%w: %d records missing at its end", errBadBlock, b.last+1-b.seq)
		}
		return 0, false, nil
	}
	if b.seq > b.last {
		return 0, false, fmt.Errorf("%w: trailing bytes", errBadBlock)
	}
	d, n := binary.Varint(b.data)
	if n <= 0 || len(b.data)-n < len(journal.Hash{}) {
		return 0, false, fmt.Errorf("%w: record %d truncated", errBadBlock, b.seq)
	}
	b.time += d
	p := b.data[n:]
	copy(r.Link[:], p)
	p = p[len(journal.Hash{}):]
	l, n := binary.Uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return 0, false, fmt.Errorf("%w: record %d truncated", errBadBlock, b.seq)
	}
	r.Seq = b.seq
	r.Payload = p[n : n+int(l)]
	b.data = p[n+int(l):]
	b.seq++
	return b.time, true, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// putBlocks stores recs (sorted by sequence, one chain) as blocks, cut at
// every break in the sequence and every maxBlockRecords records.
func putBlocks(ctx context.Context, tx execer, chain int64, recs []Stored) error {
	var data []byte
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && end-start < maxBlockRecords && recs[end].Seq == recs[end-1].Seq+1 {
			end++
		}
		run := recs[start:end]
		data = data[:0]
		var prev int64
		tmin, tmax := int64(math.MaxInt64), int64(math.MinInt64)
		for i := range run {
			data = appendBlockEntry(data, prev, &run[i])
			prev = micros(run[i].Time)
			tmin, tmax = min(tmin, prev), max(tmax, prev)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO blocks (chain, first, last, tmin, tmax, data) VALUES (?, ?, ?, ?, ?, ?)`,
			chain, run[0].Seq, run[len(run)-1].Seq, tmin, tmax, data); err != nil {
			return fmt.Errorf("archive: insert block %d-%d: %w", run[0].Seq, run[len(run)-1].Seq, err)
		}
		start = end
	}
	return nil
}

// rebuildBlocks replaces the blocks of chain that start in [lo, hi] by
// blocks built from its record rows in that range (a purge deleted some of
// them; a migration builds them the first time). Blocks never straddle lo
// or hi when they are the bounds of existing blocks.
func rebuildBlocks(ctx context.Context, tx *sql.Tx, chain int64, lo, hi uint64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM blocks WHERE chain = ? AND first BETWEEN ? AND ?`, chain, int64(min(lo, math.MaxInt64)), int64(min(hi, math.MaxInt64))); err != nil {
		return fmt.Errorf("archive: rebuild blocks: %w", err)
	}
	recs := make([]Stored, 0, maxBlockRecords)
	next := lo
	for {
		rows, err := tx.QueryContext(ctx, `SELECT seq, time, link, payload FROM records WHERE chain = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`,
			chain, int64(min(next, math.MaxInt64)), int64(min(hi, math.MaxInt64)), maxBlockRecords)
		if err != nil {
			return fmt.Errorf("archive: rebuild blocks: %w", err)
		}
		recs = recs[:0]
		for rows.Next() {
			var r Stored
			var t int64
			var link []byte
			if err := rows.Scan(&r.Seq, &t, &link, &r.Payload); err != nil {
				rows.Close()
				return fmt.Errorf("archive: rebuild blocks: %w", err)
			}
			r.Time, r.Link = fromMicros(t), toHash(link)
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("archive: rebuild blocks: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}
		// Cut at the chunk's end too; blocks ending at a chunk boundary
		// are merely shorter.
		if err := putBlocks(ctx, tx, chain, recs); err != nil {
			return err
		}
		next = recs[len(recs)-1].Seq + 1
		if len(recs) < maxBlockRecords || next > hi {
			return nil
		}
	}
}

// MigrateBlocks builds the blocks of chains archived before blocks
// existed, one chain per transaction (it holds the writer meanwhile:
// ingests wait, which edges take as a slow acknowledgement). It returns
// how many chains it migrated; once all are, it costs one query.
func (s *SQLite) MigrateBlocks(ctx context.Context) (int, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT ref FROM chains WHERE ref NOT IN (SELECT chain FROM block_chains) ORDER BY ref`)
	if err != nil {
		return 0, fmt.Errorf("archive: migrate blocks: %w", err)
	}
	var refs []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return 0, fmt.Errorf("archive: migrate blocks: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	for i, ref := range refs {
		err := func() error {
			tx, err := s.w.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := rebuildBlocks(ctx, tx, ref, 0, math.MaxInt64); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO block_chains (chain) VALUES (?)`, ref); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			return i, fmt.Errorf("archive: migrate blocks of chain %d: %w", ref, err)
		}
	}
	return len(refs), nil
}

// hasBlocks reports whether every record of chain is in blocks.
func (s *SQLite) hasBlocks(ctx context.Context, chain int64) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM block_chains WHERE chain = ?`, chain).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("archive: scan: %w", err)
	}
	return true, nil
}

// scanBlocks is scanChain for a whole school's records over a time range
// (optionally a MAC or user), read from blocks. The records of the range
// have sequence numbers in [lo, hi], found from the blocks' time bounds;
// every block in that range is read, so that the records outside the
// period that interleave are reported like the row scan reports them.
func (s *SQLite) scanBlocks(ctx context.Context, c Chain, q Query, fn func(c Chain, r *Stored) error) error {
	from, to := micros(q.From), micros(q.To)
	// One read transaction: the two queries must see the same blocks.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("archive: scan: %w", err)
	}
	defer tx.Rollback()
	var lo, hi sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(first), max(last) FROM blocks WHERE chain = ? AND tmax >= ? AND tmin < ?`, c.Ref, from, to).Scan(&lo, &hi); err != nil {
		return fmt.Errorf("archive: scan: %w", err)
	}
	if !lo.Valid {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT first, last, data FROM blocks WHERE chain = ? AND first BETWEEN ? AND ? ORDER BY first`, c.Ref, lo.Int64, hi.Int64)
	if err != nil {
		return fmt.Errorf("archive: scan: %w", err)
	}
	defer rows.Close()
	outside := q.Outside
	if q.MAC != "" || q.User != "" {
		outside = nil
	}
	// Records outside the period wait here until a record of the period
	// follows them: only those between the period's first and last
	// records are reported.
	var pending []uint64
	seen := false
	var r Stored
	var dec journal.Record
	var data sql.RawBytes
	for rows.Next() {
		var br blockReader
		if err := rows.Scan(&br.seq, &br.last, &data); err != nil {
			return fmt.Errorf("archive: scan: %w", err)
		}
		br.data = data
		first := br.seq
		for {
			t, ok, err := br.next(&r)
			if err != nil {
				return fmt.Errorf("archive: block %d of chain %d: %w", first, c.Ref, err)
			}
			if !ok {
				break
			}
			if t < from || t >= to {
				if outside != nil && seen {
					pending = append(pending, r.Seq)
				}
				continue
			}
			seen = true
			for _, p := range pending {
				outside(c, p)
			}
			pending = pending[:0]
			r.Time = fromMicros(t)
			if ok, err := q.matchesIdentity(c, &r, &dec); err != nil {
				return err
			} else if !ok {
				continue
			}
			if err := fn(c, &r); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}

// fixBlocksAfterPurge brings the blocks of a school's stream back in line
// with its rows after a purge deleted rows older than before: blocks
// wholly older and untouched by any hold go; the others that lost records
// are rebuilt from what is left.
func (s *SQLite) fixBlocksAfterPurge(ctx context.Context, uai string, st journal.Stream, before time.Time, holds []Hold) error {
	rows, err := s.w.QueryContext(ctx, `SELECT ref FROM chains WHERE uai = ? AND stream = ?`, uai, int(st))
	if err != nil {
		return fmt.Errorf("archive: purge blocks: %w", err)
	}
	var refs []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return fmt.Errorf("archive: purge blocks: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("archive: purge blocks: %w", err)
	}
	b := micros(before)
	for _, ref := range refs {
		err := func() error {
			tx, err := s.w.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			type blk struct{ first, last, tmin, tmax int64 }
			var old []blk
			rows, err := tx.QueryContext(ctx, `SELECT first, last, tmin, tmax FROM blocks WHERE chain = ? AND tmin < ? ORDER BY first`, ref, b)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k blk
				if err := rows.Scan(&k.first, &k.last, &k.tmin, &k.tmax); err != nil {
					rows.Close()
					return err
				}
				old = append(old, k)
			}
			rows.Close()
			for _, k := range old {
				heldAny := slices.ContainsFunc(holds, func(h Hold) bool {
					return h.Active() && h.UAI == uai && micros(h.From) <= k.tmax && micros(h.To) > k.tmin
				})
				if k.tmax < b && !heldAny {
					if _, err := tx.ExecContext(ctx, `DELETE FROM blocks WHERE chain = ? AND first = ?`, ref, k.first); err != nil {
						return err
					}
					continue
				}
				var n int64
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE chain = ? AND seq BETWEEN ? AND ?`, ref, k.first, k.last).Scan(&n); err != nil {
					return err
				}
				if n != k.last-k.first+1 {
					if err := rebuildBlocks(ctx, tx, ref, uint64(k.first), uint64(k.last)); err != nil {
						return err
					}
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return fmt.Errorf("archive: purge blocks of chain %d: %w", ref, err)
		}
	}
	return nil
}
