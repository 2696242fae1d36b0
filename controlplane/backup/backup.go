// Package backup copies a running control plane's data directory into a
// backup directory and puts it back: both SQLite databases (vigie.db:
// policy, versions, accounts, audit log; journal.db: the legal archive of
// the connection journal) through SQLite's VACUUM INTO, which reads one
// consistent snapshot while the server keeps writing, the imported list
// trees (lists/), the requisitions the AQSSI asked for and the encrypted
// exports transmitted to it with their AES key (requisitions/), and a
// manifest naming every file with its size and SHA-256. The backup holds
// that key: it is as secret as the data directory. Restore checks the whole manifest before it replaces anything,
// and moves what it replaces aside instead of deleting it.
package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver the stores use

	"vigie/atomicfile"
	"vigie/controlplane/store"
)

// Databases are the SQLite files of a data directory.
var Databases = []string{"vigie.db", "journal.db"}

// Trees are the directories of a data directory a backup copies whole:
// the imported lists, and the requisitions (pending requests, encrypted
// transmitted exports and the key that opens them).
var Trees = []string{"lists", "requisitions"}

// ManifestName is the manifest's file name in a backup directory.
const ManifestName = "MANIFEST.json"

// Format is the manifest's format version.
const Format = 1

// File is one file of a backup.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the backup
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a backup.
type Manifest struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	// Software is the vigie version that made it.
	Software string `json:"software"`
	Files    []File `json:"files"`
}

// Backup writes a backup of dataDir into dir, which must not exist or be
// empty. It works while the control plane runs.
func Backup(ctx context.Context, dataDir, dir, software string, now time.Time) (*Manifest, error) {
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	for _, db := range Databases {
		src := filepath.Join(dataDir, db)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			if db == "vigie.db" {
				return nil, fmt.Errorf("backup: %s: no vigie.db: not a control plane data directory (run vigie controlplane init)", dataDir)
			}
			continue // no journal received yet
		}
		if err := vacuumInto(ctx, src, filepath.Join(dir, db)); err != nil {
			return nil, err
		}
	}
	// The trees after the database: a list tree the snapshot's draft
	// names must be in the copy, which a concurrent import could prune.
	for _, t := range Trees {
		if err := copyTree(filepath.Join(dataDir, t), filepath.Join(dir, t)); err != nil {
			return nil, err
		}
	}
	if err := checkSources(ctx, dir); err != nil {
		return nil, err
	}
	m := &Manifest{Format: Format, Created: now.UTC(), Software: software}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := hashFile(p)
		if err != nil {
			return err
		}
		f.Path = filepath.ToSlash(rel)
		m.Files = append(m.Files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := atomicfile.Write(filepath.Join(dir, ManifestName), append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return fmt.Errorf("backup: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("backup: %s is not empty: give a new directory per backup", dir)
	}
	// The backup holds the requisitions' key: as closed as the data.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// vacuumInto writes a consistent copy of a live database: VACUUM INTO
// reads in one transaction, so the copy is the database at one moment.
func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: src}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("backup: copy %s: %w", src, err)
	}
	return nil
}

// checkSources checks that the list trees the copied draft uses are in
// the copy.
func checkSources(ctx context.Context, dir string) error {
	st, err := store.OpenSQLite(filepath.Join(dir, "vigie.db"), 1)
	if err != nil {
		return fmt.Errorf("backup: the copy of vigie.db does not open: %w", err)
	}
	defer st.Close()
	d, err := st.Draft(ctx)
	if err != nil {
		return fmt.Errorf("backup: the copy of vigie.db: %w", err)
	}
	for _, s := range d.Policy.Sources {
		if filepath.IsAbs(s.Path) {
			continue // outside the data directory: the operator's to save
		}
		if _, err := os.Stat(filepath.Join(dir, s.Path)); err != nil {
			return fmt.Errorf("backup: the draft's source %s (%s) is missing from the copy (an import ran meanwhile?): run the backup again", s.Name, s.Path)
		}
	}
	return nil
}

