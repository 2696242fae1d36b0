package listfmt

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseGlobalUsage(t *testing.T) {
	text := "#\n# header comment: with a colon\n#\n" +
		"SOURCE: before any block\n" +
		"NAME:\tadult\n" +
		"DEFAULT_TYPE: black\n" +
		"SOURCE: https://squidguard.ut-capitole.fr\n" +
		"DESC EN: Some adult sites.\n" +
		"DESC FR: Des sites adultes allant de l'érotique à la pornographie dure.\n" +
		"DESC RU: Некоторые взрослые сайты.\n" +
		"NAME EN: Adult (X)\n" +
		"NAME FR: Adulte (X)\n" +
		"NAME DE: Porno\n" +
		"\n" +
		"NAME: white_one\r\n" +
		"DEFAULT_TYPE: white\r\n" +
		"COLOR: blue\n" +
		"no colon here\n" +
		"NAME FR: Première\n" +
		"NAME FR: Seconde\n" +
		"\n" +
		"NAME:\tadult\n" +
		"NAME FR: Doublon\n" +
		"NAME: grey\n" +
		"DEFAULT_TYPE: grey\n" +
		"DESC FR: bad \xff byte\n"
	blocks, probs, err := parseGlobalUsage(strings.NewReader(text), "global_usage")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]usageBlock{
		"adult": {ID: "adult", DefaultType: "black", Source: "https://squidguard.ut-capitole.fr",
			NameFR: "Adulte (X)", NameEN: "Adult (X)",
			DescFR: "Des sites adultes allant de l'érotique à la pornographie dure.", DescEN: "Some adult sites.", Line: 5},
		"white_one": {ID: "white_one", DefaultType: "white", NameFR: "Première", Line: 15},
		"grey":      {ID: "grey", DescFR: "bad \uFFFD byte", Line: 24},
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		t.Run(id, func(t *testing.T) {
			got, ok := blocks[id]
			if !ok || *got != want[id] {
				t.Errorf("block %q:\n got %+v\nwant %+v", id, got, want[id])
			}
		})
	}
	if len(blocks) != len(want) {
		t.Errorf("got %d blocks, want %d", len(blocks), len(want))
	}
	wantProbs := []string{
		`global_usage:4: key "SOURCE" before the first NAME`,
		`global_usage:17: unknown key "COLOR"`,
		`global_usage:18: expected "KEY: value"`,
		`global_usage:20: duplicate key "NAME FR", ignored`,
		`global_usage:22: duplicate block for "adult" (first at line 5), ignored`,
		`global_usage:25: DEFAULT_TYPE "grey" is neither black nor white`,
		`global_usage:26: not valid UTF-8`,
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.Error())
	}
	if !slices.Equal(got, wantProbs) {
		t.Errorf("problems:\n got %q\nwant %q", got, wantProbs)
	}
}

