package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden OpenAPI document")

// TestOpenAPI checks that the served document describes exactly the routes
// the server has, that every reference resolves, and that it matches the
// reviewed golden copy (go test -update rewrites it; review the diff).
func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	b := e.mustDo("", "GET", "/api/v1/openapi.json", nil, 200)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	n := 0
	for _, rt := range e.srv.Routes() {
		item, ok := paths[rt.Path].(map[string]any)
		if !ok {
			t.Errorf("route %s %s is not documented", rt.Method, rt.Path)
			continue
		}
		op, ok := item[strings.ToLower(rt.Method)].(map[string]any)
		if !ok {
			t.Errorf("route %s %s: method not documented", rt.Method, rt.Path)
			continue
		}
		if !rt.Public() {
			roles, _ := op["x-vigie-roles"].([]any)
			if len(roles) != len(rt.Roles) {
				t.Errorf("%s %s: documented roles %v, enforced %v", rt.Method, rt.Path, roles, rt.Roles)
			}
		}
	}
	ops := map[string]bool{}
	for p, item := range paths {
		for m, op := range item.(map[string]any) {
			n++
			id := op.(map[string]any)["operationId"].(string)
			if ops[id] {
				t.Errorf("duplicate operationId %s", id)
			}
			ops[id] = true
			_ = p
			_ = m
		}
	}
	if n != len(e.srv.Routes()) {
		t.Errorf("document has %d operations, the server %d routes", n, len(e.srv.Routes()))
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				name := strings.TrimPrefix(r, "#/components/schemas/")
				if _, ok := doc["components"].(map[string]any)["schemas"].(map[string]any)[name]; !ok {
					t.Errorf("unresolved $ref %s", r)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc)

	var pretty bytes.Buffer
	json.Indent(&pretty, b, "", "  ")
	golden := filepath.Join("testdata", "openapi.golden.json")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestOpenAPI -update)", err)
	}
	if !bytes.Equal(want, pretty.Bytes()) {
		t.Fatalf("the OpenAPI document changed: review and run go test -run TestOpenAPI -update")
	}
}
