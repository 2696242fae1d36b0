package api

import (
	"encoding"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/controlplane/ut1import"
	"vigie/rules"
	"vigie/rules/policy"
)

// schemas names the request and response types of the API. Their JSON
// Schemas are derived from the Go types the handlers encode and decode, so
// the document cannot drift from the code; the tests check every response
// against the schema its route declares.
var schemas = map[string]any{
	"Health":         map[string]any{"type": "object"},
	"OpenAPI":        map[string]any{"type": "object"},
	"Login":          LoginRequest{},
	"SessionInfo":    SessionInfo{},
	"Identity":       auth.Identity{},
	"TokenRequest":   TokenRequest{},
	"PasswordChange": PasswordChange{},
	"TokenCreated":   TokenCreated{},
	"TokenPage":      Page[store.APIToken]{},
	"UserRequest":    UserRequest{},
	"UserPatch":      UserPatch{},
	"User":           store.User{},
	"UserCreated":    UserCreated{},
	"UserPage":       Page[store.User]{},
	"Draft":          DraftView{},
	"DraftPut":       DraftPut{},
	"Diff":           publish.Diff{},
	"ValidateResult": ValidateResult{},
	"Category":       policy.Category{},
	"CategoryPage":   Page[rules.CategoryInfo]{},
	"Profile":        policy.Profile{},
	"ProfilePage":    Page[policy.Profile]{},
	"Firewall":       policy.Firewall{},
	"School":         policy.School{},
	"SchoolPage":     Page[policy.School]{},
	"SchoolStatus":   SchoolStatus{},
	"ListCreate":     ListCreate{},
	"ListPatch":      ListPatch{},
	"List":           store.List{},
	"ListPage":       Page[store.List]{},
	"EntryPage":      Page[store.Entry]{},
	"EntriesChange":  EntriesChange{},
	"EntriesResult":  EntriesResult{},
	"PublishRequest": PublishRequest{},
	"Version":        store.Version{},
	"VersionPage":    Page[store.Version]{},
	"Source":         publish.Source{},
	"ImportRequest":  ImportRequest{},
	"ExplainRequest": ExplainRequest{},
	"ExplainResult":  ExplainResult{},
	"ImportResult":   ut1import.Result{},
	"Edge":           EdgeHealth{},
	"EdgePage":       Page[EdgeHealth]{},
	"EdgeCreate":     EdgeCreate{},
	"EdgeCreated":    EdgeCreated{},
	"EdgeReport":     EdgeReport{},
	"AuditPage":      Page[audit.Entry]{},
	"AuditVerify":    AuditVerify{},
	"Problem":        Problem{},

	// Unblock requests decided by a chef (unblock.go).
	"SchoolExceptions": SchoolExceptions{},
	"UnblockSettings":  UnblockSettings{},
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// SchemaOf derives the JSON Schema of a Go value's JSON encoding. Values
// that already are schemas (maps) are returned as they are.
func SchemaOf(v any) any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return schemaOf(reflect.TypeOf(v), 0)
}

func schemaOf(t reflect.Type, depth int) map[string]any {
	if depth > 12 {
		return map[string]any{}
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(schemaOf(t.Elem(), depth+1))
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth+1)}
	case reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), depth+1)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addFields(t, props, &required, depth)
		slices.Sort(required)
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

// addFields adds a struct's JSON fields, flattening embedded structs as
// encoding/json does.
func addFields(t reflect.Type, props map[string]any, required *[]string, depth int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props, required, depth)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := schemaOf(f.Type, depth+1)
		optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		if !optional {
			*required = append(*required, name)
			// encoding/json writes nil slices and maps as null.
			if k := f.Type.Kind(); (k == reflect.Slice && f.Type != rawType && f.Type.Elem().Kind() != reflect.Uint8) || k == reflect.Map {
				s = nullable(s)
			}
		}
		props[name] = s
	}
}

func nullable(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	switch t := s["type"].(type) {
	case string:
		out["type"] = []any{t, "null"}
	case nil:
		// unconstrained already admits null
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// Document builds the OpenAPI 3.1 description of the routes.
func (s *Server) Document() map[string]any {
	s.mu.Lock()
	routes := slices.Clone(s.routes)
	comps := map[string]any{}
	for name, v := range s.schemas {
		comps[name] = SchemaOf(v)
	}
	s.mu.Unlock()
	problem := map[string]any{"description": "Problème (RFC 9457)",
		"content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
	paths := map[string]any{}
	for _, rt := range routes {
		item, _ := paths[rt.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": operationID(rt),
			"tags":        []string{rt.Tag},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		qnames := make([]string, 0, len(rt.Query))
		for q := range rt.Query {
			qnames = append(qnames, q)
		}
		slices.Sort(qnames)
		for _, q := range qnames {
			params = append(params, map[string]any{"name": q, "in": "query", "description": rt.Query[q], "schema": map[string]any{"type": "string"}})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.Request != "" {
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": ref(rt.Request)}}}
		}
		status := rt.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		switch {
		case rt.Binary:
			ok["content"] = map[string]any{"application/octet-stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
		case rt.Response != "":
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(rt.Response)}}
		}
		responses := map[string]any{itoa(status): ok, "default": problem}
		if rt.Path == "/api/v1/edge/bundle" {
			responses["204"] = map[string]any{"description": "Aucune version plus récente pendant l'attente"}
		}
		op["responses"] = responses
		if rt.Public() {
			op["security"] = []any{}
		} else {
			roles := make([]string, len(rt.Roles))
			for i, r := range rt.Roles {
				roles[i] = string(r)
			}
			op["x-vigie-roles"] = roles
		}
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Vigie, plan de contrôle", "version": "1",
			"description": "API du plan de contrôle Vigie : politique de filtrage, publication signée, passerelles, comptes et journal d'audit. " +
				"Chaque opération indique dans x-vigie-roles les rôles autorisés ; le serveur les applique."},
		"paths": paths,
		"components": map[string]any{
			"schemas": comps,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "Jeton d'API (vga_…) ou de passerelle (vge_…)"},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": auth.CookieName, "description": "Session ; les requêtes non sûres portent X-CSRF-Token"},
			},
		},
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"cookie": []any{}}},
	}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, s.Document())
}
