package idp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/api"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
)

// apiFuzzCalls are the calls FuzzAPI picks from (by index modulo);
// {{user}} is a user's id, {{inst}} an institution's.
var apiFuzzCalls = []struct{ method, path string }{
	{http.MethodPut, "/users/{{user}}/phone"},
	{http.MethodPost, "/users/{{user}}/disable"},
	{http.MethodPut, "/users/{{user}}/memberships/{{inst}}"},
	{http.MethodPost, "/clients"},
	{http.MethodPost, "/institutions"},
	{http.MethodPost, "/account-requests"},
	{http.MethodGet, "/users"},
	{http.MethodGet, "/audit-events"},
	{http.MethodGet, "/account-requests"},
	{http.MethodPost, "/account-requests/x/reject"},
}

// FuzzAPI sends arbitrary bodies (and, for GET, queries) with an admin's
// token to the management API. Whatever the input: no 5xx, no error
// logged, and every refusal is problem+json.
func FuzzAPI(f *testing.F) {
	envs := newFuzzEnvs(f)
	type prepared struct {
		fe         *fuzzEnv
		token      string
		user, inst string
	}
	var ps []prepared
	for _, fe := range envs {
		c := fe.env.newRP(func(c *store.Client) {
			c.GrantTypes, c.Scopes = []string{"client_credentials"}, []string{oidcstore.ScopeAdmin}
		})
		inst := store.Institution{ID: "fuzz-inst", Name: "Clinique Fuzz", BillingAccounts: []store.BillingAccount{{Name: "Clinique Fuzz", CustomerNumber: "1"}},
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		if err := fe.env.store.CreateInstitution(f.Context(), inst); err != nil {
			f.Fatal(err)
		}
		ps = append(ps, prepared{fe: fe, token: c.clientToken(oidcstore.ScopeAdmin), user: fe.user.ID, inst: inst.ID})
		fe.errs.take()
	}
	for i, body := range []string{
		`{"phone": "514 872-1234"}`, `{"reason": "a\u0000b"}`, `{"primary": true, "mandates": ["x"], "rights": ["account_requests"]}`,
		`{"id": "fz", "grant_types": ["client_credentials"], "scopes": ["sesame:admin"]}`, `{"name": "X", "billing_accounts": [{"name": "X", "customer_number": "1"}]}`,
		`{"new_user": {"given_name": "Zoé", "email": "zoe@example.org"}, "institutions": [{"id": "fuzz-inst", "primary": true}]}`,
		`q=a&limit=3&cursor=eyJhIjoiYiJ9`, `since=2026-01-01T00:00:00Z&actor=x&cursor=e30`, `status=submitted&overdue=maybe`, `{"reason": "non"}`,
		"{\"phone\": \"\xff\"}", `[1, 2]`, `{"phone": {"a": 1}}`, `{} {}`, `null`, `"x"`, strings.Repeat(`[`, 10000),
	} {
		f.Add(uint8(i), body)
	}
	f.Fuzz(func(t *testing.T, call uint8, body string) {
		c := apiFuzzCalls[int(call)%len(apiFuzzCalls)]
		for _, p := range ps {
			path := strings.NewReplacer("{{user}}", p.user, "{{inst}}", p.inst).Replace(c.path)
			header := http.Header{"Authorization": {"Bearer " + p.token}}
			target := api.Prefix + path
			if c.method == http.MethodGet {
				target += "?" + escapeRequestTarget(body)
			} else {
				header.Set("Content-Type", "application/json")
			}
			w, ok := p.fe.serve(c.method, target, header, body, "192.0.2.1:40000")
			if !ok {
				continue
			}
			what := p.fe.name + ": " + c.method + " " + path + " " + truncate(body, 300)
			p.fe.checkResponse(t, what, w)
			if ct := w.Header().Get("Content-Type"); w.Code >= 400 && ct != "application/problem+json" {
				t.Errorf("%s: %d with Content-Type %q", what, w.Code, ct)
			}
		}
	})
}
