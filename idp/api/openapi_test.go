package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/internal/openapitest"
)

// The document describes exactly the routes served: every registered
// route is documented with its operationId, and every documented
// operation is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, err := openapitest.Load(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]openapitest.Op{}
	for _, op := range doc.Operations() {
		documented[op.Method+" "+op.Path] = op
	}
	served := map[string]bool{}
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		served[key] = true
		op, ok := documented[key]
		switch {
		case !ok:
			t.Errorf("%s is served but not in openapi.json", key)
		case op.ID != rt.op:
			t.Errorf("%s: operationId %q in openapi.json, %q in the route table", key, op.ID, rt.op)
		}
		if !ok {
			continue
		}
		// What every call can answer is documented.
		want := []string{"200"}
		if rt.access != public {
			want = append(want, "401", "403")
		}
		if doc.RequestSchema(op) != nil {
			want = append(want, "400", "413", "415", "422")
		}
		rs, _ := op.Spec["responses"].(map[string]any)
		for _, s := range want {
			if s == "200" && (rs["201"] != nil || rs["204"] != nil) {
				continue
			}
			if rs[s] == nil {
				t.Errorf("%s: answer %s not documented", key, s)
			}
		}
		for _, name := range pathParams(rt.path) {
			if !hasParam(op, doc, name) {
				t.Errorf("%s: path parameter %s not documented", key, name)
			}
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("%s is in openapi.json but not served", key)
		}
	}
}

func pathParams(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, "{") {
			out = append(out, strings.Trim(seg, "{}"))
		}
	}
	return out
}

func hasParam(op openapitest.Op, doc *openapitest.Doc, name string) bool {
	for _, p := range doc.Params(op) {
		if p["in"] == "path" && p["name"] == name {
			return true
		}
	}
	return false
}

// Every reference resolves, every schema's examples fit it, and every
// operation's schemas resolve.
func TestOpenAPISchemas(t *testing.T) {
	doc, err := openapitest.Load(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range doc.Refs() {
		if _, err := doc.Resolve(ref); err != nil {
			t.Error(err)
		}
	}
	examples := 0
	for name, s := range doc.Schemas() {
		ex, _ := s.(map[string]any)["examples"].([]any)
		for i, e := range ex {
			examples++
			if err := doc.Validate(s, e); err != nil {
				t.Errorf("schema %s, example %d: %v", name, i, err)
			}
		}
	}
	if examples < 10 {
		t.Errorf("%d examples; the main schemas should have one each", examples)
	}
	// The check itself refuses what does not fit.
	user := doc.Schemas()["User"]
	for _, bad := range []string{`{"id": "x"}`, `{"id": 1}`, `[]`} {
		if doc.ValidateJSON(user, []byte(bad)) == nil {
			t.Errorf("%s fits the User schema", bad)
		}
	}
	ex := doc.Schemas()["User"].(map[string]any)["examples"].([]any)[0].(map[string]any)
	withSecret := map[string]any{}
	for k, v := range ex {
		withSecret[k] = v
	}
	withSecret["password_hash"] = "$argon2id$…"
	if doc.Validate(user, withSecret) == nil {
		t.Error("a user with a field outside the schema fits it")
	}
	for _, op := range doc.Operations() {
		rs, _ := op.Spec["responses"].(map[string]any)
		for status := range rs {
			var code int
			fmt.Sscan(status, &code)
			if _, _, err := doc.Response(op, code); err != nil {
				t.Error(err)
			}
		}
	}
}

// The route table has one operationId each, and no two routes collide.
func TestRouteTable(t *testing.T) {
	var ids, keys []string
	for _, rt := range routes {
		if slices.Contains(ids, rt.op) {
			t.Errorf("operationId %s twice", rt.op)
		}
		if slices.Contains(keys, rt.method+" "+rt.path) {
			t.Errorf("route %s %s twice", rt.method, rt.path)
		}
		ids, keys = append(ids, rt.op), append(keys, rt.method+" "+rt.path)
	}
}
