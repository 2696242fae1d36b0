package cli

import (
	"errors"
	"io"
)

// runFirewall is replaced by the issue that builds "vigie firewall".
func runFirewall(args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
