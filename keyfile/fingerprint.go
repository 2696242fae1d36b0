package keyfile

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint names a public key in logs and metric labels: the first 8
// hex digits of the SHA-256 of its 32 raw bytes (the same hash a
// requisition export's summary prints in full, so the two can be compared
// by eye). From a PEM file:
//
//	openssl pkey -pubin -in academie.pub -outform DER | tail -c 32 | sha256sum | cut -c1-8
//
// Eight digits tell apart the two or three keys an edge pins during a
// rotation; they are a name, not a security check.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:4])
}
