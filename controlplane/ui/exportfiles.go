package ui

import (
	"archive/zip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"vigie/journal/export"
)

// exportKeep is how long a produced export stays downloadable from its
// result page. The archive is not the server's to keep (the audit log
// keeps its fingerprint, and "Refaire cet export" builds it again): the
// file lives just long enough for the person who made it to save it and
// print its summary.
const exportKeep = 30 * time.Minute

// exportFiles are the exports just produced, each downloadable by the
// account that made it until it expires.
type exportFiles struct {
	mu    sync.Mutex
	files map[string]*heldExport
}

type heldExport struct {
	path, name, actor string
	expires           time.Time
}

// keep registers the file at path (a finished export) and returns the
// token of its download link. Expired files are removed on the way.
func (x *exportFiles) keep(path, name, actor string, now time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ui: export token: %w", err)
	}
	tok := hex.EncodeToString(b[:])
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sweep(now)
	if x.files == nil {
		x.files = map[string]*heldExport{}
	}
	x.files[tok] = &heldExport{path: path, name: name, actor: actor, expires: now.Add(exportKeep)}
	return tok, nil
}

// get returns the export of token if actor made it and it has not
// expired.
func (x *exportFiles) get(tok, actor string, now time.Time) (*heldExport, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sweep(now)
	f, ok := x.files[tok]
	if !ok || f.actor != actor {
		return nil, false
	}
	return f, true
}

func (x *exportFiles) sweep(now time.Time) {
	for k, f := range x.files {
		if now.After(f.expires) {
			os.Remove(f.path)
			delete(x.files, k)
		}
	}
}

// readManifest reads the manifest of an export ZIP (its counts per
// stream) and the bytes of one of its files.
func readManifest(path string) (*export.Manifest, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("ui: open export: %w", err)
	}
	defer zr.Close()
	b, err := zipFile(&zr.Reader, export.ManifestName)
	if err != nil {
		return nil, err
	}
	var m export.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("ui: export manifest: %w", err)
	}
	return &m, nil
}

func zipFile(zr *zip.Reader, name string) ([]byte, error) {
	f, err := zr.Open(name)
	if err != nil {
		return nil, fmt.Errorf("ui: export: %s: %w", name, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}
