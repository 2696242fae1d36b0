package ui

import (
	"vigie/rules"
	"vigie/rules/policy"
)

// allSchools and allCategories read the collections most pages show
// beside their own: one place for their paths and bounds.
func allSchools(rq *request) ([]policy.School, error) {
	return callAll[policy.School](rq, "/api/v1/schools", 100000)
}

func allCategories(rq *request) ([]rules.CategoryInfo, error) {
	return callAll[rules.CategoryInfo](rq, "/api/v1/categories", 10000)
}
