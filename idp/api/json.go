package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sesame-idp/sesame/idp/input"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// lang is the language of the messages (problem details, field messages):
// Accept-Language, French by default.
func lang(r *http.Request) string {
	return templates.Negotiate("", "", r.Header.Get("Accept-Language"))
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// ---- errors ----

func notFound() *web.PublicError {
	return &web.PublicError{Status: http.StatusNotFound, Key: "api.not_found"}
}

// fieldErrors is a 422 with every field problem.
func fieldErrors(fields ...web.FieldError) *web.PublicError {
	return &web.PublicError{Status: http.StatusUnprocessableEntity, Key: "api.invalid", Fields: fields}
}

func fieldError(field, code, message string) web.FieldError {
	return web.FieldError{Field: field, Code: code, Message: message}
}

// public turns what a handler returned into the answer: a refusal with its
// challenge, a *web.PublicError as is, an *users.InputError as a 422 (409
// for a conflict) naming its field, store.ErrNotFound as a 404. Anything
// else is a 500 (web.Kit.Fail logs it).
func (h *Handler) public(w http.ResponseWriter, err error, c *call) error {
	var ref *refusal
	if errors.As(err, &ref) {
		if ref.challenge != "" {
			w.Header().Set("WWW-Authenticate", ref.challenge)
		}
		return &ref.PublicError
	}
	var pe *web.PublicError
	if errors.As(err, &pe) {
		return pe
	}
	var ie *users.InputError
	if errors.As(err, &ie) {
		msg := ie.Message
		if ie.Key != "" {
			msg = h.Web.Templates.T(c.lang, ie.Key)
		}
		fe := fieldError(ie.Field, "invalid", msg)
		if errors.Is(ie, store.ErrNotFound) {
			fe.Code = "not_found"
			return &web.PublicError{Status: http.StatusNotFound, Key: "api.not_found", Fields: []web.FieldError{fe}, Err: err}
		}
		if errors.Is(ie, store.ErrConflict) {
			fe.Code = "conflict"
			return &web.PublicError{Status: http.StatusConflict, Key: "api.conflict", Args: []any{ie.Message},
				Fields: []web.FieldError{fe}, Err: err}
		}
		return &web.PublicError{Status: http.StatusUnprocessableEntity, Key: "api.invalid",
			Fields: []web.FieldError{fe}, Err: err}
	}
	if errors.Is(err, store.ErrNotFound) {
		return &web.PublicError{Status: http.StatusNotFound, Key: "api.not_found", Err: err}
	}
	return err
}

// ---- request bodies ----

// multiline names the fields that may hold line breaks (a comment, a
// reason): every other string is one line.
var multiline = map[string]bool{"comment": true, "reason": true}

// decode reads a JSON body into v: at most MaxBody bytes (413), JSON
// (415 otherwise), one value and nothing after it, no field v does not
// have (400 naming it), values of the right types (422), and every string,
// at any depth, text a store can hold (valid UTF-8, no NUL or control
// character, at most input.MaxLen bytes: 422 naming the field). An empty
// body leaves v as it is when optional.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" || !optional {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &web.PublicError{Status: http.StatusUnsupportedMediaType, Key: "api.not_json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return &web.PublicError{Status: http.StatusRequestEntityTooLarge, Key: "api.too_large"}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return &web.PublicError{Status: http.StatusRequestTimeout, Key: "api.bad_json", Err: err}
		}
		return &web.PublicError{Status: http.StatusBadRequest, Key: "api.bad_json", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 && optional {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &web.PublicError{Status: http.StatusBadRequest, Key: "api.bad_json", Err: errors.New("data after the JSON value")}
	}
	if fields := scanText(body); len(fields) > 0 {
		return fieldErrors(fields...)
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return fieldErrors(fieldError(field, "type", "must be "+jsonType(typeErr.Type.Kind().String())))
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &web.PublicError{Status: http.StatusBadRequest, Key: "api.bad_json", Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if !utf8.ValidString(name) || input.Line(name, 128) != nil {
			name = "?"
		}
		return &web.PublicError{Status: http.StatusBadRequest, Key: "api.unknown_field", Args: []any{name},
			Fields: []web.FieldError{fieldError(name, "unknown_field", "this call has no such field")}}
	}
	return &web.PublicError{Status: http.StatusBadRequest, Key: "api.bad_json", Err: err}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float") {
		return "a number"
	}
	return "of another type"
}

