// Package audit is the control plane's tamper-evident log: every change and
// every sensitive read becomes an Entry, and each entry carries the SHA-256
// of its own content chained to the previous entry's hash. Editing an entry
// breaks its hash, removing one breaks the sequence and the next entry's
// link, so Verify names the first entry that no longer fits.
//
// The chain proves integrity, not completeness of the tail: deleting the
// newest entries leaves a shorter valid chain. An auditor who notes the head
// (Verify's Head) closes that gap: VerifyFrom checks the log still reaches it.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Entry is one audited event.
type Entry struct {
	// Seq is the entry's position in the chain, from 1, without gaps.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who acted: a login, "edge:<id>", "cli:<user>" or "system".
	Actor string `json:"actor"`
	Role  string `json:"role,omitempty"`
	// Action is a stable dotted verb ("list.entries.add", "publish", "login.failed").
	Action string `json:"action"`
	// Target names the object acted on ("list/academie-bloque", "version/3").
	Target string `json:"target,omitempty"`
	// Before and After are JSON documents of the object around the change
	// (or the parameters of a read); either may be empty.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// Remote is the client address the request came from.
	Remote string `json:"remote,omitempty"`
	// Prev is the hash of the previous entry (zero for the first), Hash
	// this entry's own, both in hexadecimal in JSON.
	Prev Digest `json:"prev"`
	Hash Digest `json:"hash"`
}

// Digest is a SHA-256 written as hexadecimal in JSON.
type Digest [32]byte

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText writes the digest as hexadecimal.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a hexadecimal digest.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("audit: digest of %d characters, want 64", len(b))
	}
	_, err := hex.Decode(d[:], b)
	if err != nil {
		return fmt.Errorf("audit: digest: %w", err)
	}
	return nil
}

// ParseDigest reads a hexadecimal digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	err := d.UnmarshalText([]byte(s))
	return d, err
}

// domain separates this hash from any other SHA-256 use in Vigie.
const domain = "vigie-audit-v1"

// Sum computes the entry's hash from its content and Prev. Every field is
// length-prefixed so that no two different entries encode alike.
func (e *Entry) Sum() Digest {
	var b bytes.Buffer
	b.WriteString(domain)
	var n [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		b.Write(n[:])
	}
	str := func(s []byte) {
		num(uint64(len(s)))
		b.Write(s)
	}
	num(e.Seq)
	num(uint64(e.Time.UnixNano()))
	str([]byte(e.Actor))
	str([]byte(e.Role))
	str([]byte(e.Action))
	str([]byte(e.Target))
	str(e.Before)
	str(e.After)
	str([]byte(e.Remote))
	b.Write(e.Prev[:])
	return sha256.Sum256(b.Bytes())
}

// Seal links e after prev (the previous entry, nil for the first) and sets
// its Seq, Prev and Hash. Time is truncated to the nanosecond the store
// keeps, so that a sealed entry read back verifies.
func (e *Entry) Seal(prev *Entry) {
	e.Time = time.Unix(0, e.Time.UnixNano()).UTC()
	if prev == nil {
		e.Seq, e.Prev = 1, Digest{}
	} else {
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	e.Hash = e.Sum()
}

// Problem is where and why a chain stopped verifying.
type Problem struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func (p *Problem) Error() string { return fmt.Sprintf("audit: entry %d: %s", p.Seq, p.Reason) }

// Result summarizes a verification.
type Result struct {
	// Entries is how many entries were checked.
	Entries uint64 `json:"entries"`
	// Head is the last entry's sequence number and hash.
	HeadSeq uint64 `json:"head_seq"`
	Head    Digest `json:"head"`
	// Problem is the first inconsistency, nil when the chain verifies.
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the chain verified.
func (r Result) OK() bool { return r.Problem == nil }

// Verifier checks a chain fed to it in order, one entry at a time, so that
// a long log is verified without holding it in memory.
type Verifier struct {
	res  Result
	prev *Entry
	last Entry
}

// Add checks the next entry. It returns false once a problem was found.
func (v *Verifier) Add(e *Entry) bool {
	if v.res.Problem != nil {
		return false
	}
	fail := func(format string, args ...any) bool {
		v.res.Problem = &Problem{Seq: e.Seq, Reason: fmt.Sprintf(format, args...)}
		return false
	}
	want := uint64(1)
	var prevHash Digest
	if v.prev != nil {
		want, prevHash = v.prev.Seq+1, v.prev.Hash
	}
	switch {
	case e.Seq != want && e.Seq > want:
		v.res.Problem = &Problem{Seq: want, Reason: fmt.Sprintf("missing (the next entry present is %d): entries were removed", e.Seq)}
		return false
	case e.Seq != want:
		return fail("out of order (expected %d)", want)
	case e.Prev != prevHash:
		return fail("does not link to the previous entry's hash: an entry before it was changed or removed")
	case e.Sum() != e.Hash:
		return fail("content does not match its hash: the entry was edited")
	}
	v.last = *e
	v.prev = &v.last
	v.res.Entries++
	v.res.HeadSeq, v.res.Head = e.Seq, e.Hash
	return true
}

// Result returns what was verified so far.
func (v *Verifier) Result() Result { return v.res }

// Verify checks a whole chain held in memory.
func Verify(entries []Entry) Result {
	var v Verifier
	for i := range entries {
		if !v.Add(&entries[i]) {
			break
		}
	}
	return v.Result()
}

// CheckAnchor tells whether a verified chain still reaches a head an auditor
// noted earlier (sequence and hash): the entry at anchorSeq must exist and
// carry that hash. at is the entry found at anchorSeq (nil if none).
func CheckAnchor(at *Entry, anchorSeq uint64, anchor Digest) error {
	if at == nil {
		return &Problem{Seq: anchorSeq, Reason: "the noted head is missing: entries were removed from the end of the log"}
	}
	if at.Hash != anchor {
		return &Problem{Seq: anchorSeq, Reason: "the entry at the noted head has another hash: the log was rewritten"}
	}
	return nil
}
