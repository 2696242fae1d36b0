package backup

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

type uidGid struct{ uid, gid int }

// ownerOf returns a directory's owner when this process may give files
// to it (it runs as root and the owner is someone else).
func ownerOf(dir string) (uidGid, bool) {
	st, err := os.Stat(dir)
	if err != nil || os.Geteuid() != 0 {
		return uidGid{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return uidGid{}, false
	}
	return uidGid{int(sys.Uid), int(sys.Gid)}, true
}

func chownTree(root string, o uidGid) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, o.uid, o.gid)
	})
}