// writeFiles creates files under dir from a map of relative path to content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"global_usage": "NAME:\tadult\nDEFAULT_TYPE: black\nNAME FR: Adulte (X)\nNAME EN: Adult (X)\nSOURCE: https://example.org\n\n" +
			"NAME:\tkids\nDEFAULT_TYPE: white\n\n" +
			"NAME:\tghost\nDEFAULT_TYPE: black\n",
		"README":                            "about this tree\n",
		"LICENSE-CC-BY-SA.pdf":              strings.Repeat("%PDF", 100),
		".hidden":                           "adult",
		"adult/domains":                     "porn.example\n",
		"adult/urls":                        "example.com/adult\n",
		"adult/expressions":                 "(porn|xxx)\n",
		"adult/very_restrictive_expression": "sex\n",
		"adult/usage":                       "black\n# comment\nadult\nporn\nx-rated\nwhite\n",
		"adult/notes.txt":                   "ignored\n",
		"kids/domains":                      "kids.example\n",
		"kids/usage":                        "", // falls back to global_usage: white
		"odd/usage":                         "grey\nodd-alias\n",
		"porn":                              "adult",  // a link that became a file
		"xxx":                               "porn\n", // an alias of an alias
		"nowhere":                           "missing",
		"notes.txt":                         strings.Repeat("long text ", 40),
		"two words":                         "adult kids",
		"dup":                               "kids", // a second alias file
	})
	if err := os.Symlink("kids", filepath.Join(dir, "children")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	tree, probs, err := ReadTree(dir)
	if err != nil {
		t.Fatal(err)
	}

	var ids []string
	for _, c := range tree.Categories {
		ids = append(ids, c.ID)
	}
	if want := []string{"adult", "kids", "odd"}; !slices.Equal(ids, want) {
		t.Fatalf("categories %q, want %q", ids, want)
	}
	wantAliases := map[string]string{
		"porn": "adult", "xxx": "adult", "x-rated": "adult",
		"children": "kids", "dup": "kids",
		"grey": "odd", "odd-alias": "odd",
	}
	if !maps.Equal(tree.Aliases, wantAliases) {
		t.Errorf("aliases %v, want %v", tree.Aliases, wantAliases)
	}

	tests := []struct {
		lookup string
		want   Category
	}{
		{"xxx", Category{
			ID: "adult", Usage: "black", Aliases: []string{"porn", "x-rated", "xxx"},
			NameFR: "Adulte (X)", NameEN: "Adult (X)", Source: "https://example.org",
			Dir: filepath.Join(dir, "adult"), Files: categoryFiles,
		}},
		{"children", Category{
			ID: "kids", Usage: "white", Aliases: []string{"children", "dup"},
			Dir: filepath.Join(dir, "kids"), Files: []string{"domains"},
		}},
		{"odd", Category{
			ID: "odd", Usage: "black", Aliases: []string{"grey", "odd-alias"},
			Dir: filepath.Join(dir, "odd"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.lookup, func(t *testing.T) {
			c, ok := tree.Category(tt.lookup)
			if !ok {
				t.Fatalf("Category(%q) not found", tt.lookup)
			}
			if !equalCategory(*c, tt.want) {
				t.Errorf("Category(%q):\n got %+v\nwant %+v", tt.lookup, *c, tt.want)
			}
		})
	}
	if _, ok := tree.Category("nowhere"); ok {
		t.Error(`Category("nowhere") found`)
	}

	wantProbs := []string{
		filepath.Join(dir, "global_usage") + `:10: category "ghost" has no directory`,
		filepath.Join(dir, "elsewhere") + ": link to a directory that is not a category of this tree",
		filepath.Join(dir, "notes.txt") + ": neither a category nor an alias (400 bytes)",
		filepath.Join(dir, "nowhere") + `: alias points to "missing", which is not a category`,
		filepath.Join(dir, "odd", "usage") + `:1: usage file says neither black nor white ("grey")`,
		filepath.Join(dir, "two words") + ": neither a category nor an alias: the file does not hold one category name",
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.Error())
	}
	slices.Sort(got)
	slices.Sort(wantProbs)
	if !slices.Equal(got, wantProbs) {
		t.Errorf("problems:\n got %q\nwant %q", got, wantProbs)
	}

	adult, _ := tree.Category("adult")
	var entries []Entry
	reps, err := tree.Parse(adult, func(e Entry) { entries = append(entries, e) })
	if err != nil {
		t.Fatal(err)
	}
	wantEntries := []Entry{
		{Kind: Domain, Value: "porn.example", Line: 1},
		{Kind: URL, Value: "example.com/adult", Line: 1},
		{Kind: Expression, Value: "(porn|xxx)", Line: 1},
		{Kind: Expression, Value: "sex", Strict: true, Line: 1},
	}
	if !slices.Equal(entries, wantEntries) {
		t.Errorf("entries:\n got %+v\nwant %+v", entries, wantEntries)
	}
	if len(reps) != 4 || reps[3].File != filepath.Join(dir, "adult", "very_restrictive_expression") {
		t.Errorf("reports: %+v", reps)
	}
}

func equalCategory(a, b Category) bool {
	return slices.Equal(a.Aliases, b.Aliases) && slices.Equal(a.Files, b.Files) &&
		a.ID == b.ID && a.Usage == b.Usage && a.NameFR == b.NameFR && a.NameEN == b.NameEN &&
		a.DescFR == b.DescFR && a.DescEN == b.DescEN && a.Source == b.Source && a.Dir == b.Dir
}

func TestReadTreeMissing(t *testing.T) {
	if _, _, err := ReadTree(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("ReadTree of a missing directory succeeded")
	}
}
