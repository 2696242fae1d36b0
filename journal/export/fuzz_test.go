package export

import (
	"archive/zip"
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bytes as an export ZIP: Verify must answer
// (a *Problem, or success only for the untouched seed) without crashing,
// hanging or allocating without bound.
func FuzzVerify(f *testing.F) {
	w := newWorld(f, 30, 1, 7)
	data, _ := export(f, w, baseRequest(day0, day0.Add(24*time.Hour)))
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte("PK\x03\x04"))
	// A tiny valid ZIP with the right names and junk content.
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range append([]string{ManifestName, SignatureName, SummaryName}, DataFiles...) {
		fw, _ := zw.Create(n)
		fw.Write([]byte("{}\n"))
	}
	zw.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, z []byte) {
		_, err := Verify(bytes.NewReader(z), int64(len(z)), cpPub)
		if err == nil {
			if !bytes.Equal(z, data) {
				t.Fatal("an altered export verifies")
			}
			return
		}
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("error of type %T: %v", err, err)
		}
	})
}
