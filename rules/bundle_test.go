package rules_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/rules/policy"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))

func TestBundleRoundTrip(t *testing.T) {
	rs := compileTest(t)
	data, err := rules.EncodeBundle(rs, 7, time.Now(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	loaded, h, err := rules.DecodeBundle(data, testKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if h.Serial != 7 || loaded.Domains() != rs.Domains() {
		t.Fatalf("serial %d domains %d, want 7 %d", h.Serial, loaded.Domains(), rs.Domains())
	}
	queries := []rules.Query{
		{Host: "a.bad.example"}, {Host: "x.sub.bad.example"}, {Host: "games.example"},
		{URL: "http://pages.example/sk/1"}, {URL: "http://x.evil7.example/"}, {Host: "social.example", Time: mon1230},
		{Host: "local-bad.example"}, {Host: "unlisted.example"},
	}
	for _, zone := range []string{"pedagogique", "labo", "serveurs"} {
		a, _ := rs.ZoneProfile(testSchool, zone)
		b, _ := loaded.ZoneProfile(testSchool, zone)
		for _, q := range queries {
			if q.Time.IsZero() {
				q.Time = mon1000
			}
			if va, vb := rs.Decide(a, q), loaded.Decide(b, q); va != vb {
				t.Errorf("%s %+v: compiled %+v, loaded %+v", zone, q, va, vb)
			}
		}
	}
	// Re-encoding the loaded ruleset gives the same sections.
	again, err := rules.EncodeBundle(loaded, 7, h.Created, testKey)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := bundle.Decode(data, nil)
	b2, _ := bundle.Decode(again, nil)
	for i := range b1.Sections {
		if b1.Sections[i].Hash != b2.Sections[i].Hash {
			t.Errorf("section %s differs after a round trip", b1.Sections[i].Name)
		}
	}
}

func TestBundleRefusesTampering(t *testing.T) {
	rs := compileTest(t)
	data, err := rules.EncodeBundle(rs, 1, time.Now(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := testKey.Public().(ed25519.PublicKey)
	for _, i := range []int{0, 20, 100, len(data) / 2, len(data) - 1} {
		d := bytes.Clone(data)
		d[i] ^= 0x40
		if _, _, err := rules.DecodeBundle(d, pub); err == nil {
			t.Errorf("flipping byte %d went unnoticed", i)
		}
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	if _, _, err := rules.DecodeBundle(data, other.Public().(ed25519.PublicKey)); !errors.Is(err, bundle.ErrSignature) {
		t.Errorf("wrong key: %v", err)
	}
}

// TestOneDomainChangeMovesLittle: the property the control plane relies on
// to send an edge only what changed.
func TestOneDomainChangeMovesLittle(t *testing.T) {
	p, err := policy.Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs1, _, err := rules.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	// A name whose set of lists already exists (the common case: one more
	// domain in a list); a new combination of lists also changes "sets".
	p.Lists[0].Domains = append(p.Lists[0].Domains, "new-social.example")
	rs2, _, err := rules.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := rs1.Sections()
	s2, _ := rs2.Sections()
	var changed []string
	for i := range s1 {
		if s1[i].Name != s2[i].Name {
			t.Fatalf("section order changed: %s vs %s", s1[i].Name, s2[i].Name)
		}
		if !bytes.Equal(s1[i].Data, s2[i].Data) {
			changed = append(changed, s1[i].Name)
		}
	}
	// meta (the list's count) and one domain shard.
	if len(changed) != 2 || changed[0] != "meta" {
		t.Errorf("changed sections = %v, want meta and one shard", changed)
	}
}

// FuzzLoad feeds mutated bundles, unsigned, to the section decoders.
func FuzzLoad(f *testing.F) {
	rs := compileTest(f)
	data, err := rules.EncodeBundle(rs, 1, time.Unix(0, 0), testKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Decode(data, nil)
		if err != nil {
			return
		}
		rs, err := rules.Load(b)
		if err != nil {
			return
		}
		id, _ := rs.ZoneProfile(testSchool, "pedagogique")
		rs.Decide(id, rules.Query{Host: "a.bad.example", URL: "http://pages.example/sk"})
	})
}
