package cptest

import (
	"os"
	"path/filepath"
)

// Backup stops the control plane, copies its whole data directory (the
// databases, the archive, the key) as an operator's backup would, and
// starts it again. It returns the copy's directory.
func (c *CP) Backup() string {
	c.tb.Helper()
	c.Stop()
	dst := filepath.Join(c.tb.TempDir(), "backup")
	if err := os.CopyFS(dst, os.DirFS(c.DataDir)); err != nil {
		c.tb.Fatal(err)
	}
	c.Restart()
	return dst
}

// Restore stops the control plane, replaces its data directory with a
// Backup and starts it again on the same address.
func (c *CP) Restore(backup string) {
	c.tb.Helper()
	c.Stop()
	ents, err := os.ReadDir(c.DataDir)
	if err != nil {
		c.tb.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(c.DataDir, e.Name())); err != nil {
			c.tb.Fatal(err)
		}
	}
	if err := os.CopyFS(c.DataDir, os.DirFS(backup)); err != nil {
		c.tb.Fatal(err)
	}
	c.Restart()
}
