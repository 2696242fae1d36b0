package rules

// WithoutVerdictCache returns a view of rs deciding without the verdict
// cache, for the benchmarks that pair both.
func WithoutVerdictCache(rs *Ruleset) *Ruleset {
	c := *rs
	c.vcache = nil
	return &c
}
