package ui

import (
	"context"
	"strconv"

	"vigie/rules"
)

// publishedRules returns the Ruleset of the version in force (nil before
// the first publication), from the API's cache: the Tester's answers
// come from the API, and the pages must read the same version.
func (h *Handler) publishedRules(ctx context.Context) (*rules.Ruleset, uint64, error) {
	return h.api.PublishedRules(ctx)
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }
