package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// policyManifest encodes sections whose data are the given strings and
// returns the bundle's manifest.
func policyManifest(t testing.TB, serial uint64, data ...string) []byte {
	t.Helper()
	var secs []Section
	for i, d := range data {
		secs = append(secs, Section{Name: fmt.Sprintf("s%d", i), Data: []byte(d)})
	}
	b, err := Encode(serial, time.Unix(1_800_000_000, 0), secs, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Manifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPatchRoundTrip: a patch rebuilds the next manifest byte for byte,
// with the offsets a grown or shrunk section shifts, and only the rows
// that changed travel.
func TestPatchRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, cur []string
		rows     int
	}{
		{"one section grows", []string{"meta", "a.example\n", "urls"}, []string{"meta", "a.example\nb.example\n", "urls"}, 1},
		{"first shrinks, last changes", []string{"metadata", "x", "y"}, []string{"m", "x", "z"}, 2},
		{"nothing but the serial", []string{"a", "b"}, []string{"a", "b"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m1, m2 := policyManifest(t, 1, tc.old...), policyManifest(t, 2, tc.cur...)
			patch, ok := ManifestPatch(m1, m2)
			if !ok {
				t.Fatal("no patch between two versions of one layout")
			}
			if want := len(PatchMagic) + headerSize + sigSize + 4 + tc.rows*patchRow; len(patch) != want {
				t.Errorf("patch of %d bytes, want %d (%d changed rows)", len(patch), want, tc.rows)
			}
			got, err := ApplyPatch(m1, patch)
			if err != nil || !bytes.Equal(got, m2) {
				t.Fatalf("rebuilt manifest differs (%v)", err)
			}
			if _, _, err := ReadHeader(got, testKey(1).Public().(ed25519.PublicKey)); err != nil {
				t.Fatalf("rebuilt manifest does not verify: %v", err)
			}
		})
	}
	if _, ok := ManifestPatch(policyManifest(t, 1, "a"), policyManifest(t, 2, "a", "b")); ok {
		t.Error("a patch across a change of layout (section count)")
	}
}

// FuzzPatchRoundTrip builds two versions of a bundle from the input and
// checks the patch between them rebuilds the second exactly; the input is
// also fed to ApplyPatch as a hostile patch, which must never panic nor
// yield a manifest of another size.
func FuzzPatchRoundTrip(f *testing.F) {
	f.Add([]byte("a\x00b\x00c"), []byte("a\x00bb\x00c"))
	f.Add([]byte("x"), []byte(""))
	f.Add([]byte(PatchMagic), []byte(PatchMagic+"\x00\x00"))
	f.Fuzz(func(t *testing.T, oldIn, curIn []byte) {
		split := func(b []byte) []string {
			parts := bytes.Split(b, []byte{0})
			if len(parts) > 8 {
				parts = parts[:8]
			}
			var out []string
			for _, p := range parts {
				out = append(out, string(p))
			}
			return out
		}
		o, c := split(oldIn), split(curIn)
		m1 := policyManifest(t, 1, o...)
		if len(o) == len(c) {
			m2 := policyManifest(t, 2, c...)
			patch, ok := ManifestPatch(m1, m2)
			if !ok {
				t.Fatal("no patch between two versions of one layout")
			}
			if got, err := ApplyPatch(m1, patch); err != nil || !bytes.Equal(got, m2) {
				t.Fatalf("round trip failed (%v)", err)
			}
		}
		hostile := append([]byte(PatchMagic), curIn...)
		if out, err := ApplyPatch(m1, hostile); err == nil && len(out) != len(m1) {
			t.Fatalf("patched manifest of %d bytes from %d", len(out), len(m1))
		}
	})
}

// FuzzSplitFrames reads arbitrary delta answers from the network: never a
// panic, and every section returned is keyed by its own hash.
func FuzzSplitFrames(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 'a', 'b', 'c', 1, 0, 0, 0, 'x'})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, extra, err := SplitFrames(b)
		if err != nil {
			return
		}
		if m == nil || len(m) > len(b) {
			t.Fatalf("manifest of %d bytes from %d", len(m), len(b))
		}
		for h, d := range extra {
			if sha256.Sum256(d) != h {
				t.Fatal("a section is not keyed by its hash")
			}
		}
	})
}

func TestFrames(t *testing.T) {
	b := AppendFrame(AppendFrame(nil, []byte("manifest")), []byte("section"))
	m, secs, err := SplitFrames(b)
	if err != nil || string(m) != "manifest" || string(secs[sha256.Sum256([]byte("section"))]) != "section" {
		t.Fatalf("frames did not round-trip: %q %v %v", m, secs, err)
	}
	if serial, _ := Peek(m); serial != 0 {
		t.Error("Peek of a short input claims a serial")
	}
}
