package policysync

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// The cache keeps fetched sections on disk until they are applied, so
// that a transfer interrupted by a restart or a lost link resumes instead
// of starting over. Each file is named by its section's hash and checked
// against it when read.

func (a *Agent) cachePath(hash [32]byte) string {
	return filepath.Join(a.cfg.CacheDir, hex.EncodeToString(hash[:]))
}

func (a *Agent) cached(hash [32]byte) bool {
	if a.cfg.CacheDir == "" {
		return false
	}
	_, err := os.Stat(a.cachePath(hash))
	return err == nil
}

// readCache returns a cached section, dropping one whose content no longer
// matches its name (a torn write, a disk error).
func (a *Agent) readCache(hash [32]byte) ([]byte, bool) {
	if a.cfg.CacheDir == "" {
		return nil, false
	}
	d, err := os.ReadFile(a.cachePath(hash))
	if err != nil {
		return nil, false
	}
	if sha256.Sum256(d) != hash {
		os.Remove(a.cachePath(hash))
		return nil, false
	}
	return d, true
}

func (a *Agent) writeCache(hash [32]byte, d []byte) {
	if a.cfg.CacheDir == "" {
		return
	}
	tmp, err := os.CreateTemp(a.cfg.CacheDir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(d)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), a.cachePath(hash)) != nil {
		os.Remove(tmp.Name())
	}
}

// pruneCache drops cached sections once applied: the applied bundle is on
// disk as last-known-good and holds them.
func (a *Agent) pruneCache() {
	if a.cfg.CacheDir == "" {
		return
	}
	ents, err := os.ReadDir(a.cfg.CacheDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.Remove(filepath.Join(a.cfg.CacheDir, e.Name()))
	}
}
