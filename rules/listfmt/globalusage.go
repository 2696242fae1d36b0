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
	err := eachLine(r, file, &rep, true, func(line []byte, n int) {
		if !utf8.Valid(line) {
			rep.reject(n, "not valid UTF-8")
			line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			rep.reject(n, `expected "KEY: value"`)
			return
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
			return
		}
		if cur == nil {
			rep.reject(n, fmt.Sprintf("key %q before the first NAME", key))
			return
		}
		var field *string
		switch key {
		case "DEFAULT_TYPE":
			if value != "black" && value != "white" {
				rep.reject(n, fmt.Sprintf("DEFAULT_TYPE %q is neither black nor white", value))
				return
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
				return
			}
			rep.reject(n, "unknown key "+strconv.Quote(key))
			return
		}
		if seen[key] {
			rep.reject(n, "duplicate key "+strconv.Quote(key)+", ignored")
			return
		}
		seen[key] = true
		*field = value
	})
	return blocks, rep.Problems, err
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
