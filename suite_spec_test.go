package main

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The spec, parsed once for every response check.
var (
	specOnce sync.Once
	specDoc  map[string]any
)

func spec(t testing.TB) map[string]any {
	specOnce.Do(func() {
		if err := json.Unmarshal(openapiSpec, &specDoc); err != nil {
			panic("openapi.json: " + err.Error())
		}
	})
	return specDoc
}

// specOperation finds the operation documenting method and path, or nil:
// the path itself when documented (/users/me), as ServeMux prefers it to
// a template that also matches (/users/{id}), else a template.
func specOperation(t testing.TB, method, path string) (op map[string]any, template string) {
	paths := spec(t)["paths"].(map[string]any)
	if item, ok := paths[path].(map[string]any); ok {
		if op, ok := item[strings.ToLower(method)].(map[string]any); ok {
			return op, path
		}
	}
	for tmpl, item := range paths {
		if matchTemplate(tmpl, path) {
			if op, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any); ok {
				return op, tmpl
			}
		}
	}
	return nil, ""
}

func matchTemplate(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// resolve follows a local $ref.
func resolve(t testing.TB, node map[string]any) map[string]any {
	for {
		r, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		var cur any = spec(t)
		for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		node = cur.(map[string]any)
	}
}

// checkAgainstSpec fails the test when a response the suite received is not
// what openapi.json documents for that operation: an undocumented status, a
// content type not listed, or a body that breaks the schema. Requests to
// routes the spec does not have (the 404/405 tests) are left alone.
func checkAgainstSpec(t testing.TB, r req, out response) {
	t.Helper()
	path := r.path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if r.method == http.MethodHead || r.method == http.MethodOptions {
		return
	}
	op, tmpl := specOperation(t, r.method, path)
	if op == nil {
		return
	}
	where := fmt.Sprintf("%s %s → %d", r.method, tmpl, out.status)
	responses := op["responses"].(map[string]any)
	doc, ok := responses[fmt.Sprint(out.status)].(map[string]any)
	if !ok {
		t.Errorf("spec: %s is not a documented status", where)
		return
	}
	doc = resolve(t, doc)
	content := asMap(doc["content"])
	if len(out.body) == 0 {
		if len(content) > 0 && out.status != http.StatusNoContent {
			t.Errorf("spec: %s has an empty body, documented %v", where, keys(content))
		}
		return
	}
	mt, _, _ := mime.ParseMediaType(out.header.Get("Content-Type"))
	media, ok := content[mt].(map[string]any)
	if !ok {
		t.Errorf("spec: %s answered %s, documented %v", where, mt, keys(content))
		return
	}
	schema := asMap(media["schema"])
	if !strings.Contains(mt, "json") {
		return
	}
	var body any
	if err := json.Unmarshal(out.body, &body); err != nil {
		t.Errorf("spec: %s body is not JSON: %s", where, out.body)
		return
	}
	for _, problem := range validate(t, schema, body, "body") {
		t.Errorf("spec: %s: %s", where, problem)
	}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	uuidRe     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	dateTimeRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)
)

// specPattern compiles a schema's pattern once. The spec writes its
// patterns in the part of ECMA-262 that Go's regexp reads the same way.
var specPatterns sync.Map

func specPattern(p string) *regexp.Regexp {
	if re, ok := specPatterns.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(p)
	specPatterns.Store(p, re)
	return re
}

