// Package ut1import brings a fresh UT1 blocklist tree into the control
// plane: from a directory, or by downloading the official tarball over
// HTTPS and checking it against its published MD5. The tree is copied into
// its own immutable directory under the data directory, checked, compared
// with the tree the draft used so far (what changed per category), and only
// then referenced by the draft. Nothing reaches the edges before the RSSI
// publishes.
package ut1import

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/listtree"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/rules/domainset"
	"vigie/rules/listfmt"
	"vigie/rules/policy"
)

// SourceName is the draft source an import replaces (type ut1).
const SourceName = "ut1"

// Options say what to import and where.
type Options struct {
	// Source is a directory, a local tarball (.tar.gz, .tgz) or an
	// http(s):// URL of a UT1 tarball (blacklists.tar.gz).
	Source string
	// MD5 is the checksum file, a URL or a local path; default:
	// MD5SUM.LST next to the tarball, the name UT1 publishes. Lines
	// "HASH  NAME" or a bare hash. A download must match one; a local
	// tarball must match one when one exists.
	MD5 string
	// Client downloads (default: a client with a 10-minute timeout).
	Client *http.Client
	// DataDir receives the tree under lists/ut1-<time>.
	DataDir string
	// Previous is the tree the draft uses now (absolute), "" if none.
	Previous string
	// MaxBytes bounds the download and the extracted tree (default 4 GiB:
	// the full UT1 tree is about 1 GiB extracted).
	MaxBytes int64
	Now      func() time.Time
}

// CategoryChange is how one category changed.
type CategoryChange struct {
	Category string `json:"category"`
	// Status is added, removed, changed or unchanged.
	Status         string `json:"status"`
	DomainsBefore  int    `json:"domains_before"`
	DomainsAfter   int    `json:"domains_after"`
	DomainsAdded   int    `json:"domains_added"`
	DomainsRemoved int    `json:"domains_removed"`
	URLsBefore     int    `json:"urls_before"`
	URLsAfter      int    `json:"urls_after"`
}

// Result is what an import did.
type Result struct {
	// Dir is the imported tree, relative to the data directory.
	Dir string `json:"dir"`
	// MD5 is the verified checksum of the tarball.
	MD5 string `json:"md5,omitempty"`
	// Unchanged is true when the tree is byte for byte the one the draft
	// already used: Dir is then that tree, and no copy was kept.
	Unchanged  bool             `json:"unchanged,omitempty"`
	Categories []CategoryChange `json:"categories"`
	Domains    int              `json:"domains"`
	// Problems are oddities of the tree (kept, as the compiler keeps them).
	Problems []string `json:"problems,omitempty"`
	// abs is the tree's absolute path, for storing it (UpdateDraft).
	abs string
}

// Changed returns the categories that changed.
func (r *Result) Changed() []CategoryChange {
	var out []CategoryChange
	for _, c := range r.Categories {
		if c.Status != "unchanged" {
			out = append(out, c)
		}
	}
	return out
}

