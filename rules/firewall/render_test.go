package firewall

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"vigie/demo"
	"vigie/rules/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testConfig is the edge side used by the golden files.
var testConfig = Config{DNSPort: 53, HTTPPort: 3129, HTTPSPort: 3130, ExplicitPort: 3128, MetricsPort: 9153}

func loadSource(t testing.TB, path, uai string) Source {
	t.Helper()
	var p *policy.Policy
	var err error
	if path == "demo" {
		p, err = demo.Policy("")
	} else {
		p, err = policy.Load(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	src, err := FromPolicy(p, uai)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// goldenCases are the rulesets whose nft text is reviewed in testdata/golden.
func goldenCases(t testing.TB) []struct {
	name string
	src  Source
	cfg  Config
} {
	wan := testConfig
	wan.WANInterface, wan.Masquerade = "wan0", true
	return []struct {
		name string
		src  Source
		cfg  Config
	}{
		{"demo", loadSource(t, "demo", demo.UAI), testConfig},
		{"school", loadSource(t, "testdata/school.yaml", "0670001A"), testConfig},
		{"school-wan", loadSource(t, "testdata/school.yaml", "0670001A"), wan},
		{"no-zones", Source{School: policy.School{UAI: "0670002B", Name: "Vide"}}, testConfig},
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Build(tc.src, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := Render(&got, rs); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name+".nft")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("render differs from %s (review, then go test -update):\n%s", path, got.String())
			}
		})
	}
}
