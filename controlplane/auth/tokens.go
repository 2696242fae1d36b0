package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Bearer token prefixes tell a token's kind at a glance (and let secret
// scanners recognize leaked ones).
const (
	APITokenPrefix  = "vga_"
	EdgeTokenPrefix = "vge_"
)

// NewToken returns a fresh random token with prefix (128 bits of entropy)
// and the hash the store keeps instead of it.
func NewToken(prefix string) (token, hash string) {
	token = prefix + rand.Text()
	return token, HashToken(token)
}

// HashToken is what the store keeps of a token, session id or edge token:
// tokens are random, so a fast hash suffices and a stolen database holds
// nothing usable.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) <= 256
}