// Import fetches or copies the tree, checks it and compares it with the
// previous one. The draft is not touched: see UpdateDraft.
func Import(ctx context.Context, o Options) (*Result, error) {
	if o.DataDir == "" {
		return nil, errors.New("ut1import: no data directory")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	lists := filepath.Join(o.DataDir, "lists")
	if err := os.MkdirAll(lists, 0o750); err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	tmp, err := os.MkdirTemp(lists, ".import-*")
	if err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	defer os.RemoveAll(tmp)
	res := &Result{}
	var root string
	if u, err := url.Parse(o.Source); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		if u.Scheme == "http" {
			// The MD5 checks integrity; over plain http it does not
			// authenticate, which the report says.
			res.Problems = append(res.Problems, fmt.Sprintf("%s: downloaded over plain http: the MD5 proves integrity, not origin (prefer https)", o.Source))
		}
		if res.MD5, root, err = download(ctx, o, u, tmp); err != nil {
			return nil, err
		}
	} else {
		st, err := os.Stat(o.Source)
		if err != nil {
			return nil, fmt.Errorf("ut1import: source: %w", err)
		}
		switch {
		case st.IsDir():
			root = filepath.Join(tmp, "tree")
			if err := copyTree(o.Source, root, o.MaxBytes); err != nil {
				return nil, err
			}
		case st.Mode().IsRegular() && (strings.HasSuffix(o.Source, ".tar.gz") || strings.HasSuffix(o.Source, ".tgz")):
			if res.MD5, root, err = localTarball(ctx, o, tmp); err != nil {
				return nil, err
			}
			if res.MD5 == "" {
				// Nothing to check against: said, not silent.
				res.Problems = append(res.Problems, fmt.Sprintf("%s: no MD5 checked (no MD5SUM.LST beside it and no --md5): its integrity is not verified", o.Source))
			}
		default:
			return nil, fmt.Errorf("ut1import: source %s is neither a directory, a .tar.gz file nor an http(s):// URL", o.Source)
		}
	}
	tree, probs, err := listfmt.ReadTree(root)
	if err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	if len(tree.Categories) == 0 {
		return nil, fmt.Errorf("ut1import: %s holds no category directory: not a UT1 tree", o.Source)
	}
	for _, p := range probs {
		res.Problems = append(res.Problems, p.Error())
	}
	if res.Categories, res.Domains, err = compare(ctx, o.Previous, tree); err != nil {
		return nil, err
	}
	// An unchanged tree is not copied again: the draft keeps the one it
	// has (a UT1 tree is 14 MB compressed, about 1 GB extracted).
	if o.Previous != "" {
		if rel, err := filepath.Rel(o.DataDir, o.Previous); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
			if same, err := sameTree(root, o.Previous); err == nil && same {
				res.Dir, res.Unchanged = rel, true
				return res, nil
			}
		}
	}
	name := "ut1-" + o.Now().UTC().Format("20060102T150405Z")
	final := filepath.Join(lists, name)
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("ut1import: %s already exists (two imports in the same second)", final)
	}
	if err := os.Rename(root, final); err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	res.Dir = filepath.Join("lists", name)
	res.abs = final
	return res, nil
}

// UpdateDraft points the draft's ut1 source at an imported tree and
// records the import with its per-category report in the audit log.
func UpdateDraft(ctx context.Context, st store.Store, res *Result, who publish.Actor, now time.Time) error {
	// A store shared by replicas keeps the tree too: the replica that
	// publishes is not necessarily this one.
	if lt, ok := st.(listtree.Store); ok && res.abs != "" {
		packed, err := listtree.Pack(res.abs)
		if err != nil {
			return fmt.Errorf("ut1import: %w", err)
		}
		if err := lt.PutListTree(ctx, filepath.ToSlash(res.Dir), packed); err != nil {
			return fmt.Errorf("ut1import: %w", err)
		}
	}
	return st.Update(ctx, func(tx store.Tx) error {
		d, err := tx.Draft(ctx)
		if err != nil {
			return fmt.Errorf("ut1import: %w", err)
		}
		before := ""
		found := false
		for i := range d.Policy.Sources {
			s := &d.Policy.Sources[i]
			if s.Name == SourceName {
				before, s.Path, s.Type, found = s.Path, res.Dir, "ut1", true
			}
		}
		if !found {
			d.Policy.Sources = append(d.Policy.Sources, policy.Source{Name: SourceName, Type: "ut1", Path: res.Dir})
		}
		d.UpdatedAt, d.UpdatedBy = now, who.Name
		if _, err := tx.PutDraft(ctx, d, d.Revision); err != nil {
			return err
		}
		changed := res.Changed()
		b, _ := json.Marshal(map[string]string{"path": before})
		a, _ := json.Marshal(map[string]any{"path": res.Dir, "md5": res.MD5, "domains": res.Domains, "changed": changed})
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: who.Name, Role: who.Role, Action: "ut1.import",
			Target: "source/" + SourceName, Before: b, After: a, Remote: who.Remote})
	})
}

// Prune removes imported trees other than those in keep (relative to the
// data directory): old trees are not needed once no draft points at them,
// since published versions keep their compiled content.
func Prune(dataDir string, keep ...string) error {
	ents, err := os.ReadDir(filepath.Join(dataDir, "lists"))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		rel := filepath.Join("lists", e.Name())
		if strings.HasPrefix(e.Name(), "ut1-") && e.IsDir() && !slices.Contains(keep, rel) {
			errs = append(errs, os.RemoveAll(filepath.Join(dataDir, rel)))
		}
	}
	return errors.Join(errs...)
}

