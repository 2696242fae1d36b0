package rules

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unsafe"

	"vigie/rules/bundle"
	"vigie/rules/domainset"
)

// Section names inside a bundle. Domains are split in domainset.Shards
// sections so that a one-domain change touches one small section.
const (
	sectionMeta = "meta"
	sectionSets = "sets"
	sectionURLs = "urls"
)

func shardName(i int) string { return fmt.Sprintf("domains.%03d", i) }

// Sections returns the Ruleset as bundle sections.
func (rs *Ruleset) Sections() ([]bundle.Section, error) {
	metaJSON, err := json.Marshal(rs.meta)
	if err != nil {
		return nil, fmt.Errorf("rules: encode meta: %w", err)
	}
	sets := make([]byte, 8, 8+len(rs.sets)*8)
	binary.LittleEndian.PutUint32(sets, uint32(rs.words))
	for _, w := range rs.sets {
		sets = binary.LittleEndian.AppendUint64(sets, w)
	}
	out := []bundle.Section{
		{Name: sectionMeta, Data: metaJSON},
		{Name: sectionSets, Data: sets},
		{Name: sectionURLs, Data: rs.encodeURLs()},
	}
	for i := 0; i < domainset.Shards; i++ {
		out = append(out, bundle.Section{Name: shardName(i), Data: rs.domains.AppendShard(nil, i)})
	}
	return out, nil
}

// encodeURLs writes URL rules in a deterministic order: count u32, then
// per rule list u16, host length u16, rest length u32, host, rest.
func (rs *Ruleset) encodeURLs() []byte {
	keys := make([]uint64, 0, len(rs.urls))
	for k := range rs.urls {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	n := 0
	for _, k := range keys {
		n += len(rs.urls[k])
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(n))
	for _, k := range keys {
		for _, r := range rs.urls[k] {
			b = binary.LittleEndian.AppendUint16(b, r.list)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(r.host)))
			b = binary.LittleEndian.AppendUint32(b, uint32(len(r.rest)))
			b = append(b, r.host...)
			b = append(b, r.rest...)
		}
	}
	return b
}

func decodeURLs(b []byte, nlists int) (map[uint64][]urlRule, error) {
	bad := func(why string) error { return fmt.Errorf("rules: urls section: %s", why) }
	if len(b) < 4 {
		return nil, bad("truncated")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n)*8 > uint64(len(b)) {
		return nil, bad("count larger than the section")
	}
	urls := make(map[uint64][]urlRule)
	for i := uint32(0); i < n; i++ {
		if len(b) < 8 {
			return nil, bad("truncated")
		}
		list := binary.LittleEndian.Uint16(b)
		hl := int(binary.LittleEndian.Uint16(b[2:]))
		rl := binary.LittleEndian.Uint32(b[4:])
		b = b[8:]
		if int(list) >= nlists {
			return nil, bad(fmt.Sprintf("rule %d names list %d of %d", i, list, nlists))
		}
		if uint64(hl)+uint64(rl) > uint64(len(b)) {
			return nil, bad("truncated")
		}
		host := string(b[:hl])
		rest := string(b[hl : hl+int(rl)])
		b = b[hl+int(rl):]
		if rest == "" || rest[0] != '/' {
			return nil, bad(fmt.Sprintf("rule %d: path %q does not start with /", i, rest))
		}
		k := domainset.Fingerprint(host)
		urls[k] = append(urls[k], urlRule{rest: rest, list: list, host: host})
	}
	if len(b) != 0 {
		return nil, bad("trailing bytes")
	}
	return urls, nil
}

// EncodeBundle compiles rs into a signed bundle.
func EncodeBundle(rs *Ruleset, serial uint64, created time.Time, key ed25519.PrivateKey) ([]byte, error) {
	secs, err := rs.Sections()
	if err != nil {
		return nil, err
	}
	return bundle.Encode(serial, created, secs, key)
}

// DecodeBundle verifies a signed bundle and loads the Ruleset it carries.
// The domain sections are viewed in place: data must stay unmodified for
// the Ruleset's lifetime.
func DecodeBundle(data []byte, pub ed25519.PublicKey) (*Ruleset, bundle.Header, error) {
	b, err := bundle.Decode(data, pub)
	if err != nil {
		return nil, bundle.Header{}, err
	}
	rs, err := Load(b)
	return rs, b.Header, err
}

// Load builds a Ruleset from a verified bundle.
func Load(b *bundle.Bundle) (*Ruleset, error) {
	need := func(name string) ([]byte, error) {
		d, ok := b.Section(name)
		if !ok {
			return nil, fmt.Errorf("rules: bundle has no %q section", name)
		}
		return d, nil
	}
	metaJSON, err := need(sectionMeta)
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(metaJSON, &m); err != nil {
		return nil, fmt.Errorf("rules: meta section: %w", err)
	}
	if len(m.Lists) > MaxLists {
		return nil, fmt.Errorf("rules: meta section: %d lists, at most %d", len(m.Lists), MaxLists)
	}
	setsData, err := need(sectionSets)
	if err != nil {
		return nil, err
	}
	if len(setsData) < 8 || (len(setsData)-8)%8 != 0 {
		return nil, fmt.Errorf("rules: sets section of %d bytes is malformed", len(setsData))
	}
	words := int(binary.LittleEndian.Uint32(setsData))
	if words <= 0 || words > MaxLists/64+1 {
		return nil, fmt.Errorf("rules: sets section: %d words per set", words)
	}
	sets := viewUint64(setsData[8:])
	urlData, err := need(sectionURLs)
	if err != nil {
		return nil, err
	}
	urls, err := decodeURLs(urlData, len(m.Lists))
	if err != nil {
		return nil, err
	}
	shards := make([][]byte, domainset.Shards)
	for i := range shards {
		if shards[i], err = need(shardName(i)); err != nil {
			return nil, err
		}
	}
	set, err := domainset.FromShards(shards)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if len(sets)%words != 0 {
		return nil, fmt.Errorf("rules: sets section does not hold whole sets")
	}
	nsets := len(sets) / words
	var bad error
	set.Each(func(e domainset.Entry) bool {
		if int(e.Set) >= nsets {
			bad = fmt.Errorf("rules: a domain names set %d of %d", e.Set, nsets)
			return false
		}
		return true
	})
	if bad != nil {
		return nil, bad
	}
	return newRuleset(m, set, sets, words, urls)
}

// viewUint64 views aligned little-endian bytes as words without copying,
// and copies when the bytes are not aligned.
func viewUint64(b []byte) []uint64 {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%8 == 0 && nativeLittle {
		return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	return out
}

var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
