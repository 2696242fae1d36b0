package segment

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"vigie/journal"
)

// decodedRecord is one record as DecodeBatch gives it.
type decodedRecord struct {
	r       journal.Record
	payload []byte
	link    journal.Hash
}

// decodeAll decodes a batch whole and returns its records and its marks,
// as the archive keeps them at ingest.
func decodeAll(t *testing.T, data []byte) ([]decodedRecord, []byte) {
	t.Helper()
	return decodeAllEvery(t, data, MarkEvery)
}

// decodeAllEvery is decodeAll with marks every records apart (MarkEvery,
// or oldMarkEvery as batches archived before it were).
func decodeAllEvery(t *testing.T, data []byte, every int) ([]decodedRecord, []byte) {
	t.Helper()
	var out []decodedRecord
	var marks []byte
	b, err := DecodeBatch(data, nil, func(r *journal.Record, p []byte, link journal.Hash) error {
		out = append(out, decodedRecord{*r, slices.Clone(p), link})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range out {
		if (i+1)%every == 0 && i+1 < int(b.Count) {
			marks = append(marks, d.link[:]...)
		}
	}
	if len(marks) != markCount(len(out), every)*len(journal.Hash{}) || marksEvery(len(out), len(marks)) != every {
		t.Fatalf("%d bytes of marks for %d records", len(marks), len(out))
	}
	return out, marks
}

// TestPickAgreesWithDecodeBatch selects and picks records of batches of
// every size around the marks (none, one, several, a last run cut short)
// and checks that each record, payload and link is the one a whole decode
// gives, and that Select finds exactly the records its tests accept. Marks
// are at today's spacing and at the one of batches archived before, and
// one Buffers serves every reader in turn, as in a search.
func TestPickAgreesWithDecodeBatch(t *testing.T) {
	sets := map[string][]journal.Record{
		"navigation": gen(300, journal.Navigation),
		"connexions": gen(300, journal.Connexions),
		"flows":      genFlows(300),
	}
	bufs := new(Buffers)
	for name, set := range sets {
		for _, sz := range []struct{ n, every int }{
			{1, MarkEvery}, {2, MarkEvery}, {31, MarkEvery}, {32, MarkEvery}, {33, MarkEvery}, {63, MarkEvery}, {64, MarkEvery},
			{65, MarkEvery}, {97, MarkEvery}, {300, MarkEvery},
			{63, oldMarkEvery}, {64, oldMarkEvery}, {65, oldMarkEvery}, {127, oldMarkEvery}, {128, oldMarkEvery}, {129, oldMarkEvery}, {300, oldMarkEvery},
		} {
			n, every := sz.n, sz.every
			t.Run(fmt.Sprintf("%s/%d/every-%d", name, n, every), func(t *testing.T) {
				recs := set[:n]
				data := sealRecords(t, recs, 1)
				all, marks := decodeAllEvery(t, data, every)
				type tc struct {
					name string
					sel  Selection
					want func(r *journal.Record) bool
				}
				var cases []tc
				cases = append(cases, tc{"all", Selection{}, func(*journal.Record) bool { return true }})
				for _, k := range []int{0, n / 2, n - 1} {
					c, h, nat, mac, user := recs[k].Client.Addr(), recs[k].Host, recs[k].NAT.Addr(), recs[k].MAC, recs[k].User
					cases = append(cases,
						tc{fmt.Sprintf("client %d", k), Selection{Client: func(a netip.Addr) bool { return a == c }}, func(r *journal.Record) bool { return r.Client.Addr() == c }},
						tc{fmt.Sprintf("host %d", k), Selection{Host: func(s string) bool { return s == h }}, func(r *journal.Record) bool { return r.Host == h }},
						tc{fmt.Sprintf("nat %d", k), Selection{NAT: func(a netip.Addr) bool { return a == nat }}, func(r *journal.Record) bool { return r.NAT.Addr() == nat }},
						tc{fmt.Sprintf("mac and user %d", k), Selection{MAC: func(s string) bool { return s == mac }, User: func(s string) bool { return s == user }},
							func(r *journal.Record) bool { return r.MAC == mac && r.User == user }},
					)
				}
				from, to := recs[n/3].Time.UnixMicro(), recs[2*n/3].Time.UnixMicro()
				c := recs[n/2].Client.Addr()
				cases = append(cases, tc{"time and client", Selection{Time: func(us int64) bool { return us >= from && us < to }, Client: func(a netip.Addr) bool { return a == c }},
					func(r *journal.Record) bool {
						us := r.Time.UnixMicro()
						return us >= from && us < to && r.Client.Addr() == c
					}})
				for _, c := range cases {
					var want []int
					for i := range all {
						if c.want(&all[i].r) {
							want = append(want, i)
						}
					}
					br, err := OpenBatch(data, bufs)
					if err != nil {
						t.Fatal(err)
					}
					idx, err := br.Select(c.sel)
					br.Close()
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					if !slices.Equal(idx, want) {
						t.Fatalf("%s: selected %v, want %v", c.name, idx, want)
					}
					checkPick(t, c.name, data, marks, idx, all, bufs)
				}
				// Subsets that Select does not make: first and last,
				// every seventh, one per run.
				for _, idx := range [][]int{{0}, {n - 1}, {0, n - 1}, stride(n, 7), stride(n, every), stride(n, 9)[1:]} {
					idx = slices.Compact(idx)
					checkPick(t, fmt.Sprint(idx), data, marks, idx, all, bufs)
				}
			})
		}
	}
}

func stride(n, k int) []int {
	var out []int
	for i := 0; i < n; i += k {
		out = append(out, i)
	}
	return out
}

func checkPick(t *testing.T, name string, data, marks []byte, idx []int, all []decodedRecord, bufs *Buffers) {
	t.Helper()
	br, err := OpenBatch(data, bufs)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	k := 0
	err = br.Pick(idx, marks, func(r *journal.Record, p []byte, prev, link journal.Hash) error {
		if k >= len(idx) {
			return fmt.Errorf("more records than asked")
		}
		w := all[idx[k]]
		if *r != w.r || string(p) != string(w.payload) || link != w.link {
			return fmt.Errorf("record %d:\n got %+v %x\nwant %+v %x", idx[k], *r, link[:4], w.r, w.link[:4])
		}
		if idx[k] > 0 && prev != all[idx[k]-1].link || idx[k] == 0 && prev != br.Batch().Prev {
			return fmt.Errorf("record %d: the link before it is %x", idx[k], prev[:4])
		}
		k++
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if k != len(idx) {
		t.Fatalf("%s: %d records picked, want %d", name, k, len(idx))
	}
}

// TestPickRefusesDamage: a damaged mark, a missing one or a body that does
// not match its hash is an error, never a record with a wrong link.
func TestPickRefusesDamage(t *testing.T) {
	recs := gen(200, journal.Navigation)
	data := sealRecords(t, recs, 1)
	_, marks := decodeAll(t, data)
	isBatchErr := func(err error) bool {
		var be *BatchError
		return errors.As(err, &be)
	}
	pick := func(data, marks []byte, idx []int) error {
		br, err := OpenBatch(data, nil)
		if err != nil {
			return err
		}
		return br.Pick(idx, marks, func(*journal.Record, []byte, journal.Hash, journal.Hash) error { return nil })
	}
	// Each mark damaged: the runs that start or end with it fail.
	for m := 0; m < len(marks)/len(journal.Hash{}); m++ {
		bad := slices.Clone(marks)
		bad[m*len(journal.Hash{})+5] ^= 1
		for _, i := range []int{m * MarkEvery, (m+1)*MarkEvery + 3} {
			if err := pick(data, bad, []int{i}); !isBatchErr(err) {
				t.Errorf("mark %d damaged, record %d picked: %v", m, i, err)
			}
		}
	}
	if err := pick(data, marks[:len(marks)-1], []int{0}); !isBatchErr(err) {
		t.Errorf("marks cut short: %v", err)
	}
	if err := pick(data, marks, []int{5, 5}); err == nil {
		t.Error("an index asked twice is accepted")
	}
	bad := slices.Clone(data)
	bad[len(bad)-3] ^= 0x40
	if err := pick(bad, marks, []int{0}); !isBatchErr(err) {
		t.Errorf("damaged body: %v", err)
	}
}

// FuzzSkipVarints checks the eight-bytes-at-a-time skips against reading
// the varints one by one.
func FuzzSkipVarints(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0x81, 1, 4, 5, 6, 7, 8, 9, 10, 11, 0, 3, 'a', 'b', 'c', 1, 2}, 9)
	f.Add(bytes.Repeat([]byte{0x80}, 20), 3)
	f.Add(bytes.Repeat([]byte{1}, 40), 33)
	f.Fuzz(func(t *testing.T, col []byte, n int) {
		n = n & 0xff
		// one skips n varints of col one by one; it returns what is left.
		one := func(col []byte, n int) []byte {
			for n > 0 && len(col) > 0 {
				if col[0] < 0x80 {
					n--
				}
				col = col[1:]
			}
			return col
		}
		if got, want := skipVarints(col, n), one(col, n); len(got) != len(want) {
			t.Fatalf("skipVarints(%x, %d) leaves %d bytes, want %d", col, n, len(got), len(want))
		}
		rest, left := skipRefs(col, n)
		if left < 0 || left > n {
			t.Fatalf("skipRefs(%x, %d): %d left", col, n, left)
		}
		if want := one(col, n-left); len(rest) != len(want) {
			t.Fatalf("skipRefs(%x, %d) leaves %d bytes with %d to skip, want %d", col, n, len(rest), left, len(want))
		}
		// It stops before any zero byte (a new value).
		if skipped := col[:len(col)-len(rest)]; bytes.IndexByte(skipped, 0) >= 0 {
			t.Fatalf("skipRefs(%x, %d) skipped a zero byte", col, n)
		}
		// It stops at a varint's end, so a caller reads the next one whole.
		if len(rest) < len(col) && col[len(col)-len(rest)-1] >= 0x80 {
			t.Fatalf("skipRefs(%x, %d) stopped inside a varint", col, n)
		}
	})
}

// TestPickManyValues picks from a batch whose dictionaries outgrow one-byte
// references (hundreds of hosts, URLs and clients), where the column walks
// skip references eight bytes at a time across two-byte ones.
func TestPickManyValues(t *testing.T) {
	recs := gen(4000, journal.Navigation)
	data := sealRecords(t, recs, 1)
	bufs := new(Buffers)
	for _, every := range []int{MarkEvery, oldMarkEvery} {
		all, marks := decodeAllEvery(t, data, every)
		for _, k := range []int{0, 1777, 3999} {
			c := recs[k].Client.Addr()
			br, err := OpenBatch(data, bufs)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := br.Select(Selection{Client: func(a netip.Addr) bool { return a == c }})
			br.Close()
			if err != nil || len(idx) < 3 {
				t.Fatalf("client %s: %d records selected, %v", c, len(idx), err)
			}
			checkPick(t, fmt.Sprintf("client %s, marks %d apart", c, every), data, marks, idx, all, bufs)
		}
		for _, k := range []int{97, 331, 1000} {
			checkPick(t, fmt.Sprintf("every %dth, marks %d apart", k, every), data, marks, stride(len(recs), k)[1:], all, bufs)
		}
	}
}