// Run is an import as the API and the CLI make it: import against the
// tree the draft uses, point the draft at the result, and remove the
// imported trees no draft needs any more. dataDir is the control plane's.
func Run(ctx context.Context, st store.Store, o Options, who publish.Actor, now time.Time) (*Result, error) {
	d, err := st.Draft(ctx)
	if err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	prev := ""
	for _, src := range d.Policy.Sources {
		if src.Name == SourceName {
			prev = src.Path
			if !filepath.IsAbs(prev) {
				prev = filepath.Join(o.DataDir, prev)
			}
		}
	}
	o.Previous = prev
	res, err := Import(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := UpdateDraft(ctx, st, res, who, now); err != nil {
		return nil, err
	}
	keep := []string{res.Dir}
	if rel, err := filepath.Rel(o.DataDir, prev); prev != "" && err == nil && !strings.HasPrefix(rel, "..") {
		keep = append(keep, rel)
	}
	if err := Prune(o.DataDir, keep...); err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("old UT1 trees not removed: %v", err))
	}
	return res, nil
}

// sameTree reports whether two trees hold the same files with the same
// bytes (links compared by target).
func sameTree(a, b string) (bool, error) {
	list := func(root string) (map[string]fs.FileMode, error) {
		out := map[string]fs.FileMode{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out[rel] = d.Type()
			if len(out) > maxFiles {
				return fmt.Errorf("more than %d entries", maxFiles)
			}
			return nil
		})
		return out, err
	}
	la, err := list(a)
	if err != nil {
		return false, err
	}
	lb, err := list(b)
	if err != nil || len(la) != len(lb) {
		return false, err
	}
	for rel, mode := range la {
		if mb, ok := lb[rel]; !ok || mb != mode {
			return false, nil
		}
		pa, pb := filepath.Join(a, rel), filepath.Join(b, rel)
		switch {
		case mode&fs.ModeSymlink != 0:
			ta, _ := os.Readlink(pa)
			tb, _ := os.Readlink(pb)
			if ta != tb {
				return false, nil
			}
		case mode.IsRegular():
			if eq, err := sameFile(pa, pb); err != nil || !eq {
				return false, err
			}
		}
	}
	return true, nil
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil || sa.Size() != sb.Size() {
		return false, err
	}
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

// localTarball checks a tarball on disk against its MD5 when one exists
// (the --md5 file, else MD5SUM.LST beside it) and extracts it.
func localTarball(ctx context.Context, o Options, tmp string) (sum, root string, err error) {
	f, err := os.Open(o.Source)
	if err != nil {
		return "", "", fmt.Errorf("ut1import: %w", err)
	}
	h := md5.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", "", fmt.Errorf("ut1import: %s: %w", o.Source, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	md5Path := o.MD5
	if md5Path == "" {
		if beside := filepath.Join(filepath.Dir(o.Source), "MD5SUM.LST"); fileExists(beside) {
			md5Path = beside
		}
	}
	if md5Path != "" {
		want, err := readMD5(ctx, o, md5Path, filepath.Base(o.Source))
		if err != nil {
			return "", "", err
		}
		if got != want {
			return "", "", fmt.Errorf("ut1import: %s: MD5 %s does not match %s from %s (corrupt or tampered file)", o.Source, got, want, md5Path)
		}
	}
	root, err = extract(o.Source, filepath.Join(tmp, "x"), o.MaxBytes)
	if err != nil {
		return "", "", err
	}
	if md5Path == "" {
		return "", root, nil
	}
	return got, root, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// readMD5 reads a checksum file from a URL or a local path.
func readMD5(ctx context.Context, o Options, where, name string) (string, error) {
	if u, err := url.Parse(where); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		client := o.Client
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Minute}
		}
		return fetchMD5(ctx, client, where, name)
	}
	f, err := os.Open(where)
	if err != nil {
		return "", fmt.Errorf("ut1import: MD5 file: %w", err)
	}
	defer f.Close()
	return parseMD5(io.LimitReader(f, 1<<20), name, where)
}

// ---- download

func download(ctx context.Context, o Options, u *url.URL, tmp string) (sum, root string, err error) {
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	md5URL := o.MD5
	if md5URL == "" {
		m := *u
		m.Path = path.Join(path.Dir(u.Path), "MD5SUM.LST")
		m.RawQuery = ""
		md5URL = m.String()
	}
	want, err := readMD5(ctx, o, md5URL, path.Base(u.Path))
	if err != nil {
		return "", "", err
	}
	archive := filepath.Join(tmp, "download.tar.gz")
	got, err := fetchFile(ctx, client, u.String(), archive, o.MaxBytes)
	if err != nil {
		return "", "", err
	}
	if got != want {
		return "", "", fmt.Errorf("ut1import: %s: MD5 %s does not match the published %s (corrupt or tampered download)", u, got, want)
	}
	root, err = extract(archive, filepath.Join(tmp, "x"), o.MaxBytes)
	if err != nil {
		return "", "", err
	}
	return got, root, nil
}

