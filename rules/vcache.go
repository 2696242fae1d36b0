package rules

import (
	"math/bits"
	"sync/atomic"

	"vigie/rules/domainset"
)

// vcacheBits sizes the verdict cache: 4,096 slots of 16 B, 64 KiB per
// generation, which holds the head of a school's traffic (a few hundred
// names make most of its queries) and stays in L2.
const vcacheBits = 12

// verdictCache remembers decideDomain's outcome for recent (host, profile,
// active windows) triples. It belongs to one Ruleset, so a new generation
// starts empty and never answers with an old policy.
//
// It is direct-mapped and lock-free, for the DNS and proxy goroutines that
// call Decide at once: a slot is two words written with atomic stores, the
// second holding key^value (the "lockless transposition table" trick), so
// a reader that sees half of one write and half of another finds a key
// that does not match and treats it as a miss. A write only ever replaces
// a slot with a correct answer of the same generation, so losing a race
// costs a recomputation, never a wrong verdict.
type verdictCache struct {
	slots [1 << vcacheBits]vcacheSlot
}

type vcacheSlot struct {
	val, check atomic.Uint64
}

// A cached value packs the outcome: bit 63 set (0 means empty), bits 0-1
// the action (none, allow, block), bits 8-23 the deciding list and bits
// 24-31 the length of the deciding entry, a suffix of the host.
const (
	vcValid   = 1 << 63
	vcNone    = 0
	vcAllow   = 1
	vcBlock   = 2
	vcMaxList = 1<<16 - 1
	vcMaxHost = 1<<8 - 1
)

// vcacheKey mixes the host's fingerprint with the profile and the window
// state, so that a profile whose time window opens or closes looks up a
// different key, never a verdict taken under the other state.
func vcacheKey(fp uint64, id ProfileID, active uint64) uint64 {
	k := fp ^ (uint64(uint32(id))+1)*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(active*0xbf58476d1ce4e5b9, 31)
	// splitmix64's finaliser: the slot index takes the top bits, and
	// profile and window bits must reach them.
	k ^= k >> 30
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 27
	k *= 0x94d049bb133111eb
	k ^= k >> 31
	return k
}

func (c *verdictCache) get(key uint64) (uint64, bool) {
	s := &c.slots[key>>(64-vcacheBits)]
	v := s.val.Load()
	if v == 0 || s.check.Load()^v != key {
		return 0, false
	}
	return v, true
}

func (c *verdictCache) put(key, v uint64) {
	s := &c.slots[key>>(64-vcacheBits)]
	s.val.Store(v)
	s.check.Store(key ^ v)
}

// decideDomainCached is decideDomain behind the verdict cache. The key is
// the fingerprint of the whole canonical host (the same hash the domain set
// uses, so a collision is as unlikely as one in the set itself).
func (rs *Ruleset) decideDomainCached(id ProfileID, p *compiledProfile, active uint64, host string) (Verdict, bool) {
	c := rs.vcache
	if c == nil || len(host) > vcMaxHost {
		return rs.decideDomain(p, active, host)
	}
	key := vcacheKey(domainset.Fingerprint(host), id, active)
	if v, ok := c.get(key); ok {
		list, n := int(v>>8&vcMaxList), int(v>>24&vcMaxHost)
		switch v & 3 {
		case vcAllow:
			return rs.verdict(Allow, MatchDomain, list, host[len(host)-n:]), true
		case vcBlock:
			return rs.verdict(Block, MatchDomain, list, host[len(host)-n:]), true
		}
		return Verdict{}, false
	}
	a, list, entry, decided := rs.domainMatch(p, active, host)
	if !decided {
		c.put(key, vcValid|vcNone)
		return Verdict{}, false
	}
	if list <= vcMaxList && len(entry) <= len(host) {
		packed := uint64(vcValid|vcBlock) | uint64(list)<<8 | uint64(len(entry))<<24
		if a == Allow {
			packed = uint64(vcValid|vcAllow) | uint64(list)<<8 | uint64(len(entry))<<24
		}
		c.put(key, packed)
	}
	return rs.verdict(a, MatchDomain, list, entry), true
}