// scanText walks a JSON document (already decoded once, so well formed)
// and reports every string, key or value, that is not text a store can
// hold. encoding/json replaces invalid UTF-8 and lone surrogates with
// U+FFFD without a word, so the raw bytes of each string are read too.
func scanText(body []byte) []web.FieldError {
	var out []web.FieldError
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		key    string
		index  int
		expect bool // object: the next token is a key
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.index)
			}
		}
		return b.String()
	}
	// after a value: move the enclosing container on.
	next := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.expect = true
		} else {
			f.index++
		}
	}
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		raw := body[prev:dec.InputOffset()]
		prev = dec.InputOffset()
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, expect: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				next()
			}
			continue
		case string:
			top := (*frame)(nil)
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			}
			if top != nil && top.object && top.expect {
				top.key, top.expect = v, false
				if !textOK(v, raw, false) {
					top.key = "?"
					out = append(out, fieldError(path(), "invalid_text", "a field name must be plain text"))
				}
				continue
			}
			field := path()
			last := field
			if i := strings.LastIndexAny(last, ".]"); i >= 0 {
				last = last[i+1:]
			}
			if !textOK(v, raw, multiline[last]) {
				out = append(out, fieldError(field, "invalid_text",
					fmt.Sprintf("must be text without control characters (NUL, line breaks…), valid UTF-8, at most %d bytes", input.MaxLen)))
			}
		}
		next()
	}
	return out
}

// textOK: the decoded string is text (input.Line, or input.Text for a
// multi-line field) and its raw JSON bytes carried no invalid UTF-8 or
// lone surrogate (both decode to U+FFFD).
func textOK(s string, raw []byte, multi bool) bool {
	check := input.Line
	if multi {
		check = input.Text
	}
	if check(s, input.MaxLen) != nil {
		return false
	}
	if !strings.ContainsRune(s, utf8.RuneError) {
		return true
	}
	if !utf8.Valid(raw) {
		return false
	}
	// A U+FFFD typed as such is text; one made from a bad \u escape is not.
	return strings.Count(s, "\uFFFD") == bytes.Count(raw, []byte("\uFFFD"))+
		bytes.Count(bytes.ToLower(raw), []byte(`\ufffd`))
}

// ---- queries ----

// checkQuery refuses a query that is not text (422 naming the parameter)
// or gives a parameter twice (a 400: which one would count?).
func checkQuery(r *http.Request) error {
	q := r.URL.Query()
	var fields []web.FieldError
	for k, vs := range q {
		if input.Line(k, 64) != nil {
			fields = append(fields, fieldError("?", "invalid_text", "a parameter name must be plain text"))
			continue
		}
		if len(vs) > 1 {
			fields = append(fields, fieldError(k, "repeated", "give this parameter once"))
			continue
		}
		if input.Line(vs[0], 1024) != nil {
			fields = append(fields, fieldError(k, "invalid_text", "must be text without control characters, valid UTF-8, at most 1024 bytes"))
		}
	}
	if len(fields) > 0 {
		return fieldErrors(fields...)
	}
	return nil
}

// limit reads the limit parameter: 1 to 200, 50 by default.
func limit(r *http.Request) (int, *web.FieldError) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 200 {
		fe := fieldError("limit", "range", "must be a whole number from 1 to 200")
		return 0, &fe
	}
	return n, nil
}

// ---- cursors ----

// A cursor is opaque to clients: base64url of a small JSON object naming
// where the previous page ended.

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads the cursor parameter into v; false with a field error
// when it is not one of ours.
func decodeCursor(r *http.Request, v any) (bool, *web.FieldError) {
	s := r.URL.Query().Get("cursor")
	if s == "" {
		return false, nil
	}
	bad := fieldError("cursor", "invalid", "not a cursor of this list: use next_cursor as given")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 512 {
		return false, &bad
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, &bad
	}
	return true, nil
}

// page is a list's answer.
type page[T any] struct {
	Items []T `json:"items"`
	// NextCursor continues the list; null on the last page.
	NextCursor *string `json:"next_cursor"`
}
