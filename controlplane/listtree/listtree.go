// Package listtree packs an imported list tree (a UT1 directory: one
// directory per category holding domains, urls and expressions files) into
// one compressed archive, and unpacks it. Replicas sharing a database keep
// imported trees there, not on one replica's disk: the replica that
// imports packs the tree into the store, and one that compiles a draft
// pointing at a tree it lacks unpacks it into its data directory first.
package listtree

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Store keeps packed trees by name (a path relative to the data directory,
// "lists/ut1-20260901T080000Z"). A store shared by several processes
// implements it (store.Postgres).
type Store interface {
	PutListTree(ctx context.Context, name string, packed []byte) error
	// ListTree returns a packed tree (an error wrapping fs.ErrNotExist when
	// there is none by that name).
	ListTree(ctx context.Context, name string) ([]byte, error)
}

// Pack archives the regular files and directories under dir (tar, then
// zstd). Symbolic links and other special files are refused: an imported
// tree never holds them (ut1import drops them).
func Pack(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return nil, fmt.Errorf("listtree: %w", err)
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: filepath.ToSlash(rel) + "/", Mode: 0o750})
		case info.Mode().IsRegular():
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Mode: 0o640, Size: info.Size()}); err != nil {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return fmt.Errorf("%s: not a regular file or directory", rel)
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("listtree: pack %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}

// Unpack extracts a packed tree into dir, which must not exist: it is
// written beside it under a temporary name and renamed into place whole,
// so a tree is never seen half written. At most max bytes are extracted.
func Unpack(packed []byte, dir string, max int64) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return fmt.Errorf("listtree: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".unpack-*")
	if err != nil {
		return fmt.Errorf("listtree: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := extract(packed, tmp, max); err != nil {
		return fmt.Errorf("listtree: unpack into %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // another request unpacked it first
		}
		return fmt.Errorf("listtree: %w", err)
	}
	return nil
}

func extract(packed []byte, dir string, max int64) error {
	zr, err := zstd.NewReader(bytes.NewReader(packed), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%q: not a path inside the tree", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o750); err != nil {
				return err
			}
		case tar.TypeReg:
			total += h.Size
			if total > max {
				return fmt.Errorf("the tree is larger than %d bytes", max)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%q: not a regular file or directory", h.Name)
		}
	}
}

// Ensure makes the tree name (relative to dataDir) present on disk,
// unpacking it from st when it is missing. A name not under lists/ is left
// alone: only imported trees live in the store.
func Ensure(ctx context.Context, st Store, dataDir, name string, max int64) error {
	if filepath.IsAbs(name) || !filepath.IsLocal(name) || !strings.HasPrefix(filepath.ToSlash(name), "lists/") {
		return nil
	}
	dir := filepath.Join(dataDir, name)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	packed, err := st.ListTree(ctx, filepath.ToSlash(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not imported through a shared store: the compiler says it is missing
	}
	if err != nil {
		return fmt.Errorf("listtree: %s: %w", name, err)
	}
	return Unpack(packed, dir, max)
}
