package api

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"vigie/controlplane/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
	return nil
}

// decodeBody strictly decodes a JSON request body into v: JSON content
// type, bounded size, no unknown field, nothing after the value.
func decodeBody(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return Errorf("unsupported-media", "le corps doit être du JSON (Content-Type: application/json)")
		}
	}
	body := http.MaxBytesReader(w, r.Body, max)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return Errorf("bad-request", "lecture du corps : %v", err)
	}
	return decodeJSON(data, v)
}

// decodeJSON is the part of decodeBody the fuzz target exercises.
func decodeJSON(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return Errorf("bad-request", "corps JSON attendu")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf("bad-request", "JSON invalide : %s", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf("bad-request", "JSON invalide : données après la valeur")
	}
	return nil
}

// jsonError names the place of a decoding error.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntaxe à l'octet %d : %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(racine)"
		}
		return fmt.Sprintf("champ %s : %s attendu, %s reçu", field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "champ inconnu " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

// Page is the envelope of every collection: items and, when more remain,
// the cursor of the next page.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// pageParams reads limit and cursor.
func pageParams(r *http.Request) (store.Page, error) {
	var p store.Page
	q := r.URL.Query()
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, Errorf("bad-request", "limit doit être un entier positif")
		}
		p.Limit = min(n, store.MaxPage)
	} else {
		p.Limit = 100
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) > 1024 {
			return p, Errorf("bad-request", "curseur invalide")
		}
		p.After = string(b)
	}
	return p, nil
}

func cursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// pageOf finishes a page read from the store: items were fetched with
// Limit+1 to learn whether more remain.
func pageOf[T any](items []T, p store.Page, key func(T) string) Page[T] {
	out := Page[T]{Items: items}
	if out.Items == nil {
		out.Items = []T{}
	}
	if len(items) > p.Limit {
		out.Items = items[:p.Limit]
		out.Next = cursor(key(out.Items[p.Limit-1]))
	}
	return out
}

// paginate pages a small collection held in memory, sorted by key.
func paginate[T any](items []T, p store.Page, key func(T) string) Page[T] {
	start := 0
	if p.After != "" {
		for start < len(items) && key(items[start]) <= p.After {
			start++
		}
	}
	end := min(len(items), start+p.Limit+1)
	return pageOf(items[start:end], p, key)
}

func publicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func pathUint(r *http.Request, name string) (uint64, error) {
	n, err := strconv.ParseUint(r.PathValue(name), 10, 63)
	if err != nil {
		return 0, Errorf("bad-request", "%s doit être un entier positif", name)
	}
	return n, nil
}
