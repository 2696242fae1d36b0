// Package normalize turns host names and URLs, as written in blocklists or as
// seen in DNS queries and HTTP requests, into one canonical form, so that a
// list entry and a request naming the same thing compare equal byte for byte.
//
// The canonical host is lowercase ASCII without a trailing dot, with IDN
// labels as punycode A-labels and IP literals in netip's textual form. The
// canonical URL follows squidGuard, whose lists the schools already use: no
// scheme, userinfo or fragment, default ports dropped, everything lowercased.
//
// Host sits on the per-query DNS path: an already-canonical name costs no
// allocation (BenchmarkHost).
package normalize

import (
	"errors"
	"strconv"
)

// ErrInvalid is wrapped by every rejection, so callers can test with errors.Is
// without depending on the reason text.
var ErrInvalid = errors.New("invalid")

// Error is the concrete type of every rejection. Reason is short and meant for
// people ("label too long (64 bytes)"); list parsers put it in their reports.
type Error struct {
	What   string // "host" or "URL"
	Input  string // the rejected input, unmodified
	Reason string
}

// maxQuoted bounds how much of a rejected input an error message repeats: a
// list line can be 64 KiB long and logs should stay readable.
const maxQuoted = 80

func (e *Error) Error() string {
	in := e.Input
	suffix := ""
	if len(in) > maxQuoted {
		in, suffix = in[:maxQuoted], "..."
	}
	return "normalize: invalid " + e.What + " " + strconv.Quote(in) + suffix + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

func hostError(input, reason string) error {
	return &Error{What: "host", Input: input, Reason: reason}
}

func urlError(input, reason string) error {
	return &Error{What: "URL", Input: input, Reason: reason}
}

// badChar formats the reason for a byte that has no place in the output.
func badChar(c byte) string {
	if c >= 0x80 {
		return "invalid byte 0x" + strconv.FormatUint(uint64(c), 16)
	}
	return "invalid character " + strconv.QuoteRune(rune(c))
}
