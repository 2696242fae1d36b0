package policy

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fieldStep is one step of a field path: a mapping key, then optional
// indexes ("zones[1]") or keys of a list element ("schools[0671234X]",
// the element whose uai, id or name is that).
var fieldStep = regexp.MustCompile(`^([a-z_]+)((?:\[[^\]]*\])*)$`)

// Line is the line in the policy file of a field named the way validation
// errors name them ("firewall.internet[0]", "schools[0671234X].zones[1]"),
// or of the closest enclosing field found; 0 when the policy was not read
// from YAML or the path leads nowhere.
func (p *Policy) Line(field string) int {
	if p.doc == nil {
		return 0
	}
	n := p.doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	line := 0
	for _, step := range strings.Split(field, ".") {
		m := fieldStep.FindStringSubmatch(step)
		if m == nil {
			return line
		}
		if n = mapValue(n, m[1]); n == nil {
			return line
		}
		line = n.Line
		for _, idx := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(m[2], "["), "]"), "][") {
			if idx == "" {
				continue
			}
			if n = element(n, idx); n == nil {
				return line
			}
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// element is a sequence's element by index, or by the value of its uai,
// id or name key.
func element(n *yaml.Node, idx string) *yaml.Node {
	if n.Kind != yaml.SequenceNode {
		return nil
	}
	if i, err := strconv.Atoi(idx); err == nil && len(idx) < 7 {
		if i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
		return nil
	}
	for _, e := range n.Content {
		for _, k := range []string{"uai", "id", "name"} {
			if v := mapValue(e, k); v != nil && v.Value == idx {
				return e
			}
		}
	}
	return nil
}
