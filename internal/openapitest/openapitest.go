package openapitest

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Doc is a parsed OpenAPI document.
type Doc struct {
	raw map[string]any
}

// Op is one operation of the document.
type Op struct {
	Method, Path, ID string
	Spec             map[string]any
	// Item is the path item (its parameters apply to every method).
	Item map[string]any
}

// Params returns the parameters of op and of its path item.
func (d *Doc) Params(op Op) []map[string]any {
	var out []map[string]any
	for _, src := range []map[string]any{op.Item, op.Spec} {
		ps, _ := src["parameters"].([]any)
		for _, p := range ps {
			if pm, ok := d.deref(p).(map[string]any); ok {
				out = append(out, pm)
			}
		}
	}
	return out
}

// Load parses an OpenAPI document.
func Load(b []byte) (*Doc, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("openapi %q, want 3.1.x", v)
	}
	return &Doc{raw: raw}, nil
}

var methods = []string{"get", "put", "post", "delete", "patch"}

// Operations lists every operation, by path then method.
func (d *Doc) Operations() []Op {
	paths, _ := d.raw["paths"].(map[string]any)
	var out []Op
	for p, v := range paths {
		item, _ := v.(map[string]any)
		for _, m := range methods {
			if o, ok := item[m].(map[string]any); ok {
				id, _ := o["operationId"].(string)
				out = append(out, Op{Method: strings.ToUpper(m), Path: p, ID: id, Spec: o, Item: item})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Find returns the operation serving method on the concrete path (under
// the server URL), matching {name} segments.
func (d *Doc) Find(method, path string) (Op, bool) {
	segs := strings.Split(path, "/")
	for _, op := range d.Operations() {
		if op.Method != method {
			continue
		}
		ts := strings.Split(op.Path, "/")
		if len(ts) != len(segs) {
			continue
		}
		match := true
		for i := range ts {
			if !(strings.HasPrefix(ts[i], "{") && segs[i] != "") && ts[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return op, true
		}
	}
	return Op{}, false
}

// Response returns the schema of op's answer with status and content type
// ("" when the answer has no body), or an error when the document does not
// list that status.
func (d *Doc) Response(op Op, status int) (schema any, contentType string, err error) {
	rs, _ := op.Spec["responses"].(map[string]any)
	r, ok := rs[strconv.Itoa(status)]
	if !ok {
		return nil, "", fmt.Errorf("%s %s: status %d not documented", op.Method, op.Path, status)
	}
	rm := d.deref(r).(map[string]any)
	content, _ := rm["content"].(map[string]any)
	for ct, c := range content {
		cm, _ := c.(map[string]any)
		return cm["schema"], ct, nil
	}
	return nil, "", nil
}

// RequestSchema returns op's request body schema (nil when it has none).
func (d *Doc) RequestSchema(op Op) any {
	rb, ok := op.Spec["requestBody"].(map[string]any)
	if !ok {
		return nil
	}
	content, _ := rb["content"].(map[string]any)
	cm, _ := content["application/json"].(map[string]any)
	return cm["schema"]
}

// Schemas returns the component schemas by name.
func (d *Doc) Schemas() map[string]any {
	c, _ := d.raw["components"].(map[string]any)
	s, _ := c["schemas"].(map[string]any)
	return s
}

// Refs returns every "$ref" of the document.
func (d *Doc) Refs() []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					out = append(out, e.(string))
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(d.raw)
	return out
}

// Resolve follows a "#/…" reference.
func (d *Doc) Resolve(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = d.raw
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %s is not an object", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("reference %q: no %s", ref, part)
		}
	}
	return cur, nil
}

func (d *Doc) deref(v any) any {
	for {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		r, err := d.Resolve(ref)
		if err != nil {
			return map[string]any{"not": map[string]any{}} // nothing validates
		}
		v = r
	}
}

// Validate checks the JSON value v (as decoded by encoding/json into any)
// against schema; the error names the first path that does not fit.
func (d *Doc) Validate(schema, v any) error {
	return d.validate(schema, v, "$")
}

// ValidateJSON is Validate on JSON bytes.
func (d *Doc) ValidateJSON(schema any, b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return d.Validate(schema, v)
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func (d *Doc) validate(schema, v any, at string) error {
	s, ok := d.deref(schema).(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema is not an object", at)
	}
	if _, ok := s["not"]; ok {
		return fmt.Errorf("%s: unresolvable schema", at)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch x := t.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, e := range x {
				types = append(types, e.(string))
			}
		}
		got := typeOf(v)
		fits := false
		for _, want := range types {
			if want == got || want == "number" && got == "integer" {
				fits = true
			}
		}
		if !fits {
			return fmt.Errorf("%s: %s, want %s", at, got, strings.Join(types, " or "))
		}
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			if x == v {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", at, v, e)
		}
	}
	if alts, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, a := range alts {
			if d.validate(a, v, at) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: fits %d of oneOf, want 1", at, n)
		}
	}
	switch x := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			return fmt.Errorf("%s: %q does not match %s", at, x, p)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(x))) > n {
			return fmt.Errorf("%s: longer than %v", at, n)
		}
		if n, ok := s["minLength"].(float64); ok && float64(len([]rune(x))) < n {
			return fmt.Errorf("%s: shorter than %v", at, n)
		}
		switch s["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				return fmt.Errorf("%s: %q is not a date-time", at, x)
			}
		case "uuid":
			if _, err := uuid.Parse(x); err != nil {
				return fmt.Errorf("%s: %q is not a uuid", at, x)
			}
		}
	case float64:
		if n, ok := s["minimum"].(float64); ok && x < n {
			return fmt.Errorf("%s: %v below %v", at, x, n)
		}
		if n, ok := s["maximum"].(float64); ok && x > n {
			return fmt.Errorf("%s: %v above %v", at, x, n)
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range x {
				if err := d.validate(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
		if n, ok := s["minItems"].(float64); ok && float64(len(x)) < n {
			return fmt.Errorf("%s: fewer than %v items", at, n)
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					return fmt.Errorf("%s: %s is required", at, r)
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k]; ok {
				if err := d.validate(ps, x[k], at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: %s is not in the schema", at, k)
				}
			case map[string]any:
				if err := d.validate(ap, x[k], at+"."+k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
