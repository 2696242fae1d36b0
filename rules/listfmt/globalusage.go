package listfmt

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// usageBlock is one category's block of a squidGuard global_usage file.
type usageBlock struct {
	ID             string
	DefaultType    string // "black", "white" or ""
	Source         string
	NameFR, NameEN string
	DescFR, DescEN string
	Line           int // of the NAME key
}

// parseGlobalUsage reads a global_usage file: blocks that start with
// "NAME:\t<id>" followed by "KEY: value" lines. We keep DEFAULT_TYPE, SOURCE
// and the French and English names and descriptions; other "NAME xx:" and
// "DESC xx:" languages are skipped. Anything else is a Problem, never fatal:
// the file only decorates the tree. The error is for I/O errors only.
func parseGlobalUsage(r io.Reader, file string) (map[string]*usageBlock, []Problem, error) {
	blocks := map[string]*usageBlock{}
	rep := Report{File: file} // for its bounded Problems
	var cur *usageBlock
	seen := map[string]bool{} // keys of the current block
	lr := newLineReader(r)
	for {
		line, long, ok := lr.next()
		if !ok {
			break
		}
		n := lr.n
		if long {
			rep.reject(n, reasonTooLong)
			continue
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if !utf8.Valid(line) {
			rep.reject(n, "not valid UTF-8")
			line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			rep.reject(n, `expected "KEY: value"`)
			continue
		}
		key := string(trimSpace(line[:i]))
		value := string(trimSpace(line[i+1:]))
		if key == "NAME" {
			clear(seen)
			switch first, dup := blocks[value]; {
			case value == "":
				rep.reject(n, "NAME without a category")
				cur = &usageBlock{} // swallow its keys
			case dup:
				rep.reject(n, fmt.Sprintf("duplicate block for %q (first at line %d), ignored", value, first.Line))
				cur = &usageBlock{}
			default:
				cur = &usageBlock{ID: value, Line: n}
				blocks[value] = cur
			}
			continue
		}
		if cur == nil {
			rep.reject(n, fmt.Sprintf("key %q before the first NAME", key))
			continue
		}
		var field *string
		switch key {
		case "DEFAULT_TYPE":
			if value != "black" && value != "white" {
				rep.reject(n, fmt.Sprintf("DEFAULT_TYPE %q is neither black nor white", value))
				continue
			}
			field = &cur.DefaultType
		case "SOURCE":
			field = &cur.Source
		case "NAME FR":
			field = &cur.NameFR
		case "NAME EN":
			field = &cur.NameEN
		case "DESC FR":
			field = &cur.DescFR
		case "DESC EN":
			field = &cur.DescEN
		default:
			if isOtherLanguage(key) {
				continue
			}
			rep.reject(n, "unknown key "+strconv.Quote(key))
			continue
		}
		if seen[key] {
			rep.reject(n, "duplicate key "+strconv.Quote(key)+", ignored")
			continue
		}
		seen[key] = true
		*field = value
	}
	if lr.err != nil {
		return blocks, rep.Problems, fmt.Errorf("listfmt: read %s: %w", file, lr.err)
	}
	return blocks, rep.Problems, nil
}

// isOtherLanguage reports "NAME xx" and "DESC xx" keys for a two-letter
// language code.
func isOtherLanguage(key string) bool {
	lang, ok := strings.CutPrefix(key, "NAME ")
	if !ok {
		lang, ok = strings.CutPrefix(key, "DESC ")
	}
	if !ok || len(lang) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		if lang[i] < 'A' || lang[i] > 'Z' {
			return false
		}
	}
	return true
}