func get(ctx context.Context, client *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ut1import: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("ut1import: GET %s: %s", u, resp.Status)
	}
	return resp, nil
}

// fetchMD5 reads a checksum file and returns the hash for name.
func fetchMD5(ctx context.Context, client *http.Client, u, name string) (string, error) {
	resp, err := get(ctx, client, u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return parseMD5(io.LimitReader(resp.Body, 1<<20), name, u)
}

// parseMD5 accepts "HASH  NAME" lines (md5sum, UT1's MD5SUM.LST), BSD
// "MD5 (NAME) = HASH" lines and a file holding one bare hash.
func parseMD5(r io.Reader, name, where string) (string, error) {
	sc := bufio.NewScanner(r)
	var bare []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "MD5 ("); ok {
			n, h, ok := strings.Cut(rest, ") = ")
			if ok && path.Base(n) == name && isMD5(h) {
				return strings.ToLower(h), nil
			}
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && isMD5(f[0]):
			bare = append(bare, strings.ToLower(f[0]))
		case len(f) == 2 && isMD5(f[0]) && path.Base(strings.TrimPrefix(f[1], "*")) == name:
			return strings.ToLower(f[0]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("ut1import: %s: %w", where, err)
	}
	if len(bare) == 1 {
		return bare[0], nil
	}
	return "", fmt.Errorf("ut1import: %s lists no MD5 for %s", where, name)
}

func isMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func fetchFile(ctx context.Context, client *http.Client, u, dst string, max int64) (string, error) {
	resp, err := get(ctx, client, u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	f, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("ut1import: %w", err)
	}
	defer f.Close()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, max+1))
	if err != nil {
		return "", fmt.Errorf("ut1import: download %s: %w", u, err)
	}
	if n > max {
		return "", fmt.Errorf("ut1import: download %s: larger than %d bytes", u, max)
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// ---- extraction and copy

// maxFiles bounds the entries of an archive or tree (UT1 has about 500).
const maxFiles = 100000

// extract unpacks a .tar.gz into dir, refusing anything that could write
// outside it (absolute names, "..", links pointing out, hard links,
// devices), and returns the tree's root: the single top directory when the
// archive has one (UT1's "blacklists/"), else dir.
func extract(archive, dir string, max int64) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", fmt.Errorf("ut1import: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return "", fmt.Errorf("ut1import: %s: not a gzip archive: %w", filepath.Base(archive), err)
	}
	tr := tar.NewReader(zr)
	var total int64
	files := 0
	tops := map[string]bool{}
	topFile := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("ut1import: archive: %w", err)
		}
		if files++; files > maxFiles {
			return "", fmt.Errorf("ut1import: archive has more than %d entries", maxFiles)
		}
		name, err := safeName(h.Name)
		if err != nil {
			return "", err
		}
		if name == "." {
			continue
		}
		if err := noLinkOnPath(dir, name); err != nil {
			return "", err
		}
		top, _, nested := strings.Cut(name, "/")
		if nested || h.Typeflag == tar.TypeDir {
			tops[top] = true
		} else {
			topFile = true
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return "", fmt.Errorf("ut1import: %w", err)
			}
		case tar.TypeReg:
			if total += h.Size; total > max {
				return "", fmt.Errorf("ut1import: archive expands beyond %d bytes", max)
			}
			if err := writeFile(dst, io.LimitReader(tr, h.Size)); err != nil {
				return "", err
			}
		case tar.TypeSymlink:
			if err := safeLink(name, h.Linkname); err != nil {
				return "", err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return "", fmt.Errorf("ut1import: %w", err)
			}
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return "", fmt.Errorf("ut1import: %w", err)
			}
		default:
			return "", fmt.Errorf("ut1import: archive entry %q has type %q: only files, directories and symbolic links are accepted", h.Name, h.Typeflag)
		}
	}
	if len(tops) == 1 && !topFile {
		for t := range tops {
			return filepath.Join(dir, t), nil
		}
	}
	return dir, nil
}

func safeName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) {
		return "", fmt.Errorf("ut1import: archive entry %q: unsafe name", name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("ut1import: archive entry %q escapes the tree", name)
	}
	return clean, nil
}

