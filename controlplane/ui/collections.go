package ui

import (
	"vigie/rules"
	"vigie/rules/policy"
)

// allSchools and allCategories read the collections most pages show
// beside their own: one place for their paths and bounds.
func allSchools(rq *request) ([]policy.School, error) {
	return rq.api().Schools(rq.ctx())
}

func allCategories(rq *request) ([]rules.CategoryInfo, error) {
	return rq.api().AllCategories(rq.ctx())
}
