package bundle

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

// TestDecodeKeys checks the rotation case: a bundle verifies with whichever
// pinned key signed it, reports which, and is refused for its signature
// when no pinned key signed it. An empty key list never means "unsigned".
func TestDecodeKeys(t *testing.T) {
	data := sample(t) // signed by testKey(1)
	pub := func(seed byte) ed25519.PublicKey { return testKey(seed).Public().(ed25519.PublicKey) }
	cases := []struct {
		name    string
		keys    []ed25519.PublicKey
		want    int
		wantErr error
	}{
		{"only key", []ed25519.PublicKey{pub(1)}, 0, nil},
		{"new key added after the old", []ed25519.PublicKey{pub(1), pub(2)}, 0, nil},
		{"new key first", []ed25519.PublicKey{pub(2), pub(1)}, 1, nil},
		{"signer not pinned", []ed25519.PublicKey{pub(2), pub(3)}, -1, ErrSignature},
		{"no key", nil, -1, nil},
		{"short key", []ed25519.PublicKey{pub(1)[:16]}, -1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, i, err := DecodeKeys(data, c.keys)
			if c.want >= 0 {
				if err != nil || i != c.want || b.Serial != 42 {
					t.Fatalf("DecodeKeys = key %d, %v; want key %d", i, err, c.want)
				}
				return
			}
			if err == nil || i != -1 || b != nil {
				t.Fatalf("DecodeKeys = key %d, %v; want a refusal", i, err)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("DecodeKeys: %v, want %v", err, c.wantErr)
			}
			if _, _, j, err := ReadHeaderKeys(data, c.keys); err == nil || j != -1 {
				t.Fatalf("ReadHeaderKeys accepted what DecodeKeys refused (key %d)", j)
			}
		})
	}
	// A section damaged after signing is refused even by the right key.
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	if _, _, err := DecodeKeys(bad, []ed25519.PublicKey{pub(2), pub(1)}); !errors.Is(err, ErrHash) {
		t.Fatalf("damaged section: %v, want ErrHash", err)
	}
}