// validate checks v against the subset of JSON Schema the spec uses: type
// (one or a list), required, properties, additionalProperties: false, items,
// enum, minLength/maxLength, pattern, minimum/maximum, and the uuid and
// date-time formats (date-times must be UTC, as the contract says).
func validate(t testing.TB, schema map[string]any, v any, at string) []string {
	schema = resolve(t, schema)
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, at+": "+fmt.Sprintf(format, args...)) }

	if types := schemaTypes(schema); len(types) > 0 {
		if !typeMatches(types, v) {
			fail("%v is not of type %v", v, types)
			return problems
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if e == v {
				found = true
			}
		}
		if !found {
			fail("%v is not one of %v", v, enum)
		}
	}
	switch x := v.(type) {
	case string:
		n := len([]rune(x))
		if min, ok := schema["minLength"].(float64); ok && n < int(min) {
			fail("shorter than %v", min)
		}
		if max, ok := schema["maxLength"].(float64); ok && n > int(max) {
			fail("longer than %v", max)
		}
		if pattern, ok := schema["pattern"].(string); ok && !specPattern(pattern).MatchString(x) {
			fail("%q does not match %s", x, pattern)
		}
		switch schema["format"] {
		case "uuid":
			if !uuidRe.MatchString(x) {
				fail("%q is not a lower-case uuid", x)
			}
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil || !dateTimeRe.MatchString(x) {
				fail("%q is not an RFC 3339 UTC time", x)
			}
		}
	case float64:
		if min, ok := schema["minimum"].(float64); ok && x < min {
			fail("%v below %v", x, min)
		}
		if max, ok := schema["maximum"].(float64); ok && x > max {
			fail("%v above %v", x, max)
		}
	case map[string]any:
		props := asMap(schema["properties"])
		for _, r := range asSlice(schema["required"]) {
			if _, ok := x[r.(string)]; !ok {
				fail("missing required field %q", r)
			}
		}
		for k, fv := range x {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					fail("undocumented field %q", k)
				}
				continue
			}
			problems = append(problems, validate(t, ps, fv, at+"."+k)...)
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range x {
				problems = append(problems, validate(t, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return problems
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func schemaTypes(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func typeMatches(types []string, v any) bool {
	for _, t := range types {
		switch x := v.(type) {
		case nil:
			if t == "null" {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case float64:
			if t == "number" || (t == "integer" && x == float64(int64(x))) {
				return true
			}
		case map[string]any:
			if t == "object" {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		}
	}
	return false
}

// TestSpecRouteParity: every route is documented with the same method and
// path, and every documented operation is routed.
func TestSpecRouteParity(t *testing.T) {
	routed := map[string]bool{}
	for _, p := range routes(t) {
		routed[p] = true
	}
	documented := map[string]bool{}
	for path, item := range spec(t)["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("route %q is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %q, which is not routed", d)
		}
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes found", len(routed))
	}
}

// TestSpecIsWellFormed: the parts a docs UI and a client generator rely on.
func TestSpecIsWellFormed(t *testing.T) {
	s := spec(t)
	if s["openapi"] != "3.1.0" {
		t.Fatalf("openapi=%v", s["openapi"])
	}
	info := asMap(s["info"])
	if info["title"] == nil || info["description"] == nil || asMap(info["license"])["name"] == nil {
		t.Fatalf("info: %v", info)
	}
	seen := map[string]bool{}
	for path, item := range s["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			op := o.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" || seen[id] || op["summary"] == nil || len(asSlice(op["tags"])) != 1 {
				t.Errorf("%s %s: operationId %q (unique), summary and one tag needed", method, path, id)
			}
			seen[id] = true
			responses := asMap(op["responses"])
			if op["x-rate-limit-policy"] != nil {
				if r := resolve(t, asMap(responses["429"])); asMap(r["headers"])["Retry-After"] == nil {
					t.Errorf("%s %s: limited, but 429 lacks Retry-After", method, path)
				}
			}
			security, own := op["security"]
			if !own {
				security = s["security"] // the document's default: a bearer token or the session cookie
			}
			if len(asSlice(security)) > 0 {
				if r := resolve(t, asMap(responses["401"])); asMap(r["headers"])["WWW-Authenticate"] == nil {
					t.Errorf("%s %s: authenticated, but no 401 with WWW-Authenticate", method, path)
				}
				if responses["403"] == nil { // MFA_REQUIRED holds an account to enrolment on any of them
					t.Errorf("%s %s: authenticated, but no 403 (mfa_enrollment_required)", method, path)
				}
			}
			if strings.Contains(path, "{id}") && responses["404"] == nil {
				t.Errorf("%s %s: takes an id but documents no 404", method, path)
			}
			// A success answer is one shared response (components/responses),
			// headers and all; only the probes and the documents are their own.
			for status, r := range responses {
				ref, _ := asMap(r)["$ref"].(string)
				own := strings.HasPrefix(path, "/api/v1/health") || path == "/api/v1/openapi.json" || path == "/docs"
				if strings.HasPrefix(status, "2") && !own && !strings.HasPrefix(ref, "#/components/responses/") {
					t.Errorf("%s %s: its %s is written out; refer to a shared response in components/responses", method, path, status)
				}
				if shared := resolve(t, asMap(r)); asMap(shared["headers"])["X-Request-ID"] == nil {
					t.Errorf("%s %s: its %s lacks the X-Request-ID header", method, path, status)
				}
			}
		}
	}
	flows := asMap(asMap(asMap(asMap(s["components"])["securitySchemes"])["oauth2"])["flows"])
	if asMap(flows["password"])["tokenUrl"] != "/api/v1/auth/login" {
		t.Fatalf("oauth2 password flow: %v", flows)
	}
	// Every $ref points somewhere.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				defer func() {
					if recover() != nil {
						t.Errorf("dangling $ref %s", r)
					}
				}()
				resolve(t, x)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(s)
}

// The checker itself must catch what it is for.
func TestSpecCheckerCatchesDrift(t *testing.T) {
	user := resolve(t, map[string]any{"$ref": "#/components/schemas/User"})
	good := map[string]any{"id": "7b0c6a52-3e4f-4c1b-9a0e-2f5d8c9b1a23", "email": "a@b.co", "full_name": nil, "is_active": true, "is_superuser": false, "email_verified": false, "mfa_enabled": false, "pending_email": nil, "created_at": "2026-03-01T12:00:00Z", "version": float64(1)}
	if p := validate(t, user, good, "user"); len(p) != 0 {
		t.Fatalf("a good user fails: %v", p)
	}
	for name, mutate := range map[string]func(m map[string]any){
		"a password hash":   func(m map[string]any) { m["password_hash"] = "x" },
		"a missing email":   func(m map[string]any) { delete(m, "email") },
		"a wrong type":      func(m map[string]any) { m["is_active"] = "yes" },
		"a local time":      func(m map[string]any) { m["created_at"] = "2026-03-01T12:00:00+02:00" },
		"an upper-case id":  func(m map[string]any) { m["id"] = "7B0C6A52-3E4F-4C1B-9A0E-2F5D8C9B1A23" },
		"a long full name":  func(m map[string]any) { m["full_name"] = strings.Repeat("a", 256) },
		"a null is_active":  func(m map[string]any) { m["is_active"] = nil },
		"a number for name": func(m map[string]any) { m["full_name"] = 5.0 },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		mutate(m)
		if p := validate(t, user, m, "user"); len(p) == 0 {
			t.Errorf("the checker missed %s", name)
		}
	}
	// An undocumented status is caught.
	ft := &fakeT{}
	checkAgainstSpec(ft, req{method: "GET", path: "/api/v1/items"}, response{status: 418, header: http.Header{}})
	if !ft.failed {
		t.Fatal("an undocumented status passed")
	}
}

// fakeT records failures of a check run on purpose.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()                  {}
func (f *fakeT) Errorf(string, ...any)    { f.failed = true }
func (f *fakeT) Fatalf(string, ...any)    { f.failed = true }
func (f *fakeT) Logf(string, ...any)      {}
func (f *fakeT) Cleanup(func())           {}
func (f *fakeT) Name() string             { return "fake" }
func (f *fakeT) Setenv(string, string)    {}
func (f *fakeT) TempDir() string          { return "" }
func (f *fakeT) Context() context.Context { return context.Background() }

// Every example in the spec follows the schema it illustrates: a docs
// reader copies them.
func TestSpecExamplesFollowTheirSchemas(t *testing.T) {
	n := 0
	check := func(where string, schema map[string]any, example any) {
		n++
		for _, p := range validate(t, schema, example, where) {
			t.Errorf("example: %s", p)
		}
	}
	for path, item := range spec(t)["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			for status, r := range asMap(asMap(o)["responses"]) {
				for mt, m := range asMap(resolve(t, asMap(r))["content"]) {
					media, where := asMap(m), fmt.Sprintf("%s %s %s %s", method, path, status, mt)
					if ex, ok := media["example"]; ok {
						check(where, asMap(media["schema"]), ex)
					}
					for name, ex := range asMap(media["examples"]) {
						check(where+" "+name, asMap(media["schema"]), asMap(resolve(t, asMap(ex)))["value"])
					}
				}
			}
		}
	}
	for name, s := range asMap(asMap(spec(t)["components"])["schemas"]) {
		if ex, ok := asMap(s)["example"]; ok {
			check("schema "+name, asMap(s), ex)
		}
	}
	if n < 15 {
		t.Fatalf("only %d examples checked", n)
	}
}

// requestField is the schema of one field of an operation's request body.
func requestField(t *testing.T, method, path, mediaType, field string) map[string]any {
	t.Helper()
	op, _ := specOperation(t, method, path)
	body := resolve(t, asMap(asMap(asMap(asMap(op["requestBody"])["content"])[mediaType])["schema"]))
	f := asMap(asMap(body["properties"])[field])
	if f == nil {
		t.Fatalf("%s %s (%s) documents no field %s", method, path, mediaType, field)
	}
	return f
}

// The spec states every rule the service enforces on a value: for each
// field below, a value the schema accepts is never refused by the service
// on that field, and a value the schema refuses is refused by the service,
// 422 naming the field.
func TestSpecStatesWhatTheServiceRefuses(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("u@example.com")
	recovery := []string{"abcd-efgh-ijkl-mnop-qrst-uvwx", "ABCD EFGH IJKL MNOP QRST UVWX", "abcdefghijklmnopqrstuvwx", " 2345-6723-4567-2345-6723-4567 "}
	goodPasswords := []string{"pass word", "pässwörd", "密码密码密码密码", "pass\u00a0word", "a\u200bzero-width", "😀😀😀😀😀😀😀😀"}
	badPasswords := []string{"pass\x01word", "pass\x7fword", "pass\u0085word", "pass\x00word", "pass\tword", "short"}
	for _, c := range []struct {
		method, path, mediaType string
		token                   string
		field                   string
		body                    func(v string) any
		accepted, refused       []string
	}{
		{"POST", "/api/v1/auth/password-reset", contentJSON, "", "token",
			func(v string) any { return map[string]any{"token": v, "new_password": "a-fine-new-passphrase"} },
			[]string{"x", strings.Repeat("t", 128)}, []string{"", "a\x00b", strings.Repeat("t", 129)}},
		{"POST", "/api/v1/auth/verify-email", contentJSON, "", "token",
			func(v string) any { return map[string]any{"token": v} },
			[]string{"x"}, []string{"", "a\x00b"}},
		{"POST", "/api/v1/auth/login/mfa", contentJSON, "", "code",
			func(v string) any { return map[string]any{"mfa_token": "no-such-sign-in", "code": v} },
			append([]string{"123456", "000000"}, recovery...),
			[]string{"", "12345", "1234567", "12345a", "abcd-efgh-ijkl-mnop-qrst-uvw1", "abcd-efgh-ijkl-mnop-qrst-uvw", "١٢٣٤٥٦"}},
		{"POST", "/api/v1/auth/login/mfa", contentJSON, "", "mfa_token",
			func(v string) any { return map[string]any{"mfa_token": v, "code": "123456"} },
			[]string{"x"}, []string{"", "a\x00b"}},
		{"POST", "/api/v1/auth/login", contentJSON, "", "password",
			func(v string) any { return map[string]any{"email": "u@example.com", "password": v} },
			goodPasswords, badPasswords},
		{"POST", "/api/v1/auth/login", contentJSON, "", "email",
			func(v string) any { return map[string]any{"email": v, "password": "password-1234"} },
			[]string{"a@b.co", "first.last+tag@xn--bcher-kva.example"}, []string{"a@b", "ä@b.co", "a b@c.de", "a@b.", strings.Repeat("a", 250) + "@b.co"}},
		{"POST", "/api/v1/auth/login", "application/x-www-form-urlencoded", "", "password",
			func(v string) any { return url.Values{"username": {"u@example.com"}, "password": {v}}.Encode() },
			goodPasswords, badPasswords},
		{"POST", "/api/v1/auth/login", "application/x-www-form-urlencoded", "", "username",
			func(v string) any { return url.Values{"username": {v}, "password": {"password-1234"}}.Encode() },
			[]string{"a@b.co"}, []string{"a@b", strings.Repeat("a", 250) + "@b.co"}},
		{"POST", "/api/v1/items", contentJSON, token, "title",
			func(v string) any { return map[string]any{"title": v} },
			[]string{"a\x01b", "tab\there", strings.Repeat("é", 255)}, []string{"", "a\x00b", strings.Repeat("é", 256)}},
		{"POST", "/api/v1/items", contentJSON, token, "description",
			func(v string) any { return map[string]any{"title": "t", "description": v} },
			[]string{"line\nbreak", ""}, []string{"a\x00b"}},
		{"PATCH", "/api/v1/users/me", contentJSON, token, "full_name",
			func(v string) any { return map[string]any{"full_name": v} },
			[]string{"Ada\u00a0Lovelace", ""}, []string{"a\x00b"}},
	} {
		schema := requestField(t, c.method, c.path, c.mediaType, c.field)
		send := func(v string) response {
			return a.do(req{method: c.method, path: c.path, token: c.token, contentType: c.mediaType, body: c.body(v)})
		}
		for _, v := range c.accepted {
			if p := validate(t, schema, v, c.field); len(p) > 0 {
				t.Errorf("%s %s: the schema refuses %q, which the service takes: %v", c.method, c.path, v, p)
			}
			if r := send(v); r.status == 422 && slices.Contains(fieldErrors(r), c.field) {
				t.Errorf("%s %s: the service refuses %q on %s, which the schema accepts: %s", c.method, c.path, v, c.field, r.body)
			}
		}
		for _, v := range c.refused {
			if p := validate(t, schema, v, c.field); len(p) == 0 {
				t.Errorf("%s %s: the schema accepts %q, which the service refuses", c.method, c.path, v)
			}
			if r := send(v); r.status != 422 || !slices.Contains(fieldErrors(r), c.field) {
				t.Errorf("%s %s: %q on %s answered %d %s, want 422 naming it", c.method, c.path, v, c.field, r.status, r.body)
			}
		}
	}
}

// Safe writes are documented where they are: every POST that honours
// Idempotency-Key (a malformed key is its 400) documents the header, and
// every one documenting it honours it; every operation that takes If-Match
// documents 412 and 428, every one taking If-None-Match 304, and every
// tagged read and write (an ETag on its success) takes them.
func TestSpecDocumentsSafeWrites(t *testing.T) {
	a := newTestApp(t, nil)
	a.superuser("root@example.com")
	hasParam := func(op map[string]any, name string) bool {
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			if resolve(t, p.(map[string]any))["name"] == name {
				return true
			}
		}
		return false
	}
	keyed := 0
	for path, item := range spec(t)["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			op, ok := o.(map[string]any)
			if !ok {
				continue
			}
			responses := op["responses"].(map[string]any)
			if method == "post" && !strings.Contains(path, "{") {
				token := a.login("root@example.com", "password-123") // fresh: one of these is logout
				r := a.do(req{method: "POST", path: path, token: token, body: map[string]any{}, header: map[string]string{"Idempotency-Key": "bad key"}})
				honours := r.status == 400 && strings.Contains(r.str("detail"), "Idempotency-Key")
				if documents := hasParam(op, "Idempotency-Key"); honours != documents {
					t.Errorf("POST %s: honours Idempotency-Key %v, documents it %v", path, honours, documents)
				}
				if honours {
					keyed++
				}
			}
			for param, statuses := range map[string][]string{"If-Match": {"412", "428"}, "If-None-Match": {"304"}} {
				if !hasParam(op, param) {
					continue
				}
				for _, s := range statuses {
					if responses[s] == nil {
						t.Errorf("%s %s takes %s but does not document %s", method, path, param, s)
					}
				}
			}
			for status, resp := range responses {
				if status[0] != '2' {
					continue
				}
				headers, _ := resolve(t, resp.(map[string]any))["headers"].(map[string]any)
				if headers["ETag"] == nil || method == "post" {
					continue
				}
				want := map[string]string{"get": "If-None-Match", "patch": "If-Match", "delete": "If-Match"}[method]
				if !hasParam(op, want) {
					t.Errorf("%s %s answers an ETag but does not take %s", method, path, want)
				}
			}
		}
	}
	if keyed < 8 {
		t.Fatalf("%d POSTs honour Idempotency-Key, want the 8 that create or send", keyed)
	}
}
