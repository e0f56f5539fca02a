package service

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// The OpenAPI file documents the API; these tests hold it to the routes
// table and to the Go types the handlers encode.

const openAPIFile = "../../docs/openapi.yaml"

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadOpenAPI parses the OpenAPI file into maps, slices and scalars.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("read the OpenAPI file: %v", err)
	}
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	doc, ok := normalize(raw).(map[string]any)
	if !ok {
		t.Fatalf("%s: the document is not a mapping", openAPIFile)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("%s: openapi is %q, want 3.1.x", openAPIFile, v)
	}
	return doc
}

// normalize turns mappings with non-string keys (such as an unquoted
// status 200) into map[string]any.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = normalize(x)
		}
		return v
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(k)] = normalize(x)
		}
		return out
	case []any:
		for i, x := range v {
			v[i] = normalize(x)
		}
		return v
	}
	return v
}

func mapAt(t *testing.T, v any, where string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a mapping (%T)", where, v)
	}
	return m
}

// operation is one documented operation.
type operation struct {
	key  string // "METHOD /path", as Routes gives it
	path string
	item map[string]any // the path item
	op   map[string]any
}

func operations(t *testing.T, doc map[string]any) []operation {
	t.Helper()
	var out []operation
	for path, item := range mapAt(t, doc["paths"], "paths") {
		pi := mapAt(t, item, "paths."+path)
		for k, op := range pi {
			if !slices.Contains(httpMethods, k) {
				continue
			}
			out = append(out, operation{key: strings.ToUpper(k) + " " + path, path: path, item: pi,
				op: mapAt(t, op, "paths."+path+"."+k)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// resolve follows a local $ref ("#/components/…").
func resolve(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local (#/…)", ref)
	}
	var cur any = doc
	for _, part := range strings.Split(rest, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is inside a non-mapping", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, part)
		}
	}
	return cur, nil
}

// deref returns v, or what its $ref names.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		r, err := resolve(doc, ref)
		if err != nil {
			t.Fatal(err)
		}
		return deref(t, doc, r)
	}
	return m
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	routes := Routes()
	want := map[string]bool{}
	for _, r := range routes {
		if want[r] {
			t.Errorf("route %s is in the routes table twice", r)
		}
		want[r] = true
	}
	got := map[string]bool{}
	for _, op := range operations(t, doc) {
		got[op.key] = true
		if !want[op.key] {
			t.Errorf("%s is documented in %s but is not a route", op.key, openAPIFile)
		}
	}
	for _, r := range routes {
		if !got[r] {
			t.Errorf("route %s is not documented in %s", r, openAPIFile)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d documented operations, %d routes", len(got), len(want))
	}

	// Each path parameter of a path is declared, and no other.
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	for _, op := range operations(t, doc) {
		wantParams := map[string]bool{}
		for _, m := range wildcard.FindAllStringSubmatch(op.path, -1) {
			wantParams[m[1]] = true
		}
		gotParams := map[string]bool{}
		for _, list := range []any{op.item["parameters"], op.op["parameters"]} {
			ps, _ := list.([]any)
			for _, p := range ps {
				pm := deref(t, doc, p)
				if pm["in"] == "path" {
					name, _ := pm["name"].(string)
					gotParams[name] = true
					if pm["required"] != true {
						t.Errorf("%s: path parameter %s is not marked required", op.key, name)
					}
				}
			}
		}
		if !maps.Equal(wantParams, gotParams) {
			t.Errorf("%s: path parameters documented %v, the path has %v", op.key, slices.Sorted(maps.Keys(gotParams)), slices.Sorted(maps.Keys(wantParams)))
		}
	}
}

func TestOpenAPIRoles(t *testing.T) {
	doc := loadOpenAPI(t)
	access := routeAccess()
	if len(access) != len(Routes()) {
		t.Fatalf("routeAccess has %d routes, Routes %d", len(access), len(Routes()))
	}
	for _, op := range operations(t, doc) {
		role, _ := op.op["x-sitevault-role"].(string)
		want, isRoute := access[op.key]
		if !isRoute {
			continue // TestOpenAPIRoutes reports it
		}
		if role != want {
			t.Errorf("%s: x-sitevault-role is %q, the route needs %q", op.key, role, want)
		}
		desc, _ := op.op["description"].(string)
		connectorRoute := want == "pairing" || want == "signed"
		if connectorRoute {
			// The connector's routes carry no user: a pairing code or a
			// signature (docs/connector-protocol.md), checked by the handler.
			if !hasSecurityOverride(op.op) || !strings.Contains(desc, "Connector") {
				t.Errorf("%s: a connector route overrides security with [] and says \"Connector\" in its description", op.key)
			}
			if _, ok := mapAt(t, op.op["responses"], op.key+" responses")["401"]; !ok {
				t.Errorf("%s: a connector route documents its 401", op.key)
			}
			continue
		}
		if want != "public" && !strings.Contains(desc, "Role: "+want) {
			t.Errorf("%s: the description does not say \"Role: %s\"", op.key, want)
		}
		sec, hasSec := op.op["security"].([]any)
		responses := mapAt(t, op.op["responses"], op.key+" responses")
		switch want {
		case "public":
			if !hasSec || len(sec) != 0 {
				t.Errorf("%s is public but does not override security with []", op.key)
			}
			if !strings.Contains(desc, "Public") {
				t.Errorf("%s: the description does not say it is public", op.key)
			}
		default:
			if _, present := op.op["security"]; present && len(sec) == 0 {
				t.Errorf("%s needs %s but its security is empty (public)", op.key, want)
			}
			if _, ok := responses["401"]; !ok {
				t.Errorf("%s needs a user but documents no 401", op.key)
			}
		}
		if want == "owner" {
			if _, ok := responses["403"]; !ok {
				t.Errorf("%s is for owners but documents no 403", op.key)
			}
		}
	}
	// The global security names both ways to authenticate.
	schemes := mapAt(t, mapAt(t, doc["components"], "components")["securitySchemes"], "securitySchemes")
	bearer := mapAt(t, schemes["bearerToken"], "bearerToken")
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
		t.Errorf("bearerToken is %v, want http bearer", bearer)
	}
	cookie := mapAt(t, schemes["sessionCookie"], "sessionCookie")
	if cookie["type"] != "apiKey" || cookie["in"] != "cookie" || cookie["name"] != sessionCookie {
		t.Errorf("sessionCookie is %v, want the apiKey cookie %s", cookie, sessionCookie)
	}
	global, _ := doc["security"].([]any)
	var names []string
	for _, g := range global {
		for k := range mapAt(t, g, "security") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"bearerToken", "sessionCookie"}) {
		t.Errorf("global security is %v, want bearerToken and sessionCookie", names)
	}
}

// TestOpenAPIErrors checks that every error response is a problem
// document.
func TestOpenAPIErrors(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, op := range operations(t, doc) {
		for status, resp := range mapAt(t, op.op["responses"], op.key+" responses") {
			code, err := strconv.Atoi(status)
			if err != nil {
				t.Errorf("%s: response %q is not a status", op.key, status)
				continue
			}
			if code < 400 || (op.key == "GET /healthz" && code == 503) {
				continue
			}
			content := deref(t, doc, resp)["content"]
			pj, _ := content.(map[string]any)["application/problem+json"].(map[string]any)
			schema, _ := pj["schema"].(map[string]any)
			if schema["$ref"] != "#/components/schemas/Problem" {
				t.Errorf("%s %s: not an application/problem+json Problem", op.key, status)
			}
		}
	}
}

func TestOpenAPIRefs(t *testing.T) {
	doc := loadOpenAPI(t)
	used := map[string]bool{}
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				s, _ := ref.(string)
				if _, err := resolve(doc, s); err != nil {
					t.Errorf("%s: %v", where, err)
				}
				used[s] = true
			}
			for k, x := range v {
				walk(x, where+"."+k)
			}
		case []any:
			for i, x := range v {
				walk(x, where+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(doc, "")
	if len(used) == 0 {
		t.Fatal("no $ref found")
	}
	// Every component is used somewhere.
	components := mapAt(t, doc["components"], "components")
	for kind, section := range components {
		if kind == "securitySchemes" {
			continue
		}
		for name := range mapAt(t, section, "components."+kind) {
			if ref := "#/components/" + kind + "/" + name; !used[ref] {
				t.Errorf("%s is never referenced", ref)
			}
		}
	}
}

// goSchemas are the Go types that schemas mirror (x-go-type), and
// whether the API only writes them (then `required` lists exactly the
// fields without omitempty, since encoding/json always writes those).
var goSchemas = map[string]struct {
	typ      reflect.Type
	response bool
}{
	"service.problem":        {reflect.TypeFor[problem](), true},
	"service.SiteView":       {reflect.TypeFor[SiteView](), true},
	"service.sshView":        {reflect.TypeFor[sshView](), true},
	"service.dbView":         {reflect.TypeFor[dbView](), true},
	"service.SiteCheck":      {reflect.TypeFor[SiteCheck](), true},
	"service.PointView":      {reflect.TypeFor[PointView](), true},
	"service.BackupResult":   {reflect.TypeFor[BackupResult](), true},
	"service.DBHints":        {reflect.TypeFor[DBHints](), true},
	"archiver.Skip":          {reflect.TypeFor[archiver.Skip](), true},
	"service.RestoreResult":  {reflect.TypeFor[RestoreResult](), true},
	"service.DownloadResult": {reflect.TypeFor[DownloadResult](), true},
	"service.CheckResult":    {reflect.TypeFor[CheckResult](), true},
	"service.smtpView":       {reflect.TypeFor[smtpView](), true},
	"catalog.SiteStatus":     {reflect.TypeFor[catalog.SiteStatus](), true},
	"sitevault.Job":          {reflect.TypeFor[sitevault.Job](), true},
	"sitevault.Event":        {reflect.TypeFor[sitevault.Event](), true},
	"sitevault.Progress":     {reflect.TypeFor[sitevault.Progress](), true},
	"sitevault.User":         {reflect.TypeFor[sitevault.User](), true},
	"sitevault.Token":        {reflect.TypeFor[sitevault.Token](), true},
	"backup.Warning":         {reflect.TypeFor[backup.Warning](), true},
	"backup.SkippedTable":    {reflect.TypeFor[backup.SkippedTable](), true},

	"sitevault.Schedule":     {reflect.TypeFor[sitevault.Schedule](), false},
	"sitevault.Retention":    {reflect.TypeFor[sitevault.Retention](), false},
	"service.siteRequest":    {reflect.TypeFor[siteRequest](), false},
	"service.sshRequest":     {reflect.TypeFor[sshRequest](), false},
	"service.dbRequest":      {reflect.TypeFor[dbRequest](), false},
	"service.userRequest":    {reflect.TypeFor[userRequest](), false},
	"service.tokenRequest":   {reflect.TypeFor[tokenRequest](), false},
	"service.signInRequest":  {reflect.TypeFor[signInRequest](), false},
	"service.smtpRequest":    {reflect.TypeFor[smtpRequest](), false},
	"service.BackupParams":   {reflect.TypeFor[BackupParams](), false},
	"service.RestoreParams":  {reflect.TypeFor[RestoreParams](), false},
	"service.DownloadParams": {reflect.TypeFor[DownloadParams](), false},
	"service.CheckParams":    {reflect.TypeFor[CheckParams](), false},
}

// jsonFields returns the JSON names of t's fields and which of them are
// written always (no omitempty).
func jsonFields(t reflect.Type) (names, always map[string]bool) {
	names, always = map[string]bool{}, map[string]bool{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			n, a := jsonFields(f.Type)
			for k := range n {
				names[k], always[k] = true, a[k]
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
		always[name] = !slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return names, always
}

func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas := mapAt(t, mapAt(t, doc["components"], "components")["schemas"], "components.schemas")

	// The key schemas are documented and mirror their Go types.
	for name, goType := range map[string]string{
		"Problem": "service.problem", "SiteView": "service.SiteView", "Job": "sitevault.Job",
		"Progress": "sitevault.Progress", "PointView": "service.PointView",
	} {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		if s["x-go-type"] != goType {
			t.Errorf("schema %s: x-go-type is %v, want %s", name, s["x-go-type"], goType)
		}
	}

	seen := map[string]bool{}
	for name, v := range schemas {
		s := mapAt(t, v, "schema "+name)
		goType, ok := s["x-go-type"].(string)
		if !ok {
			continue
		}
		g, ok := goSchemas[goType]
		if !ok {
			t.Errorf("schema %s: x-go-type %s is not in this test's goSchemas; add it", name, goType)
			continue
		}
		seen[goType] = true
		names, always := jsonFields(g.typ)
		props := map[string]bool{}
		for p := range mapAt(t, s["properties"], "schema "+name+" properties") {
			props[p] = true
		}
		for p := range props {
			if !names[p] {
				t.Errorf("schema %s: property %q is not a JSON field of %s", name, p, goType)
			}
		}
		for n := range names {
			if !props[n] {
				t.Errorf("schema %s: JSON field %q of %s is not documented", name, n, goType)
			}
		}
		var required []string
		if r, ok := s["required"].([]any); ok {
			for _, x := range r {
				required = append(required, fmt.Sprint(x))
			}
		}
		for _, r := range required {
			if !props[r] {
				t.Errorf("schema %s: required %q is not a property", name, r)
			}
		}
		if g.response {
			var want []string
			for n, a := range always {
				if a {
					want = append(want, n)
				}
			}
			sort.Strings(want)
			sort.Strings(required)
			if !slices.Equal(required, want) {
				t.Errorf("schema %s: required is %v; %s always writes %v", name, required, goType, want)
			}
		}
	}
	for goType := range goSchemas {
		if !seen[goType] {
			t.Errorf("no schema has x-go-type %s", goType)
		}
	}
}

// TestOpenAPIFieldCheck makes sure that the field comparison would see a
// renamed field.
func TestOpenAPIFieldCheck(t *testing.T) {
	type before struct {
		A string `json:"a"`
		B int    `json:"b,omitempty"`
	}
	type after struct {
		A string `json:"a_renamed"`
		B int    `json:"b,omitempty"`
	}
	n1, a1 := jsonFields(reflect.TypeFor[before]())
	n2, _ := jsonFields(reflect.TypeFor[after]())
	if maps.Equal(n1, n2) {
		t.Fatal("a renamed field leaves the field names equal")
	}
	if !a1["a"] || a1["b"] {
		t.Fatalf("always = %v, want a only", a1)
	}
}

func hasSecurityOverride(op map[string]any) bool {
	sec, ok := op["security"].([]any)
	return ok && len(sec) == 0
}