// safeLink accepts a relative link that points down into the tree (UT1's
// aliases: "porn -> adult"). Without ".." and with no link on the way to
// it (noLinkOnPath), no chain of such links can lead outside.
func safeLink(name, target string) error {
	if target == "" || path.IsAbs(target) || strings.ContainsRune(target, 0) || strings.Contains(target, `\`) {
		return fmt.Errorf("ut1import: link %q -> %q: only relative links inside the tree are accepted", name, target)
	}
	for _, c := range strings.Split(target, "/") {
		if c == ".." {
			return fmt.Errorf("ut1import: link %q -> %q: links may not climb with \"..\"", name, target)
		}
	}
	return nil
}

// noLinkOnPath refuses an entry whose parent directories include a link
// made earlier: writing through it could land anywhere the link leads.
func noLinkOnPath(dir, name string) error {
	parent := path.Dir(name)
	if parent == "." {
		return nil
	}
	cur := dir
	for _, c := range strings.Split(parent, "/") {
		cur = filepath.Join(cur, c)
		st, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ut1import: %w", err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("ut1import: archive entry %q lies under the link %q", name, c)
		}
	}
	return nil
}

func writeFile(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("ut1import: %w", err)
	}
	// O_EXCL: a duplicate entry or a planted link is never written through.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("ut1import: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("ut1import: write %s: %w", dst, err)
	}
	return f.Close()
}

// copyTree copies a directory tree, keeping inside-pointing symbolic links
// as links and refusing others.
func copyTree(src, dst string, max int64) error {
	var total int64
	files := 0
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("ut1import: %w", err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return fmt.Errorf("ut1import: %w", err)
		}
		if files++; files > maxFiles {
			return fmt.Errorf("ut1import: %s has more than %d entries", src, maxFiles)
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("ut1import: %w", err)
			}
			if err := safeLink(filepath.ToSlash(rel), filepath.ToSlash(target)); err != nil {
				return err
			}
			return os.Symlink(target, out)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("ut1import: %w", err)
			}
			if total += info.Size(); total > max {
				return fmt.Errorf("ut1import: %s is larger than %d bytes", src, max)
			}
			in, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("ut1import: %w", err)
			}
			defer in.Close()
			return writeFile(out, in)
		}
		return nil // sockets, devices: not list files
	})
}

// ---- comparison

type catStats struct {
	fps  []uint64
	urls int
}

func readStats(tree *listfmt.Tree) (map[string]*catStats, error) {
	out := map[string]*catStats{}
	for i := range tree.Categories {
		c := &tree.Categories[i]
		st := &catStats{}
		_, err := tree.Parse(c, func(e listfmt.Entry) {
			switch e.Kind {
			case listfmt.Domain:
				st.fps = append(st.fps, domainset.Fingerprint(e.Value))
			case listfmt.URL:
				st.urls++
			}
		})
		if err != nil {
			return nil, fmt.Errorf("ut1import: category %s: %w", c.ID, err)
		}
		slices.Sort(st.fps)
		st.fps = slices.Compact(st.fps)
		out[c.ID] = st
	}
	return out, nil
}

// compare reports per category what changed from the previous tree, by
// domain fingerprints (sorted, merged), so the full UT1 compares in memory
// of 8 bytes per domain.
func compare(ctx context.Context, previous string, tree *listfmt.Tree) ([]CategoryChange, int, error) {
	cur, err := readStats(tree)
	if err != nil {
		return nil, 0, err
	}
	old := map[string]*catStats{}
	if previous != "" {
		if pt, _, err := listfmt.ReadTree(previous); err == nil {
			if old, err = readStats(pt); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	ids := map[string]bool{}
	for id := range cur {
		ids[id] = true
	}
	for id := range old {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	var out []CategoryChange
	total := 0
	for _, id := range sorted {
		o, c := old[id], cur[id]
		ch := CategoryChange{Category: id}
		switch {
		case o == nil:
			ch.Status = "added"
			o = &catStats{}
		case c == nil:
			ch.Status = "removed"
			c = &catStats{}
		}
		ch.DomainsBefore, ch.DomainsAfter = len(o.fps), len(c.fps)
		ch.URLsBefore, ch.URLsAfter = o.urls, c.urls
		ch.DomainsAdded, ch.DomainsRemoved = mergeCount(o.fps, c.fps)
		if ch.Status == "" {
			ch.Status = "unchanged"
			if ch.DomainsAdded+ch.DomainsRemoved > 0 || ch.URLsBefore != ch.URLsAfter {
				ch.Status = "changed"
			}
		}
		total += len(c.fps)
		out = append(out, ch)
	}
	return out, total, nil
}

// mergeCount counts the values only in b (added) and only in a (removed).
func mergeCount(a, b []uint64) (added, removed int) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			removed++
			i++
		default:
			added++
			j++
		}
	}
	return added + len(b) - j, removed + len(a) - i
}
