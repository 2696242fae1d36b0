package requisition

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"vigie/atomicfile"
)

// Request is the AQSSI asking a school for an export: the chef sees it on
// their Journaux page as a requisition to answer. It names the
// requisition, never a person.
type Request struct {
	ID        string `json:"id"`
	UAI       string `json:"uai"`
	Reference string `json:"reference"`
	Motive    string `json:"motive,omitempty"`
	// From and To are the period the requisition names, as typed.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	By   string `json:"by"`
	At   string `json:"at"`
}

func (v *Vault) requestDir() string { return filepath.Join(v.dir, "requests") }

// Ask records a request for an export.
func (v *Vault) Ask(r Request) (Request, error) {
	r.Reference, r.UAI = strings.TrimSpace(r.Reference), strings.ToUpper(strings.TrimSpace(r.UAI))
	if r.Reference == "" {
		return r, fmt.Errorf("requisition: reference: required")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return r, fmt.Errorf("requisition: id: %w", err)
	}
	r.ID = hex.EncodeToString(b[:])
	r.At = v.now().UTC().Format("2006-01-02T15:04:05Z")
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return r, fmt.Errorf("requisition: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := os.MkdirAll(v.requestDir(), 0o700); err != nil {
		return r, fmt.Errorf("requisition: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(v.requestDir(), r.ID+".json"), data, 0o600); err != nil {
		return r, fmt.Errorf("requisition: request: %w", err)
	}
	return r, nil
}

// Requests returns every request, newest first.
func (v *Vault) Requests() ([]Request, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ents, err := os.ReadDir(v.requestDir())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("requisition: %w", err)
	}
	var out []Request
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(v.requestDir(), e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("requisition: %w", err)
		}
		var r Request
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("requisition: %s: %w", p, err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Request) int { return strings.Compare(b.At, a.At) })
	return out, nil
}
