package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestAdminListsShowFollowsNext: a list longer than one page (1,000) is
// printed whole by vigie admin lists show.
func TestAdminListsShowFollowsNext(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	const n = 2345
	domains := make([]string, n)
	for i := range domains {
		domains[i] = fmt.Sprintf("p%05d.example", i)
	}
	for i := 0; i < n; i += 1000 {
		cp.Call("POST", "/api/v1/lists/academie-bloque/entries", map[string]any{"domains": domains[i:min(n, i+1000)]}, nil)
	}
	var out, errb bytes.Buffer
	if err := runAdmin([]string{"--server", cp.URL, "--token", cp.RSSIToken, "lists", "show", "academie_bloque"}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	got := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "domain\tp") && strings.HasSuffix(strings.SplitN(l, "\t", 3)[1], ".example") {
			got++
		}
	}
	if got != n {
		t.Fatalf("lists show printed %d of %d entries", got, n)
	}
}
