// Package requisition keeps the exports a chef d'établissement transmits
// to the AQSSI (the recteur's delegate) on the control plane, so that a
// requisition's personal data never leaves the audited system by e-mail.
// Each export is encrypted at rest (AES-256-GCM, key file in the data
// directory) and kept for a bounded time, then purged. The vault records
// status; the audit log entries are the caller's (it knows the actor).
package requisition

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"vigie/atomicfile"
)

// DefaultKeep is how long a transmitted export stays downloadable.
const DefaultKeep = 30 * 24 * time.Hour

// ErrNotFound is returned for an unknown or purged transmission.
var ErrNotFound = errors.New("requisition: no such transmission (unknown, expired or purged)")

// Transmission is one export handed to the AQSSI. It carries no personal
// data: the school, the requisition's reference and the file's hash.
type Transmission struct {
	ID            string    `json:"id"`
	UAI           string    `json:"uai"`
	Reference     string    `json:"reference,omitempty"`
	Name          string    `json:"name"`
	SHA256        string    `json:"sha256"`
	Bytes         int       `json:"bytes"`
	TransmittedBy string    `json:"transmitted_by"`
	TransmittedAt time.Time `json:"transmitted_at"`
	Expires       time.Time `json:"expires"`
	DownloadedBy  string    `json:"downloaded_by,omitempty"`
	DownloadedAt  time.Time `json:"downloaded_at,omitzero"`
	// PurgedAt is when the encrypted file was deleted (expiry).
	PurgedAt time.Time `json:"purged_at,omitzero"`
}

// Vault is a directory of encrypted exports and their status files.
type Vault struct {
	dir  string
	keep time.Duration
	now  func() time.Time
	aead cipher.AEAD
	mu   sync.Mutex
}

// Open opens (creating it if needed) the vault in dir, with its key in
// dir/key (32 random bytes, mode 0600, made on first use). keep <= 0 means
// DefaultKeep.
func Open(dir string, keep time.Duration, now func() time.Time) (*Vault, error) {
	if keep <= 0 {
		keep = DefaultKeep
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("requisition: %w", err)
	}
	keyPath := filepath.Join(dir, "key")
	key, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("requisition: key: %w", err)
		}
		if err := atomicfile.Write(keyPath, key, 0o600); err != nil {
			return nil, fmt.Errorf("requisition: key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("requisition: key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("requisition: key %s: %d bytes, want 32", keyPath, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("requisition: key %s: %w", keyPath, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("requisition: %w", err)
	}
	return &Vault{dir: dir, keep: keep, now: now, aead: aead}, nil
}

// Keep is how long a transmission stays downloadable.
func (v *Vault) Keep() time.Duration { return v.keep }

func (v *Vault) blob(id string) string { return filepath.Join(v.dir, id+".bin") }
func (v *Vault) meta(id string) string { return filepath.Join(v.dir, id+".json") }

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Put encrypts and keeps data (a signed export ZIP) for the AQSSI.
func (v *Vault) Put(data []byte, t Transmission) (Transmission, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return t, fmt.Errorf("requisition: id: %w", err)
	}
	t.ID = hex.EncodeToString(b[:])
	sum := sha256.Sum256(data)
	t.SHA256, t.Bytes = hex.EncodeToString(sum[:]), len(data)
	t.TransmittedAt = v.now().UTC()
	t.Expires = t.TransmittedAt.Add(v.keep)
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return t, fmt.Errorf("requisition: nonce: %w", err)
	}
	// The ID is the additional data: a blob renamed onto another
	// transmission does not decrypt.
	sealed := v.aead.Seal(nonce, nonce, data, []byte(t.ID))
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := atomicfile.Write(v.blob(t.ID), sealed, 0o600); err != nil {
		return t, fmt.Errorf("requisition: store: %w", err)
	}
	if err := v.writeMeta(t); err != nil {
		os.Remove(v.blob(t.ID))
		return t, err
	}
	return t, nil
}

func (v *Vault) writeMeta(t Transmission) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("requisition: %w", err)
	}
	if err := atomicfile.Write(v.meta(t.ID), b, 0o600); err != nil {
		return fmt.Errorf("requisition: status: %w", err)
	}
	return nil
}

func (v *Vault) readMeta(id string) (Transmission, error) {
	var t Transmission
	if !validID(id) {
		return t, ErrNotFound
	}
	b, err := os.ReadFile(v.meta(id))
	if errors.Is(err, os.ErrNotExist) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("requisition: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("requisition: %s: %w", v.meta(id), err)
	}
	return t, nil
}

// List returns every transmission (purged ones included, so that the
// chef still sees what happened), newest first.
func (v *Vault) List() ([]Transmission, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ents, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("requisition: %w", err)
	}
	var out []Transmission
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		t, err := v.readMeta(id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Transmission) int { return b.TransmittedAt.Compare(a.TransmittedAt) })
	return out, nil
}

// Download decrypts a transmission for by and records the download.
func (v *Vault) Download(id, by string) ([]byte, Transmission, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, err := v.readMeta(id)
	if err != nil {
		return nil, t, err
	}
	if !t.PurgedAt.IsZero() || !v.now().Before(t.Expires) {
		return nil, t, ErrNotFound
	}
	sealed, err := os.ReadFile(v.blob(id))
	if err != nil {
		return nil, t, fmt.Errorf("requisition: %w", err)
	}
	ns := v.aead.NonceSize()
	if len(sealed) < ns {
		return nil, t, fmt.Errorf("requisition: %s: truncated", v.blob(id))
	}
	data, err := v.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(id))
	if err != nil {
		return nil, t, fmt.Errorf("requisition: %s does not decrypt (altered, or another key): %w", v.blob(id), err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != t.SHA256 {
		return nil, t, fmt.Errorf("requisition: %s: hash differs from the transmitted file's", v.blob(id))
	}
	if t.DownloadedAt.IsZero() {
		t.DownloadedBy, t.DownloadedAt = by, v.now().UTC()
		if err := v.writeMeta(t); err != nil {
			return nil, t, err
		}
	}
	return data, t, nil
}

// Purge deletes the encrypted files of expired transmissions and returns
// them, for the caller to audit (expired, then purged).
func (v *Vault) Purge() ([]Transmission, error) {
	all, err := v.List()
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now().UTC()
	var out []Transmission
	for _, t := range all {
		if !t.PurgedAt.IsZero() || now.Before(t.Expires) {
			continue
		}
		if err := os.Remove(v.blob(t.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return out, fmt.Errorf("requisition: purge: %w", err)
		}
		t.PurgedAt = now
		if err := v.writeMeta(t); err != nil {
			return out, err
		}
		out = append(out, t)
	}
	return out, nil
}
