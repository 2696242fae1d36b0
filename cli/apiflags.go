package cli

import (
	"flag"
	"os"
	"strings"
	"time"

	"vigie/controlplane/apiclient"
)

// defaultServer is the control plane a command talks to when neither
// --server nor $VIGIE_SERVER names one: the local one.
const defaultServer = "http://127.0.0.1:8080"

// apiFlags are the options of every command that talks to the control
// plane's API (vigie admin, firewall render --version, logs
// export/ref/who): one set of names and one order of resolution, so that
// the environment the guide sets up serves them all.
type apiFlags struct {
	server, token, tokenFile, ca string
}

// addAPIFlags declares --server, --token, --token-file and --ca (and
// --ca-file, its older name) on fs. what says what the API is used for
// in the flags' help ("" for a command that only talks to the API).
func addAPIFlags(fs *flag.FlagSet, what string) *apiFlags {
	f := &apiFlags{}
	if what != "" {
		what = " " + what
	}
	fs.StringVar(&f.server, "server", envOr("VIGIE_SERVER", defaultServer), "control plane URL"+what+" (or $VIGIE_SERVER)")
	fs.StringVar(&f.token, "token", "", "API token"+what+" (or $VIGIE_TOKEN)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the API token"+what+" (or $VIGIE_TOKEN_FILE): keeps it out of the process list")
	fs.StringVar(&f.ca, "ca", os.Getenv("VIGIE_CA"), "PEM file of a private CA to trust for the control plane (or $VIGIE_CA)")
	fs.StringVar(&f.ca, "ca-file", os.Getenv("VIGIE_CA"), "same as --ca")
	return f
}

// resolveToken finds the API token: --token, then --token-file, then
// $VIGIE_TOKEN, then the file $VIGIE_TOKEN_FILE names. "" when none is
// given; an error when a named file cannot be read.
func (f *apiFlags) resolveToken() (string, error) {
	if f.token != "" {
		return f.token, nil
	}
	if f.tokenFile != "" {
		return readToken("--token-file", f.tokenFile)
	}
	if t := os.Getenv("VIGIE_TOKEN"); t != "" {
		return t, nil
	}
	if p := os.Getenv("VIGIE_TOKEN_FILE"); p != "" {
		return readToken("$VIGIE_TOKEN_FILE", p)
	}
	return "", nil
}

func readToken(from, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageError("%s: %v", from, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// errNoToken is the usage error of a command that needs a token and got none.
func errNoToken(cmd string) error {
	return usageError("%s: an API token is required (--token, --token-file, $VIGIE_TOKEN or $VIGIE_TOKEN_FILE)", cmd)
}

// client resolves the token and returns an API client; requireToken
// refuses to go on without one. timeout bounds one request (0: the
// client's default).
func (f *apiFlags) client(cmd string, requireToken bool, timeout time.Duration) (*apiclient.Client, error) {
	tok, err := f.resolveToken()
	if err != nil {
		return nil, err
	}
	if tok == "" && requireToken {
		return nil, errNoToken(cmd)
	}
	c, err := apiclient.New(apiclient.Options{Server: f.server, Token: tok, CAFile: f.ca, Timeout: timeout})
	if err != nil {
		return nil, usageError("%s: %v", cmd, err)
	}
	return c, nil
}
