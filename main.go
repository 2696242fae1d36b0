// Command vigie is the whole of Vigie in one binary: the school edge, the
// académie control plane, the demo that runs both, and the tools around
// them (rules, keys, logs, firewall, lab). Run "vigie help" for the list.
package main

import (
	"os"

	"vigie/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
