package listfmt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Category is one category directory of a UT1/squidGuard tree.
type Category struct {
	ID string
	// Usage is "black" or "white", the category's intended use: the first
	// line of its usage file, else global_usage's DEFAULT_TYPE, else
	// "black".
	Usage string
	// Aliases are the other names of the category: the further lines of
	// its usage file and the tree's alias entries that point here, sorted
	// and without duplicates.
	Aliases        []string
	NameFR, NameEN string // from global_usage, empty if absent
	DescFR, DescEN string
	Source         string // global_usage SOURCE
	Dir            string
	// Files lists which of "domains", "urls", "expressions" and
	// "very_restrictive_expression" exist, in that order.
	Files []string
}

// Tree is a UT1/squidGuard blocklist tree: one directory per category.
type Tree struct {
	Dir        string
	Categories []Category        // sorted by ID; only real directories
	Aliases    map[string]string // alias name -> category ID
}

// categoryFiles are the list files of a category, in the order Parse reads
// them.
var categoryFiles = []string{"domains", "urls", "expressions", "very_restrictive_expression"}

// maxAliasFile bounds the size of a regular file taken as an alias: an alias
// holds one category name, and a bigger file is something else.
const maxAliasFile = 255

// ReadTree reads the layout of a UT1/squidGuard tree, not its lists (see
// Parse). Aliases are top-level symbolic links to a category directory
// ("porn -> adult") or, where an archive or a copy turned links into files,
// small top-level files holding a category name. README*, LICENSE*, dot files
// and global_usage are not categories.
//
// Oddities of the tree (an unknown file, a usage file that says neither
// black nor white, a bad global_usage line) are returned as Problems; the
// error is for I/O errors only.
func ReadTree(dir string) (*Tree, []Problem, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("listfmt: read tree: %w", err)
	}
	t := &Tree{Dir: dir, Aliases: map[string]string{}}

	var probs []Problem
	blocks := map[string]*usageBlock{}
	guPath := filepath.Join(dir, "global_usage")
	if f, err := os.Open(guPath); err == nil {
		var p []Problem
		blocks, p, err = parseGlobalUsage(f, guPath)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("listfmt: read tree: %w", err)
		}
		probs = append(probs, p...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("listfmt: read tree: %w", err)
	}

	links := map[string]string{} // alias entry -> name it points to
	var linkNames []string       // in directory order, for stable Problems
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case name == "global_usage" || strings.HasPrefix(name, ".") ||
			strings.HasPrefix(name, "README") || strings.HasPrefix(name, "LICENSE"):
		case e.IsDir():
			c, p, err := readCategory(dir, name, blocks[name])
			if err != nil {
				return nil, nil, fmt.Errorf("listfmt: read tree: %w", err)
			}
			probs = append(probs, p...)
			t.Categories = append(t.Categories, c)
		default:
			target, reason := aliasTarget(dir, path)
			if reason != "" {
				probs = append(probs, Problem{File: path, Reason: reason})
				continue
			}
			links[name] = target
			linkNames = append(linkNames, name)
		}
	}
	sort.Slice(t.Categories, func(i, j int) bool { return t.Categories[i].ID < t.Categories[j].ID })

	for _, name := range linkNames {
		id, ok := resolveAlias(t, links, name)
		if !ok {
			probs = append(probs, Problem{File: filepath.Join(dir, name),
				Reason: fmt.Sprintf("alias points to %q, which is not a category", links[name])})
			continue
		}
		t.Aliases[name] = id
	}
	// Usage-file aliases come second: an alias entry of the tree is what
	// squidGuard itself follows, so it wins a conflict.
	for i := range t.Categories {
		c := &t.Categories[i]
		for _, a := range c.Aliases {
			if _, isCat := t.lookupID(a); isCat {
				probs = append(probs, Problem{File: filepath.Join(c.Dir, "usage"),
					Reason: fmt.Sprintf("alias %q is the name of another category", a)})
				continue
			}
			if other, taken := t.Aliases[a]; taken && other != c.ID {
				probs = append(probs, Problem{File: filepath.Join(c.Dir, "usage"),
					Reason: fmt.Sprintf("alias %q already names category %q", a, other)})
				continue
			}
			t.Aliases[a] = c.ID
		}
	}
	for name, id := range t.Aliases {
		if c, ok := t.lookupID(id); ok {
			c.Aliases = append(c.Aliases, name)
		}
	}
	for i := range t.Categories {
		c := &t.Categories[i]
		slices.Sort(c.Aliases)
		c.Aliases = slices.Compact(c.Aliases)
	}
	for _, id := range sortedKeys(blocks) {
		if _, ok := t.lookupID(id); !ok {
			probs = append(probs, Problem{File: guPath, Line: blocks[id].Line,
				Reason: fmt.Sprintf("category %q has no directory", id)})
		}
	}
	return t, probs, nil
}

