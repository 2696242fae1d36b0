package archive

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"vigie/journal"
)

// moveTables are the tables Move copies, with their columns (the same on
// both dialects). Blocks come after their chains.
var moveTables = []struct{ name, cols, order string }{
	{"chains", "ref, uai, stream, id, max_seq, max_link, created", "ref"},
	{"sealed_blocks", "chain, stream, first, last, n, tmin, tmax, tend, kind, last_link, bloom, data, marks", "chain, first"},
	{"held_blocks", "chain, stream, first, last, n, tmin, tmax, tend, kind, last_link, bloom, data, marks", "chain, first"},
	{"gaps", "chain, first, last, found", "chain, first"},
	{"holds", `id, uai, start, "end", client, reference, placed_by, placed_at, released_by, released_at`, "id"},
	{"edge_keys", "edge, uai, pub, first_seen", "edge"},
}

// MoveReport is what Move copied and verified.
type MoveReport struct {
	Rows map[string]int
	// Chains and Records are what the verification walked on the
	// target, every link recomputed.
	Chains  int
	Records int64
}

// Move copies a SQLite archive whole into an empty PostgreSQL archive, in
// one snapshot of the source and one transaction on the target, rows
// unchanged (chain references, block bytes and filters, gaps, holds and
// pinned edge keys). It then walks every chain on both sides, decoding
// each block and recomputing each link, and fails unless both sides give
// the same digest of every chain. A failed copy leaves the target empty.
func Move(ctx context.Context, from, to *SQLStore) (*MoveReport, error) {
	if from.pg || !to.pg {
		return nil, errors.New("archive: move: from SQLite to PostgreSQL only")
	}
	src, err := from.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive: move: %w", err)
	}
	defer src.Rollback()
	want, _, err := digestChains(ctx, from, src)
	if err != nil {
		return nil, fmt.Errorf("archive: move: source: %w", err)
	}
	dst, err := to.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("archive: move: %w", err)
	}
	defer dst.Rollback()
	if _, err := dst.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, to.lockKey); err != nil {
		return nil, fmt.Errorf("archive: move: write lock: %w", err)
	}
	for _, t := range moveTables {
		var n int
		if err := dst.QueryRowContext(ctx, `SELECT count(*) FROM `+t.name).Scan(&n); err != nil {
			return nil, fmt.Errorf("archive: move: target %s: %w", t.name, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("archive: move: the target archive is not empty (%d rows in %s): move into a new schema", n, t.name)
		}
	}
	rep := &MoveReport{Rows: map[string]int{}}
	for _, t := range moveTables {
		n, err := to.copyRows(ctx, src, dst, t.name, t.cols, t.order)
		if err != nil {
			return nil, fmt.Errorf("archive: move: %s: %w", t.name, err)
		}
		rep.Rows[t.name] = n
	}
	// Identity columns got explicit values: move their sequences past them.
	for _, t := range []struct{ table, col string }{{"chains", "ref"}, {"holds", "id"}} {
		if _, err := dst.ExecContext(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', '%s'), max(%s)) FROM %s HAVING max(%s) IS NOT NULL`,
			t.table, t.col, t.col, t.table, t.col)); err != nil {
			return nil, fmt.Errorf("archive: move: %s sequence: %w", t.table, err)
		}
	}
	got, recs, err := digestChains(ctx, to, dst)
	if err != nil {
		return nil, fmt.Errorf("archive: move: target: %w", err)
	}
	if len(got) != len(want) {
		return nil, fmt.Errorf("archive: move: %d chains on the target, %d in the source", len(got), len(want))
	}
	for ref, d := range want {
		if got[ref] != d {
			return nil, fmt.Errorf("archive: move: chain %d differs on the target", ref)
		}
	}
	if err := dst.Commit(); err != nil {
		return nil, fmt.Errorf("archive: move: commit: %w", err)
	}
	to.cache.forget()
	rep.Chains, rep.Records = len(got), recs
	return rep, nil
}