func hashFile(p string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", p, err)
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// copyTree copies regular files and directories with their permissions
// (the requisitions' key stays 0600), and links as links (inside UT1
// trees). Files being written (an import's or atomicfile's temporaries)
// are left out.
func copyTree(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		rel, _ := filepath.Rel(src, p)
		if strings.HasPrefix(d.Name(), ".import-") {
			return filepath.SkipDir // an import in progress
		}
		if strings.HasPrefix(d.Name(), ".tmp-") && !d.IsDir() {
			return nil // an atomicfile.Write in progress
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			perm := info.Mode().Perm()&0o750 | 0o700
			if err := os.MkdirAll(out, perm); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			return os.Chmod(out, perm)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			return os.Symlink(t, out)
		case d.Type().IsRegular():
			return copyFile(p, out, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm&0o640)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("backup: %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("backup: %s: %w", dst, err)
	}
	return out.Close()
}

// Verify checks a backup directory against its manifest: every file
// present with its size and hash, nothing unlisted but the manifest, and
// vigie.db among them.
func Verify(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("backup: %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("backup: %s: format %d, this vigie reads %d", ManifestName, m.Format, Format)
	}
	var problems []error
	listed := map[string]bool{}
	for i, f := range m.Files {
		clean := filepath.Clean(filepath.FromSlash(f.Path))
		if f.Path == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			problems = append(problems, fmt.Errorf("files[%d]: path %q leaves the backup", i, f.Path))
			continue
		}
		listed[filepath.ToSlash(clean)] = true
		got, err := hashFile(filepath.Join(dir, clean))
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("%s: %w", f.Path, err))
		case got.Size != f.Size || got.SHA256 != f.SHA256:
			problems = append(problems, fmt.Errorf("%s: size %d SHA-256 %s, the manifest says %d %s", f.Path, got.Size, got.SHA256, f.Size, f.SHA256))
		}
	}
	if !listed["vigie.db"] {
		problems = append(problems, errors.New("the manifest lists no vigie.db"))
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel = filepath.ToSlash(rel); rel != ManifestName && !listed[rel] {
			problems = append(problems, fmt.Errorf("%s: not in the manifest", rel))
		}
		return nil
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("backup: %s does not match its manifest:\n%w", dir, errors.Join(problems...))
	}
	return &m, nil
}

// Restore replaces dataDir's databases, lists and requisitions by the backup's, after
// checking the whole backup. What it replaces is moved into
// dataDir/before-restore-<time>/ (the returned path). The control plane
// must be stopped.
func Restore(dir, dataDir string, now time.Time) (aside string, err error) {
	m, err := Verify(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	// Stage on the same file system first, so that the switch is renames.
	stage, err := os.MkdirTemp(dataDir, ".restore-*")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := copyTree(dir, stage); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	if _, err := Verify(stage); err != nil {
		return "", fmt.Errorf("restore: the staged copy: %w", err)
	}
	aside = filepath.Join(dataDir, "before-restore-"+now.UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	names := slices.Clone(Trees)
	for _, db := range Databases {
		names = append(names, db, db+"-wal", db+"-shm")
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(dataDir, n), filepath.Join(aside, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return aside, fmt.Errorf("restore: moving %s aside: %w", n, err)
		}
	}
	top := map[string]bool{}
	for _, f := range m.Files {
		top[strings.SplitN(f.Path, "/", 2)[0]] = true
	}
	// The service's account owns the data directory: what is restored
	// (by root, usually) gets the same owner, or the service could not
	// open it.
	owner, haveOwner := ownerOf(dataDir)
	for _, n := range slices.Sorted(maps.Keys(top)) {
		dst := filepath.Join(dataDir, n)
		if err := os.Rename(filepath.Join(stage, n), dst); err != nil {
			return aside, fmt.Errorf("restore: %s: %w (the previous files are in %s)", n, err, aside)
		}
		if haveOwner {
			if err := chownTree(dst, owner); err != nil {
				return aside, fmt.Errorf("restore: %w", err)
			}
		}
	}
	return aside, nil
}
