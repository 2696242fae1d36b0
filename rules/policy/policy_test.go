package policy

import (
	"strings"
	"testing"
)

const minimal = `version: 1
profiles: [{id: eleves, block: [adult]}]
schools:
  - uai: 0671234X
    name: Collège
    zones: [{name: pedagogique, cidrs: [10.10.0.0/24], profile: eleves}]
`

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"ok", minimal, ""},
		{"unknown field names file and line", minimal + "colour: blue\n", "p.yaml: line 7: field colour not found"},
		{"unknown nested field", strings.Replace(minimal, "block: [adult]", "blokc: [adult]", 1), "line 2: field blokc not found"},
		{"wrong version", strings.Replace(minimal, "version: 1", "version: 2", 1), "version: must be 1"},
		{"bad UAI", strings.Replace(minimal, "0671234X", "671234", 1), `schools[0].uai: "671234" is not a UAI`},
		{"unknown profile", strings.Replace(minimal, "profile: eleves", "profile: eleve", 1), `schools[0].zones[0].profile: unknown profile "eleve"`},
		{"bad CIDR", strings.Replace(minimal, "10.10.0.0/24", "10.10.0.0/33", 1), `cidrs[0]: "10.10.0.0/33" is not a CIDR prefix`},
		{"host bits", strings.Replace(minimal, "10.10.0.0/24", "10.10.0.1/24", 1), "has host bits set (did you mean 10.10.0.0/24?)"},
		{"bad enum", strings.Replace(minimal, "block: [adult]", "block: [adult], https: always", 1), `profiles[0].https: must be one of sni, intercept, got "always"`},
		{"bad window", strings.Replace(minimal, "block: [adult]", "block: [adult], windows: [{categories: [x], from: '13:30', to: '12:00'}]", 1), "profiles[0].windows[0]: to 12:00 is not after from 13:30"},
		{"bad day", strings.Replace(minimal, "block: [adult]", "block: [adult], windows: [{categories: [x], days: [lundi], from: '12:00', to: '13:00'}]", 1), `unknown day "lundi"`},
		{"allow and block", strings.Replace(minimal, "block: [adult]", "block: [adult], allow: [adult]", 1), `category "adult" is both blocked and allowed`},
		{"long interface", strings.Replace(minimal, "cidrs: [10.10.0.0/24]", "interfaces: [averyveryverylongname0]", 1), "is not a valid interface name"},
		{"connect ports", strings.Replace(minimal, "block: [adult]", "block: [adult], connect_ports: ['443', '8000-8100'], https_block_page: true", 1), ""},
		{"bad connect port", strings.Replace(minimal, "block: [adult]", "block: [adult], connect_ports: ['443', '70000']", 1), `profiles[0].connect_ports[1]: "70000": not a port number`},
		{"reversed connect ports", strings.Replace(minimal, "block: [adult]", "block: [adult], connect_ports: ['9-1']", 1), `profiles[0].connect_ports[0]: "9-1": range ends before it starts`},
		{"two documents", minimal + "---\nversion: 1\n", "more than one YAML document"},
		{"empty", "", "empty policy"},
		{"not yaml", "{[", "p.yaml:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), "p.yaml")
			switch {
			case c.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestOverlappingZones(t *testing.T) {
	text := strings.Replace(minimal, "zones: [{name: pedagogique, cidrs: [10.10.0.0/24], profile: eleves}]",
		"zones: [{name: pedagogique, cidrs: [10.10.0.0/16], profile: eleves}, {name: administratif, cidrs: [10.10.3.0/24], profile: eleves}]", 1)
	_, err := Parse([]byte(text), "p.yaml")
	if err == nil || !strings.Contains(err.Error(), `10.10.3.0/24 overlaps 10.10.0.0/16 of zone "pedagogique"`) {
		t.Errorf("error = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("version: 1\nprofiles: [{id: a, windows: [{categories: [x], from: '1', to: '2'}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Parse(data, "fuzz.yaml")
	})
}

func TestLine(t *testing.T) {
	text := minimal + `firewall:
  internet:
    - {from: pedagogique, services: [web]}
    - from: pedagogique
      proto: tcp
      ports: ["22"]
`
	p, err := Parse([]byte(text), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]int{
		"firewall.internet[0]":                9,
		"firewall.internet[1].ports":          12,
		"firewall.internet[1].ports[0]":       12,
		"schools[0671234X].zones[0].cidrs[0]": 6,
		"schools[0].uai":                      4,
		"firewall.internet[7]":                9,
		"nowhere":                             0,
	} {
		if got := p.Line(field); got != want {
			t.Errorf("Line(%q) = %d, want %d", field, got, want)
		}
	}
}
