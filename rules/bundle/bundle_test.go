package bundle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func sample(t testing.TB) []byte {
	t.Helper()
	secs := []Section{
		{Name: "meta", Data: []byte(`{"a":1}`)},
		{Name: "odd", Data: []byte("12345")},
		{Name: "empty", Data: nil},
		{Name: "words", Data: bytes.Repeat([]byte{7}, 64)},
	}
	data, err := Encode(42, time.Unix(1700000000, 0), secs, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRoundTrip(t *testing.T) {
	data := sample(t)
	b, err := Decode(data, testKey(1).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if b.Serial != 42 || !b.Created.Equal(time.Unix(1700000000, 0)) || len(b.Sections) != 4 {
		t.Fatalf("header = %+v", b.Header)
	}
	for _, s := range b.Sections {
		if len(s.Data) > 0 && uintptr(len(data)) > 0 {
			off := bytes.Index(data, s.Data)
			if off%8 != 0 {
				t.Errorf("section %s at unaligned offset %d", s.Name, off)
			}
		}
	}
	if d, _ := b.Section("odd"); string(d) != "12345" {
		t.Errorf("odd = %q", d)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := sample(t)
	pub := testKey(1).Public().(ed25519.PublicKey)
	flip := func(i int) []byte {
		d := bytes.Clone(good)
		d[i] ^= 1
		return d
	}
	cases := []struct {
		name string
		data []byte
		pub  ed25519.PublicKey
		want error
	}{
		{"empty", nil, pub, ErrTruncated},
		{"short header", good[:10], pub, ErrTruncated},
		{"bad magic", flip(0), pub, ErrMagic},
		{"bad version", flip(8), pub, ErrVersion},
		{"huge count", func() []byte { d := bytes.Clone(good); d[15] = 0xff; return d }(), pub, ErrCorrupt},
		{"table cut", good[:headerSize+10], pub, ErrTruncated},
		{"serial changed", flip(16), pub, ErrSignature},
		{"section table changed", flip(headerSize + 40), pub, ErrHash},
		{"section byte changed", flip(len(good) - 1), pub, ErrHash},
		{"truncated sections", good[:len(good)-3], pub, ErrTruncated},
		{"wrong key", good, testKey(2).Public().(ed25519.PublicKey), ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data, c.pub)
			if !errors.Is(err, c.want) {
				t.Errorf("Decode error = %v, want %v", err, c.want)
			}
		})
	}
}

func TestManifestJoin(t *testing.T) {
	data := sample(t)
	pub := testKey(1).Public().(ed25519.PublicKey)
	b, err := Decode(data, pub)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Manifest(data)
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[[32]byte][]byte{}
	for _, s := range b.Sections {
		byHash[s.Hash] = s.Data
	}
	joined, err := Join(m, pub, func(name string, h [32]byte) ([]byte, error) {
		d, ok := byHash[h]
		if !ok {
			return nil, fmt.Errorf("no %s", name)
		}
		return d, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(joined, data) {
		t.Fatal("joined bundle differs from the original")
	}
	_, err = Join(m, pub, func(string, [32]byte) ([]byte, error) { return []byte("forged"), nil })
	if !errors.Is(err, ErrHash) {
		t.Errorf("Join with forged section: %v, want ErrHash", err)
	}
}

// FuzzDecode: arbitrary bytes never crash the decoder; seeds include a
// valid bundle so mutations reach the section checks.
func FuzzDecode(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub := testKey(1).Public().(ed25519.PublicKey)
		_, err := Decode(data, pub)
		// Pinning a second key changes nothing but which key verified.
		_, i, errKeys := DecodeKeys(data, []ed25519.PublicKey{testKey(2).Public().(ed25519.PublicKey), pub})
		if (err == nil) != (errKeys == nil) || (errKeys == nil && i != 1) {
			t.Fatalf("Decode: %v; DecodeKeys: key %d, %v", err, i, errKeys)
		}
		if b, err := Decode(data, nil); err == nil {
			for _, s := range b.Sections {
				_ = s.Data
			}
			if m, err := Manifest(data); err == nil {
				Join(m, nil, func(string, [32]byte) ([]byte, error) { return nil, nil })
			}
		}
	})
}

func TestWriteSeed(t *testing.T) {
	// Keep a valid bundle in the seed corpus so that `go test -fuzz`
	// starts from deep inputs.
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	path := filepath.Join(dir, "valid")
	want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", sample(t))
	if got, err := os.ReadFile(path); err == nil && string(got) == want {
		return
	}
	if os.Getenv("VIGIE_UPDATE_SEEDS") == "" {
		t.Fatal("fuzz seed missing or stale; run with VIGIE_UPDATE_SEEDS=1 to write it")
	}
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}
