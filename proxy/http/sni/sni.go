// Package sni reads a TLS ClientHello off a connection without terminating
// TLS, so that the transparent HTTPS listener can decide on the server name
// and then either splice the very same bytes to the origin or refuse with an
// alert. The parser is written for hostile input: every length is checked
// against what encloses it and the total read is bounded.
package sni

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxHello bounds the bytes read for one ClientHello. Real ones are under
// 2 KiB (about 1.8 KiB with a post-quantum key share); 64 KiB leaves room for
// large padding or many extensions while keeping a hostile client cheap.
const MaxHello = 64 << 10

const (
	recordHeaderLen   = 5
	maxRecordPayload  = 16384 + 2048 // TLSCiphertext bound; plaintext is 2^14
	recordHandshake   = 22
	handshakeHello    = 1
	extServerName     = 0
	extALPN           = 16
	extEncryptedHello = 0xfe0d
	nameTypeHost      = 0
)

// ErrNotTLS means the first byte is not a TLS handshake record: plain HTTP,
// SSH or garbage sent to the HTTPS port.
var ErrNotTLS = errors.New("sni: not a TLS handshake")

// Hello is what the proxy needs from a ClientHello.
type Hello struct {
	// ServerName is the host_name of the server_name extension, as sent
	// (not normalised); empty when the client sent none.
	ServerName string
	// ALPN lists the offered application protocols.
	ALPN []string
	// ECH is true when the hello carries an encrypted_client_hello
	// extension: ServerName is then the outer, public name.
	ECH bool
}

// Read reads TLS records from r until one whole ClientHello handshake
// message is in, and returns every byte read (to replay to the origin) and
// the parsed hello. At most max bytes are read (MaxHello when max <= 0).
func Read(r io.Reader, max int) (raw []byte, h Hello, err error) {
	if max <= 0 {
		max = MaxHello
	}
	raw = make([]byte, 0, 2048)
	var msg []byte // handshake bytes, across records
	for {
		var hdr [recordHeaderLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(raw) == 0 && errors.Is(err, io.EOF) {
				return raw, h, fmt.Errorf("sni: connection closed before any byte: %w", err)
			}
			return raw, h, fmt.Errorf("sni: record header: %w", err)
		}
		raw = append(raw, hdr[:]...)
		if hdr[0] != recordHandshake {
			return raw, h, ErrNotTLS
		}
		if hdr[1] != 3 {
			return raw, h, fmt.Errorf("sni: record version %d.%d: %w", hdr[1], hdr[2], ErrNotTLS)
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if n == 0 || n > maxRecordPayload {
			return raw, h, fmt.Errorf("sni: record length %d out of range", n)
		}
		if len(raw)+n > max {
			return raw, h, fmt.Errorf("sni: client hello larger than %d bytes", max)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			return raw[:start], h, fmt.Errorf("sni: record body: %w", err)
		}
		msg = append(msg, raw[start:]...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != handshakeHello {
			return raw, h, fmt.Errorf("sni: first handshake message has type %d, not client_hello", msg[0])
		}
		want := 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
		if want > max {
			return raw, h, fmt.Errorf("sni: client hello of %d bytes is larger than %d", want, max)
		}
		if len(msg) >= want {
			h, err = Parse(msg[4:want])
			return raw, h, err
		}
	}
}

// Parse parses the body of a ClientHello handshake message (without its
// 4-byte handshake header).
func Parse(b []byte) (Hello, error) {
	var h Hello
	s := cursor(b)
	if !s.skip(2 + 32) { // legacy_version, random
		return h, errors.New("sni: client hello truncated in version or random")
	}
	sid, ok := s.vec8()
	if !ok || len(sid) > 32 {
		return h, errors.New("sni: bad session id")
	}
	suites, ok := s.vec16()
	if !ok || len(suites) == 0 || len(suites)%2 != 0 {
		return h, errors.New("sni: bad cipher suites")
	}
	comp, ok := s.vec8()
	if !ok || len(comp) == 0 {
		return h, errors.New("sni: bad compression methods")
	}
	if len(s) == 0 {
		return h, nil // no extensions at all: no server name
	}
	exts, ok := s.vec16()
	if !ok || len(s) != 0 {
		return h, errors.New("sni: bad extensions block")
	}
	seen := map[uint16]bool{}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return h, errors.New("sni: truncated extension")
		}
		if seen[typ] {
			return h, fmt.Errorf("sni: extension %d sent twice", typ)
		}
		seen[typ] = true
		switch typ {
		case extServerName:
			name, err := parseServerName(data)
			if err != nil {
				return h, err
			}
			h.ServerName = name
		case extALPN:
			list, ok := data.vec16()
			if !ok || len(data) != 0 || len(list) == 0 {
				return h, errors.New("sni: bad alpn extension")
			}
			for len(list) > 0 {
				p, ok := list.vec8()
				if !ok || len(p) == 0 {
					return h, errors.New("sni: bad alpn protocol")
				}
				h.ALPN = append(h.ALPN, string(p))
			}
		case extEncryptedHello:
			h.ECH = true
		}
	}
	return h, nil
}

func parseServerName(data cursor) (string, error) {
	list, ok := data.vec16()
	if !ok || len(data) != 0 || len(list) == 0 {
		return "", errors.New("sni: bad server_name extension")
	}
	name := ""
	for len(list) > 0 {
		typ, ok1 := list.u8()
		v, ok2 := list.vec16()
		if !ok1 || !ok2 {
			return "", errors.New("sni: truncated server name")
		}
		if typ != nameTypeHost {
			continue
		}
		if name != "" {
			return "", errors.New("sni: two host names")
		}
		if len(v) == 0 || len(v) > 255 {
			return "", fmt.Errorf("sni: host name of %d bytes", len(v))
		}
		for _, c := range v {
			// RFC 6066: ASCII, no trailing NUL tricks. Normalisation and
			// the list lookup decide the rest.
			if c <= ' ' || c >= 0x7f {
				return "", fmt.Errorf("sni: host name has byte 0x%02x", c)
			}
		}
		name = string(v)
	}
	return name, nil
}

// cursor is a read position over a byte slice.
type cursor []byte

func (c *cursor) skip(n int) bool {
	if len(*c) < n {
		return false
	}
	*c = (*c)[n:]
	return true
}

func (c *cursor) u8() (byte, bool) {
	if len(*c) < 1 {
		return 0, false
	}
	v := (*c)[0]
	*c = (*c)[1:]
	return v, true
}

func (c *cursor) u16() (uint16, bool) {
	if len(*c) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*c)
	*c = (*c)[2:]
	return v, true
}

func (c *cursor) vec8() (cursor, bool) {
	n, ok := c.u8()
	if !ok || len(*c) < int(n) {
		return nil, false
	}
	v := (*c)[:n]
	*c = (*c)[n:]
	return v, true
}

func (c *cursor) vec16() (cursor, bool) {
	n, ok := c.u16()
	if !ok || len(*c) < int(n) {
		return nil, false
	}
	v := (*c)[:n]
	*c = (*c)[n:]
	return v, true
}

// Alert is the TLS record the proxy sends to refuse a connection: a fatal
// access_denied alert in a plaintext record. Clients show it as a refused
// connection rather than as a certificate error.
var Alert = []byte{21, 3, 1, 0, 2, 2, 49}
