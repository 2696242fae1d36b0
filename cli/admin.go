package cli

import (
	"errors"
	"io"
)

// runAdmin is replaced by the issue that builds "vigie admin".
func runAdmin(args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
