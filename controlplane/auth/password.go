package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id costs. The defaults follow OWASP's minimum for
// argon2id (19 MiB, 2 passes, 1 lane): about 30 ms on a small server, which
// bounds both brute force and the CPU a login burst can take.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams are used for new hashes.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Bounds on stored parameters, so that a tampered hash cannot make a
// verification allocate gigabytes or spin for minutes.
const (
	maxMemory  = 1 << 20 // 1 GiB
	maxTime    = 16
	maxThreads = 16
	saltLen    = 16
	keyLen     = 32
)

// ErrPassword is returned for a wrong password; it says nothing more.
var ErrPassword = errors.New("auth: wrong login or password")

// MinPasswordLen is the shortest password accepted for an account.
const MinPasswordLen = 12

// HashPassword returns the PHC string of an argon2id hash of password.
func HashPassword(password string, p Params) (string, error) {
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("auth: password shorter than %d characters", MinPasswordLen)
	}
	if len(password) > 1024 {
		return "", fmt.Errorf("auth: password longer than 1024 bytes")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// ParseHash reads a PHC argon2id string.
func ParseHash(phc string) (p Params, salt, key []byte, err error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("auth: password hash: %s", why)
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("not an argon2id PHC string")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + strconv.Quote(parts[2]))
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return bad("bad parameter " + strconv.Quote(kv))
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return bad("too many threads")
			}
			p.Threads = uint8(n)
		default:
			return bad("unknown parameter " + strconv.Quote(k))
		}
	}
	if p.Memory < 8 || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads ||
		p.Memory < 8*uint32(p.Threads) {
		return bad("parameters out of bounds")
	}
	enc := base64.RawStdEncoding
	if salt, err = enc.DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > 64 {
		return bad("bad salt")
	}
	if key, err = enc.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return bad("bad key")
	}
	return p, salt, key, nil
}

// CheckPassword compares password with a PHC hash in constant time.
func CheckPassword(phc, password string) error {
	p, salt, key, err := ParseHash(phc)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return ErrPassword
	}
	return nil
}

// dummyHash is checked against when the login does not exist, so that an
// unknown login costs the same time as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("vigie-dummy-password-for-timing", DefaultParams)
	if err != nil {
		panic(err)
	}
	return h
})

// GeneratePassword returns a random 128-bit password in groups of five
// characters (base32: no case or look-alike confusion when typed).
func GeneratePassword() string {
	t := rand.Text()
	var b strings.Builder
	for i := 0; i < len(t); i += 5 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(t[i:min(i+5, len(t))])
	}
	return b.String()
}
