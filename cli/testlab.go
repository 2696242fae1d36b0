package cli

import (
	"errors"
	"io"
)

// runTestlab is replaced by the issue that builds "vigie testlab".
func runTestlab(args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
