package cli

import (
	"errors"
	"io"
)

// runControlplane is replaced by the issue that builds "vigie controlplane".
func runControlplane(args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
