package provisioning

import (
	"errors"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
)

// TestBadInputOnEveryField: markup, SQL, 1 MB, NUL and control
// characters, invalid UTF-8 and look-alike letters, in every field: a
// validation error on that field, nothing stored.
func TestBadInputOnEveryField(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		fields := []struct {
			field string
			set   func(r *Request, v string)
		}{
			{"new_user.given_name", func(r *Request, v string) { r.NewUser.GivenName = v }},
			{"new_user.family_name", func(r *Request, v string) { r.NewUser.FamilyName = v }},
			{"new_user.email", func(r *Request, v string) { r.NewUser.Email = v }},
			{"institutions[0].id", func(r *Request, v string) { r.Institutions[0].ID = v }},
			{"occupation", func(r *Request, v string) { r.Occupation = v }},
			{"practice_number", func(r *Request, v string) { r.PracticeNumber = v }},
			{"lab_registrations[0].laboratory", func(r *Request, v string) { r.LabRegistrations[0].Laboratory = v }},
			{"lab_registrations[0].number", func(r *Request, v string) { r.LabRegistrations[0].Number = v }},
			{"reference_account.given_name", func(r *Request, v string) { r.ReferenceAccount.GivenName = v }},
			{"reference_account.id", func(r *Request, v string) { r.ReferenceAccount.ID = v }},
			{"billing.name", func(r *Request, v string) { r.Billing.Name = v }},
			{"billing.customer_number", func(r *Request, v string) { r.Billing.CustomerNumber = v }},
			{"special_rights[0]", func(r *Request, v string) { r.SpecialRights[0] = v }},
			{"comment", func(r *Request, v string) { r.Comment = v }},
		}
		values := map[string]string{
			"html":      `<script>alert("x")</script>`,
			"sql":       `Robert'); DROP TABLE users;--`,
			"1MB":       strings.Repeat("a", 1<<20),
			"NUL":       "ab\x00cd",
			"control":   "ab\x1b[31mcd",
			"C1":        "ab\u0085cd",
			"bad UTF-8": "ab\xff\xfecd",
			"homoglyph": "Pаul", // Cyrillic а
		}
		for _, fl := range fields {
			for name, v := range values {
				if fl.field == "comment" && (name == "sql" || name == "homoglyph") {
					continue // free text: stored as typed (parameters, escaped on pages), checked below
				}
				t.Run(fl.field+"/"+name, func(t *testing.T) {
					req := f.valid()
					fl.set(&req, v)
					before := f.count(t)
					_, err := f.svc.Submit(t.Context(), f.actor(), req)
					var fe *ForbiddenError
					if fl.field == "institutions[0].id" && errors.As(err, &fe) {
						t.Fatalf("a bad institution id is a field error, not %v", err)
					}
					p, ok := (&ValidationError{Problems: validationProblems(err)}).Field(fl.field)
					if !ok {
						// Some values are refused by another rule of the field
						// (e.g. the email's "not an address").
						if len(validationProblems(err)) == 0 {
							t.Fatalf("Submit: %v, want a problem on %s", err, fl.field)
						}
						found := false
						for _, q := range validationProblems(err) {
							found = found || strings.HasPrefix(q.Field, strings.Split(fl.field, "[")[0])
						}
						if !found {
							t.Fatalf("problems %+v, want one on %s", validationProblems(err), fl.field)
						}
					} else if len(p.Message) > 300 || strings.Contains(p.Message, "script") || strings.Contains(p.Message, "DROP") {
						t.Fatalf("the message repeats the input: %q", p.Message)
					}
					if after := f.count(t); after != before {
						t.Fatal("bad input was stored")
					}
				})
			}
		}
		// SQL in free text is only text.
		req := f.valid()
		req.NewUser.Email = "sql.comment@example.org"
		req.Comment = `Robert'); DROP TABLE account_requests;-- et Pаul`
		res, err := f.svc.Submit(t.Context(), f.actor(), req)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.GetAccountRequest(t.Context(), res.ID)
		if err != nil || r.Comment != req.Comment {
			t.Fatalf("comment %q %v", r.Comment, err)
		}
		// Bad ids and cursors for the queue.
		if _, err := f.svc.Get(t.Context(), admin, "x' OR '1'='1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get with SQL: %v", err)
		}
		if _, err := f.svc.Get(t.Context(), admin, strings.Repeat("a", 1<<20)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get with 1 MB: %v", err)
		}
		for _, c := range []string{"!!", "e30", strings.Repeat("A", 1<<20)} {
			if p := validationProblems(func() error { _, err := f.svc.List(t.Context(), admin, Filter{Cursor: c}); return err }()); len(p) != 1 || p[0].Field != "cursor" {
				t.Fatalf("cursor %.10q: %+v", c, p)
			}
		}
		if p := validationProblems(func() error { _, err := f.svc.List(t.Context(), admin, Filter{Status: "<b>"}); return err }()); len(p) != 1 {
			t.Fatalf("status: %+v", p)
		}
	})
}
