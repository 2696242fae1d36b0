package edge

import (
	"fmt"
	"os"

	"vigie/demo"
	"vigie/rules"
	"vigie/rules/policy"
)

// StrictRuleset is the policy an edge runs when it has neither a control
// plane nor a last-known-good bundle: the embedded sample lists, every
// black category blocked for every client. Filtering stays on, never open.
func StrictRuleset(uai string) (*rules.Ruleset, error) {
	dir, err := os.MkdirTemp("", "vigie-strict-")
	if err != nil {
		return nil, fmt.Errorf("edge: strict policy: %w", err)
	}
	defer os.RemoveAll(dir)
	if _, err := demo.WriteSample(dir); err != nil {
		return nil, err
	}
	p := &policy.Policy{
		Version:  1,
		Academie: "Vigie (politique stricte intégrée)",
		Sources: []policy.Source{
			{Name: "ut1", Type: "ut1", Path: "ut1"},
			{Name: "adult-top1m", Type: "plain", Path: "adult-top1m/domains", Category: "adult"},
		},
		Profiles: []policy.Profile{{ID: "strict", Name: "Strict", SafeSearch: true, YouTube: "strict", NoSNI: "refuse"}},
		Schools:  []policy.School{{UAI: uai, Name: uai}},
		Dir:      dir,
	}
	// Block every category whose default use is black: read them first.
	probe, _, err := rules.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("edge: strict policy: %w", err)
	}
	for _, c := range probe.Categories() {
		if c.Usage != "white" {
			p.Profiles[0].Block = append(p.Profiles[0].Block, c.ID)
		}
	}
	rs, _, err := rules.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("edge: strict policy: %w", err)
	}
	return rs, nil
}
