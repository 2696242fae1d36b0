package policy

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestProblems(t *testing.T) {
	a, b, c := errors.New("schools[0].uai: required"), errors.New("profiles[1].id: duplicate"), errors.New("lists[2]: empty")
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"one", a, []string{a.Error()}},
		{"joined", errors.Join(a, b), []string{a.Error(), b.Error()}},
		{"nested joins", errors.Join(a, errors.Join(b, c)), []string{a.Error(), b.Error(), c.Error()}},
		{"wrapped join", fmt.Errorf("firewall: school X: %w", errors.Join(a, b)), []string{a.Error(), b.Error()}},
		{"wrapped single", fmt.Errorf("firewall: %w", a), []string{"firewall: " + a.Error()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Problems(tc.err); !slices.Equal(got, tc.want) {
				t.Errorf("Problems = %q, want %q", got, tc.want)
			}
		})
	}
}
