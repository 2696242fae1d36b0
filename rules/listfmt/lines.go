package listfmt

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// lineReader reads lines with bufio.Reader.ReadSlice rather than
// bufio.Scanner: Scanner gives up on the whole file at the first line over
// its limit, where we want to skip that line and go on. ReadSlice also
// returns a view into the buffer, so a comment or blank line costs nothing.
type lineReader struct {
	br  *bufio.Reader
	n   int   // number of the line last returned
	err error // first read error other than io.EOF
}

var bom = []byte("\xef\xbb\xbf")

func newLineReader(r io.Reader) *lineReader {
	// Room for MaxLineLen bytes and a CRLF.
	return &lineReader{br: bufio.NewReaderSize(r, MaxLineLen+2)}
}

// next returns the next line without its end of line, trimmed of
// surrounding ASCII white space (and of a UTF-8 BOM on line 1). The slice is
// valid until the following call. long reports a line over MaxLineLen, whose
// text is dropped. ok is false at the end of input or on a read error.
func (lr *lineReader) next() (line []byte, long, ok bool) {
	b, err := lr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = lr.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			lr.err = err
			return nil, false, false
		}
		lr.n++
		return nil, true, true
	}
	if err != nil {
		if err != io.EOF {
			lr.err = err
			return nil, false, false
		}
		if len(b) == 0 {
			return nil, false, false
		}
	}
	lr.n++
	if lr.n == 1 {
		b = bytes.TrimPrefix(b, bom)
	}
	b = trimSpace(b)
	if len(b) > MaxLineLen {
		return nil, true, true
	}
	return b, false, true
}

// eachLine calls fn with every line of r that holds something, trimmed,
// and its number: a line over MaxLineLen is rejected into rep, a blank
// line is skipped, and so is a line starting with '#' when hashComments
// is set (the hosts and plain formats cut comments themselves, after
// text). It returns the first read error, naming file. Every parser of
// the package reads its input through it, so a long line, a BOM or a
// failing reader is handled the same way everywhere.
func eachLine(r io.Reader, file string, rep *Report, hashComments bool, fn func(line []byte, n int)) error {
	lr := newLineReader(r)
	for {
		line, long, ok := lr.next()
		if !ok {
			break
		}
		switch {
		case long:
			rep.reject(lr.n, reasonTooLong)
		case len(line) == 0, hashComments && line[0] == '#':
		default:
			fn(line, lr.n)
		}
	}
	if lr.err != nil {
		return fmt.Errorf("listfmt: read %s: %w", file, lr.err)
	}
	return nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// cutComment removes a '#' comment that starts the line or follows white
// space ("0.0.0.0 a.com # tracker"). A '#' glued to text is left in place,
// for the caller to reject: "a.com##.ad" is a cosmetic rule, not a domain.
func cutComment(b []byte) []byte {
	for i, c := range b {
		if c == '#' && (i == 0 || isSpace(b[i-1])) {
			return trimSpace(b[:i])
		}
	}
	return b
}

// nextField splits off the first white-space separated field of b, which
// must not start with white space.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && !isSpace(b[i]) {
		i++
	}
	field, rest = b[:i], b[i:]
	for len(rest) > 0 && isSpace(rest[0]) {
		rest = rest[1:]
	}
	return field, rest
}

func hasSpace(b []byte) bool {
	for _, c := range b {
		if isSpace(c) {
			return true
		}
	}
	return false
}