// copyRows copies one table, row by row, within the two transactions.
func (s *SQLStore) copyRows(ctx context.Context, src, dst *sql.Tx, table, cols, order string) (int, error) {
	rows, err := src.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` ORDER BY `+order)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	marks := ""
	for i := range names {
		if i > 0 {
			marks += ", "
		}
		marks += "?"
	}
	ins, err := dst.PrepareContext(ctx, s.q(`INSERT INTO `+table+` (`+cols+`) VALUES (`+marks+`)`))
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	blocks := table == "sealed_blocks"
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if blocks {
			// stream and tmax (columns 1 and 6) choose the partition.
			st, ok1 := vals[1].(int64)
			tmax, ok2 := vals[6].(int64)
			if !ok1 || !ok2 {
				return n, fmt.Errorf("row %d: stream %T, tmax %T: want integers", n+1, vals[1], vals[6])
			}
			if err := s.partition(ctx, dst, journal.Stream(st), tmax); err != nil {
				return n, err
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	return n, rows.Err()
}

// digestChains walks every chain in db: each block decoded, each link
// recomputed from the previous one (from the chain's genesis, across
// blocks, and after a gap from the link stored with the record), each
// block's count and last link checked against its row. It returns a
// digest of each chain (its row, and every block's row and bytes, in
// order) and the records walked.
func digestChains(ctx context.Context, s *SQLStore, db queryer) (map[int64][32]byte, int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT ref, uai, stream, id, max_seq, max_link, created FROM chains ORDER BY ref`)
	if err != nil {
		return nil, 0, err
	}
	type chainRow struct {
		c       Chain
		created int64
	}
	var chains []chainRow
	for rows.Next() {
		var cr chainRow
		var id, link []byte
		var stream int
		var maxSeq int64
		if err := rows.Scan(&cr.c.Ref, &cr.c.UAI, &stream, &id, &maxSeq, &link, &cr.created); err != nil {
			rows.Close()
			return nil, 0, err
		}
		cr.c.Stream, cr.c.MaxSeq = journal.Stream(stream), uint64(maxSeq)
		copy(cr.c.ID[:], id)
		copy(cr.c.MaxLink[:], link)
		chains = append(chains, cr)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	out := make(map[int64][32]byte, len(chains))
	var total int64
	ch := journal.NewChainer()
	for _, cr := range chains {
		c := cr.c
		h := sha256.New()
		var num [8]byte
		put := func(v uint64) { binary.BigEndian.PutUint64(num[:], v); h.Write(num[:]) }
		put(uint64(c.Ref))
		h.Write([]byte(c.UAI))
		put(uint64(c.Stream))
		h.Write(c.ID[:])
		put(c.MaxSeq)
		h.Write(c.MaxLink[:])
		put(uint64(cr.created))
		bs, err := s.blocks(ctx, db, `chain = ?`, c.Ref)
		if err != nil {
			return nil, 0, err
		}
		prev, prevSeq := journal.Genesis(c.UAI, c.Stream, c.ID), uint64(0)
		for i := range bs {
			m := &bs[i]
			data, err := s.data(ctx, db, m)
			if err != nil {
				return nil, 0, err
			}
			for _, v := range []uint64{uint64(m.table), m.first, m.last, uint64(m.n), uint64(m.tmin), uint64(m.tmax), uint64(m.tend), uint64(m.kind)} {
				put(v)
			}
			h.Write(m.lastLink[:])
			h.Write(m.filter)
			put(uint64(len(data)))
			h.Write(data)
			n := 0
			err = decodeBlock(m.kind, data, func(r *Stored, _ *journal.Record) error {
				if r.Seq < m.first || r.Seq > m.last || r.Seq <= prevSeq {
					return fmt.Errorf("record %d out of the block's range [%d, %d] or out of order", r.Seq, m.first, m.last)
				}
				if r.Seq == prevSeq+1 && ch.Link(prev, r.Seq, r.Payload) != r.Link {
					return fmt.Errorf("record %d: the link does not follow from record %d's", r.Seq, prevSeq)
				}
				prev, prevSeq = r.Link, r.Seq
				n++
				return nil
			})
			if err != nil {
				return nil, 0, fmt.Errorf("chain %d, block %d: %w", c.Ref, m.first, err)
			}
			if n != m.n || prev != m.lastLink {
				return nil, 0, fmt.Errorf("chain %d, block %d: %d records ending at link %x, the row says %d and %x", c.Ref, m.first, n, prev[:4], m.n, m.lastLink[:4])
			}
			total += int64(n)
		}
		if prevSeq == c.MaxSeq && prevSeq > 0 && prev != c.MaxLink {
			return nil, 0, fmt.Errorf("chain %d: its last record's link is not the chain's", c.Ref)
		}
		var d [32]byte
		h.Sum(d[:0])
		out[c.Ref] = d
	}
	return out, total, nil
}
