package dnsbench

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"vigie/rules/normalize"
)

// readBlocklist returns the union of the domains files of every UT1
// category whose usage is black, plus adult-top1m: the list every peer is
// loaded with. Entries are canonical names (IP literals and names that are
// not valid hosts are left out, identically for every peer), sorted.
func readBlocklist(lists string) ([]string, error) {
	dirs, err := os.ReadDir(filepath.Join(lists, "ut1"))
	if err != nil {
		return nil, fmt.Errorf("dnsbench: blocklists: %w", err)
	}
	set := map[string]struct{}{}
	files := []string{filepath.Join(lists, "adult-top1m", "domains")}
	for _, d := range dirs {
		cat := filepath.Join(lists, "ut1", d.Name())
		if usage(filepath.Join(cat, "usage")) == "black" {
			files = append(files, filepath.Join(cat, "domains"))
		}
	}
	if len(files) < 2 {
		return nil, fmt.Errorf("dnsbench: no black category under %s", filepath.Join(lists, "ut1"))
	}
	for _, f := range files {
		if err := readDomains(f, func(h string) { set[h] = struct{}{} }); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	slices.Sort(out)
	return out, nil
}

// usage reads the first word of a UT1 usage file: black or white.
func usage(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return strings.ToLower(strings.Fields(line)[0])
		}
	}
	return ""
}

// readDomains calls fn with each usable name of a domains file.
func readDomains(path string, fn func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		h, err := normalize.Host(line)
		if err != nil || !plainName(h) {
			continue
		}
		fn(h)
	}
	return sc.Err()
}

// plainName keeps names every peer's configuration syntax takes as is:
// letters, digits, '-', '_' and dots, with a non-numeric last label.
func plainName(h string) bool {
	if !strings.Contains(h, ".") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	last := h[strings.LastIndexByte(h, '.')+1:]
	return strings.Trim(last, "0123456789") != ""
}

// blockedBy reports whether h or one of its parents is in set.
func blockedBy(set map[string]struct{}, h string) bool {
	blocked := false
	normalize.Suffixes(h, func(s string) bool {
		_, blocked = set[s]
		return !blocked
	})
	return blocked
}

// allowedNames returns n real names that the blocklist does not cover,
// from the UT1 categories whose usage is white (job search, banks,
// downloads, the académie's white list): the kind of names pupils resolve.
func allowedNames(lists string, blocked []string, n int) ([]string, error) {
	set := make(map[string]struct{}, len(blocked))
	for _, b := range blocked {
		set[b] = struct{}{}
	}
	dirs, err := os.ReadDir(filepath.Join(lists, "ut1"))
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	var out []string
	for _, d := range dirs {
		cat := filepath.Join(lists, "ut1", d.Name())
		if usage(filepath.Join(cat, "usage")) != "white" {
			continue
		}
		err := readDomains(filepath.Join(cat, "domains"), func(h string) {
			if _, dup := seen[h]; dup || blockedBy(set, h) {
				return
			}
			seen[h] = struct{}{}
			out = append(out, h)
		})
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	slices.Sort(out)
	rng := rand.New(rand.NewPCG(2, 3))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) < n {
		return nil, fmt.Errorf("dnsbench: only %d allowed names in the white categories, want %d", len(out), n)
	}
	return out[:n], nil
}

// queryFile writes the dnsperf query file: half blocked names (half of
// those as www. subdomains), half allowed names drawn with repeats, in a
// fixed pseudo-random order so that every run and every peer gets the
// same sequence.
func queryFile(path string, blocked, allowed []string, n int) error {
	rng := rand.New(rand.NewPCG(1, 1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		var name string
		if i%2 == 0 {
			name = blocked[rng.IntN(len(blocked))]
			if rng.IntN(2) == 0 && !strings.HasPrefix(name, "www.") {
				name = "www." + name
			}
		} else {
			name = allowed[rng.IntN(len(allowed))]
		}
		b.WriteString(name)
		b.WriteString(" A\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
