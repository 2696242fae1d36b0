package httpproxy

import (
	"strings"
	"testing"
)

// TestUnblockURLValidated: the block page's unblock address must be an
// http(s) address; a typo is an error naming the field, not a dead form.
func TestUnblockURLValidated(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true}, {"https://vigie.ac-demo.fr/deblocage", true}, {"http://10.0.0.1:8080/deblocage", true},
		{"vigie.ac-demo.fr/deblocage", false}, {"ftp://vigie/deblocage", false}, {"https://", false},
	} {
		err := Config{UAI: "0671234X", UnblockURL: tc.url}.validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "unblock_url")) {
			t.Errorf("%q: %v", tc.url, err)
		}
	}
}