// aliasTarget returns the category name an alias entry points to, or why
// the entry is not an alias.
func aliasTarget(dir, path string) (target, reason string) {
	st, err := os.Stat(path) // follows links
	if err != nil {
		return "", "neither a category nor an alias: " + err.Error()
	}
	if st.IsDir() { // a link to a directory
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "", "unreadable link: " + err.Error()
		}
		realDir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return "", "unreadable link: " + err.Error()
		}
		rel, err := filepath.Rel(realDir, real)
		if err != nil || !filepath.IsLocal(rel) || strings.ContainsRune(rel, filepath.Separator) {
			return "", "link to a directory that is not a category of this tree"
		}
		return rel, ""
	}
	if !st.Mode().IsRegular() || st.Size() > maxAliasFile {
		return "", "neither a category nor an alias (" + strconv.FormatInt(st.Size(), 10) + " bytes)"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "unreadable alias: " + err.Error()
	}
	name := string(trimSpace(data))
	if name == "" || hasSpace([]byte(name)) || strings.ContainsAny(name, `/\`) {
		return "", "neither a category nor an alias: the file does not hold one category name"
	}
	return name, ""
}

// resolveAlias follows alias entries (an alias of an alias is allowed) to a
// category ID.
func resolveAlias(t *Tree, links map[string]string, name string) (string, bool) {
	for range 8 { // more is a loop
		target := links[name]
		if _, ok := t.lookupID(target); ok {
			return target, true
		}
		if _, ok := links[target]; !ok {
			return "", false
		}
		name = target
	}
	return "", false
}

func readCategory(dir, id string, gu *usageBlock) (Category, []Problem, error) {
	c := Category{ID: id, Dir: filepath.Join(dir, id)}
	for _, f := range categoryFiles {
		st, err := os.Stat(filepath.Join(c.Dir, f))
		switch {
		case err == nil && st.Mode().IsRegular():
			c.Files = append(c.Files, f)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return c, nil, err
		}
	}
	probs, err := readUsage(&c)
	if err != nil {
		return c, nil, err
	}
	if gu != nil {
		if c.Usage == "" {
			c.Usage = gu.DefaultType
		}
		c.NameFR, c.NameEN = gu.NameFR, gu.NameEN
		c.DescFR, c.DescEN = gu.DescFR, gu.DescEN
		c.Source = gu.Source
	}
	if c.Usage == "" {
		c.Usage = "black"
	}
	return c, probs, nil
}

// readUsage reads the category's usage file, if any: its first line says
// black or white, the others are aliases. '#' lines are comments.
func readUsage(c *Category) ([]Problem, error) {
	path := filepath.Join(c.Dir, "usage")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep := Report{File: path}
	first := true
	err = eachLine(f, path, &rep, true, func(line []byte, n int) {
		word := string(line)
		switch {
		case word == "black" || word == "white":
			if first {
				c.Usage = word
			}
		default:
			if first {
				rep.reject(n, fmt.Sprintf("usage file says neither black nor white (%q)", word))
			}
			if word != c.ID {
				c.Aliases = append(c.Aliases, word)
			}
		}
		first = false
	})
	return rep.Problems, err
}

// Category finds a category by ID or alias.
func (t *Tree) Category(idOrAlias string) (*Category, bool) {
	if c, ok := t.lookupID(idOrAlias); ok {
		return c, true
	}
	if id, ok := t.Aliases[idOrAlias]; ok {
		return t.lookupID(id)
	}
	return nil, false
}

func (t *Tree) lookupID(id string) (*Category, bool) {
	i, ok := slices.BinarySearchFunc(t.Categories, id, func(c Category, id string) int {
		return strings.Compare(c.ID, id)
	})
	if !ok {
		return nil, false
	}
	return &t.Categories[i], true
}

// Parse reads every list file of c: domains gives Domain entries, urls gives
// URL entries, expressions and very_restrictive_expression give Expression
// entries, with Strict set for the latter. It returns one Report per file,
// in c.Files order; the error is for I/O errors only.
func (t *Tree) Parse(c *Category, emit func(Entry)) ([]Report, error) {
	reps := make([]Report, 0, len(c.Files))
	for _, name := range c.Files {
		path := filepath.Join(c.Dir, name)
		f, err := os.Open(path)
		if err != nil {
			return reps, fmt.Errorf("listfmt: category %s: %w", c.ID, err)
		}
		var rep Report
		switch name {
		case "domains":
			rep, err = ParseDomains(f, path, FormatPlain, emit)
		case "urls":
			rep, err = ParseURLs(f, path, emit)
		case "expressions":
			rep, err = ParseExpressions(f, path, emit)
		case "very_restrictive_expression":
			rep, err = ParseExpressions(f, path, func(e Entry) {
				e.Strict = true
				emit(e)
			})
		}
		f.Close()
		reps = append(reps, rep)
		if err != nil {
			return reps, fmt.Errorf("listfmt: category %s: %w", c.ID, err)
		}
	}
	return reps, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
