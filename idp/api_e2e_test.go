package idp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/api"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/openapitest"
)

// The management API through real HTTP: tokens from the token endpoint
// (client credentials, or a real sign-in), every answer checked against
// the OpenAPI document it serves.

// apiClient calls the API with one bearer token.
type apiClient struct {
	t     testing.TB
	env   *testEnv
	token string
	lang  string
}

// apiResp is one answer.
type apiResp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

var (
	openAPIOnce sync.Once
	openAPIDoc  *openapitest.Doc
)

func apiDoc(t testing.TB) *openapitest.Doc {
	openAPIOnce.Do(func() {
		d, err := openapitest.Load(api.OpenAPI())
		if err != nil {
			t.Fatal(err)
		}
		openAPIDoc = d
	})
	return openAPIDoc
}

// adminClient registers a client allowed client_credentials with the
// scopes and returns the API client holding its token.
func (e *testEnv) apiClientFor(scopes ...string) *apiClient {
	e.t.Helper()
	r := e.newRP(func(c *store.Client) {
		c.GrantTypes = []string{"client_credentials"}
		c.Scopes = append([]string{"openid"}, scopes...)
	})
	return &apiClient{t: e.t, env: e, token: r.clientToken(scopes...)}
}

// clientToken gets a client-credentials access token.
func (r *rp) clientToken(scopes ...string) string {
	r.env.t.Helper()
	cc := clientcredentials.Config{ClientID: r.client.ID, ClientSecret: r.secret, TokenURL: r.env.issuer + "/oauth/token",
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.Background())
	if err != nil {
		r.env.t.Fatalf("client credentials: %v", err)
	}
	return tok.AccessToken
}

// userToken signs username in through r (password and, when enrolled,
// the second factor) asking for scopes, and returns the access token.
func (r *rp) userToken(username string, scopes ...string) string {
	r.env.t.Helper()
	r.conf.Scopes = append([]string{"openid"}, scopes...)
	code, verifier := r.signIn(newBrowser(r.env.t), username, pw)
	tok, _, err := r.exchange(code, verifier)
	if err != nil {
		r.env.t.Fatalf("exchange: %v", err)
	}
	return tok.AccessToken
}

// apiRP is a confidential client for people using the API (the support
// console, a requester's tool).
func (e *testEnv) apiRP(mod func(c *store.Client)) *rp {
	return e.newRP(func(c *store.Client) {
		c.Scopes = append(c.Scopes, oidcstore.ScopeAdmin, oidcstore.ScopeRequests)
		if mod != nil {
			mod(c)
		}
	})
}

func (a *apiClient) with(token string) *apiClient {
	c := *a
	c.token = token
	return &c
}

// do calls the API; body is JSON-encoded unless it is a string or []byte
// (sent as is).
func (a *apiClient) do(method, path string, body any) apiResp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.env.issuer+api.Prefix+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if a.lang != "" {
		req.Header.Set("Accept-Language", a.lang)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiResp{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	a.checkDocumented(method, path, out)
	return out
}

// checkDocumented: the answer is one the document lists for the call,
// with its content type and schema.
func (a *apiClient) checkDocumented(method, path string, r apiResp) {
	a.t.Helper()
	doc := apiDoc(a.t)
	p, _, _ := strings.Cut(path, "?")
	op, ok := doc.Find(method, p)
	if !ok {
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			a.t.Errorf("%s %s answered %d but is not in the OpenAPI document", method, p, r.status)
		}
		return
	}
	schema, ct, err := doc.Response(op, r.status)
	if err != nil {
		a.t.Errorf("%v (body %s)", err, r.raw)
		return
	}
	if got := r.header.Get("Content-Type"); ct != "" && !strings.HasPrefix(got, ct) {
		a.t.Errorf("%s %s %d: Content-Type %q, documented %q", method, p, r.status, got, ct)
	}
	if schema != nil {
		if err := doc.ValidateJSON(schema, r.raw); err != nil {
			a.t.Errorf("%s %s %d: the answer does not fit its schema: %v\n%s", method, p, r.status, err, r.raw)
		}
	}
}

func (r apiResp) want(t testing.TB, status int) apiResp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// fields returns the field errors of a problem, as "field:code".
func (r apiResp) fields() []string {
	var out []string
	errs, _ := r.body["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		out = append(out, fmt.Sprint(m["field"], ":", m["code"]))
	}
	return out
}

func (r apiResp) str(key string) string { s, _ := r.body[key].(string); return s }

// events returns the audit events of typ about userID ("" for any user).
func (e *testEnv) events(typ, userID string) []store.AuditEvent {
	ev, err := e.store.ListAuditEvents(context.Background(), store.AuditFilter{Type: typ, UserID: userID, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

func TestAPIAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		users := "/users"

		// No token, a bad token.
		r := admin.with("").do("GET", users, nil).want(t, http.StatusUnauthorized)
		if ch := r.header.Get("WWW-Authenticate"); ch != `Bearer realm="sesame"` {
			t.Errorf("no token: WWW-Authenticate %q", ch)
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || r.str("detail") == "" {
			t.Errorf("no token: %s %s", r.header.Get("Content-Type"), r.raw)
		}
		for _, bad := range []string{"not-a-token", admin.token + "x", strings.Repeat("a", 9000)} {
			r = admin.with(bad).do("GET", users, nil).want(t, http.StatusUnauthorized)
			if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("bad token: WWW-Authenticate %q", ch)
			}
		}
		// The client's token works; a client without sesame:admin gets
		// insufficient_scope, and the refusal is audited with its actor.
		admin.do("GET", users, nil).want(t, http.StatusOK)
		plain := env.apiClientFor(oidcstore.ScopeInstitutions)
		r = plain.do("GET", users, nil).want(t, http.StatusForbidden)
		if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="sesame:admin"`) {
			t.Errorf("wrong scope: WWW-Authenticate %q", ch)
		}
		// A JWT access token is read too.
		jwt := env.newRP(func(c *store.Client) {
			c.GrantTypes, c.Scopes, c.TokenFormat = []string{"client_credentials"}, []string{oidcstore.ScopeAdmin}, "jwt"
		})
		jwtToken := jwt.clientToken(oidcstore.ScopeAdmin)
		if strings.Count(jwtToken, ".") != 2 {
			t.Fatalf("not a JWT: %q", jwtToken)
		}
		admin.with(jwtToken).do("GET", users, nil).want(t, http.StatusOK)

		// People: a support user signed in with a second factor; a requester;
		// a user without the support right; a support user without a
		// second factor (grace period).
		people := env.apiRP(nil)
		support := env.user("agent", pw)
		setSupport(t, env, support.ID, true)
		supportToken := people.userToken("agent", oidcstore.ScopeAdmin)
		admin.with(supportToken).do("GET", users, nil).want(t, http.StatusOK)

		env.user("requester", pw)
		reqToken := people.userToken("requester", oidcstore.ScopeRequests)
		r = admin.with(reqToken).do("GET", users, nil).want(t, http.StatusForbidden)
		if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
			t.Errorf("requester on an admin call: WWW-Authenticate %q", ch)
		}
		notSupport := people.userToken("requester", oidcstore.ScopeAdmin)
		admin.with(notSupport).do("GET", users, nil).want(t, http.StatusForbidden)

		graced := env.passwordOnlyUser("newagent", pw)
		graced.MFAGraceUntil, graced.Support = env.now().Add(24*time.Hour), true
		if err := env.store.UpdateUser(context.Background(), graced); err != nil {
			t.Fatal(err)
		}
		noMFA := people.userToken("newagent", oidcstore.ScopeAdmin)
		r = admin.with(noMFA).do("GET", users, nil).want(t, http.StatusUnauthorized)
		if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_user_authentication"`) {
			t.Errorf("support user without a second factor: WWW-Authenticate %q", ch)
		}

		// A public client cannot even be registered with sesame:admin.
		r = admin.do("POST", "/clients", map[string]any{"id": "spa", "public": true, "redirect_uris": []string{"https://spa.example/cb"},
			"scopes": []string{"openid", "sesame:admin"}}).want(t, http.StatusUnprocessableEntity)
		if !slices.Contains(r.fields(), "scopes:invalid") {
			t.Errorf("public client with sesame:admin: %s", r.raw)
		}

		// Every refusal with a known actor is audited; the calls without a
		// valid token have no actor and are not.
		refused := env.events("api.refused", "")
		actors := map[string]bool{}
		for _, e := range refused {
			actors[e.ActorID] = true
			if e.Details["operation"] != "searchUsers" && e.Details["operation"] != "createClient" {
				t.Errorf("refusal of %q", e.Details["operation"])
			}
		}
		for _, who := range []string{plain.clientID(t, env), env.userID("requester"), graced.ID} {
			if !actors[who] {
				t.Errorf("refusal of %s not audited: %+v", who, refused)
			}
		}
		if actors[""] {
			t.Errorf("a refusal without actor was audited")
		}
		// The support user disabled: its token stops working.
		setStatus(t, env, support.ID, store.StatusDisabled)
		admin.with(supportToken).do("GET", users, nil).want(t, http.StatusUnauthorized)
	})
}

func setSupport(t testing.TB, env *testEnv, id string, on bool) {
	u, err := env.store.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	u.Support = on
	if err := env.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func setStatus(t testing.TB, env *testEnv, id string, s store.UserStatus) {
	u, err := env.store.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	u.Status = s
	if err := env.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) userID(username string) string {
	u, err := e.store.GetUserByUsername(context.Background(), username)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

// clientID is the client behind the token (from the audit of its calls).
func (a *apiClient) clientID(t testing.TB, env *testEnv) string {
	t.Helper()
	tok, err := env.srv.Storage.VerifyAccessToken(op.ContextWithIssuer(context.Background(), env.issuer), env.srv.Provider, a.token)
	if err != nil {
		t.Fatal(err)
	}
	return tok.ClientID
}

func TestAPIBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		u := env.user("sophie", pw)
		phone := "/users/" + u.ID + "/phone"

		// Over 64 KiB: 413.
		big := `{"phone": "` + strings.Repeat("5", api.MaxBody) + `"}`
		admin.do("PUT", phone, big).want(t, http.StatusRequestEntityTooLarge)
		// Not JSON, two values, an unknown field, a wrong type.
		admin.do("PUT", phone, `{"phone": "514`).want(t, http.StatusBadRequest)
		admin.do("PUT", phone, `{"phone": "514 872-1234"} {"phone": "1"}`).want(t, http.StatusBadRequest)
		r := admin.do("PUT", phone, `{"phone": "514 872-1234", "verified": true}`).want(t, http.StatusBadRequest)
		if !slices.Contains(r.fields(), "verified:unknown_field") {
			t.Errorf("unknown field: %s", r.raw)
		}
		r = admin.do("PUT", phone, `{"phone": 5148721234}`).want(t, http.StatusUnprocessableEntity)
		if !slices.Contains(r.fields(), "phone:type") {
			t.Errorf("wrong type: %s", r.raw)
		}
		req, _ := http.NewRequest("PUT", env.issuer+api.Prefix+phone, strings.NewReader("phone=5148721234"))
		req.Header.Set("Authorization", "Bearer "+admin.token)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("a form body: %v %v", resp.Status, err)
		}
		// Text that no store should hold: 422 naming the field, at any depth.
		for name, body := range map[string]string{
			"NUL":            `{"phone": "514\u0000872-1234"}`,
			"control":        `{"phone": "514\u001b872-1234"}`,
			"line break":     `{"phone": "514\n872-1234"}`,
			"bad UTF-8":      "{\"phone\": \"514 \xff\xfe 872\"}",
			"lone surrogate": `{"phone": "\ud800 514"}`,
			"long":           `{"phone": "` + strings.Repeat("é", 3000) + `"}`,
		} {
			r := admin.do("PUT", phone, body).want(t, http.StatusUnprocessableEntity)
			if !slices.Contains(r.fields(), "phone:invalid_text") {
				t.Errorf("%s: %s", name, r.raw)
			}
		}
		r = admin.do("POST", "/clients", `{"id": "x", "redirect_uris": ["https://a.example/cb", "https://b.example/\u0000"]}`).want(t, http.StatusUnprocessableEntity)
		if !slices.Contains(r.fields(), "redirect_uris[1]:invalid_text") {
			t.Errorf("nested bad text: %s", r.raw)
		}
		// A bad phone: the field error in the request's language.
		admin.lang = "en"
		r = admin.do("PUT", phone, map[string]string{"phone": "212 736-5000"}).want(t, http.StatusUnprocessableEntity)
		if errs, _ := r.body["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "United States") {
			t.Errorf("US number: %s", r.raw)
		}
		admin.lang = ""
		// Bad queries and paths.
		r = admin.do("GET", "/users?q="+url.QueryEscape("a\x00b"), nil).want(t, http.StatusUnprocessableEntity)
		if !slices.Contains(r.fields(), "q:invalid_text") {
			t.Errorf("bad query: %s", r.raw)
		}
		admin.do("GET", "/users?limit=0", nil).want(t, http.StatusUnprocessableEntity)
		admin.do("GET", "/users?limit=1&limit=2", nil).want(t, http.StatusUnprocessableEntity)
		admin.do("GET", "/users?cursor=garbage", nil).want(t, http.StatusUnprocessableEntity)
		admin.do("GET", "/audit-events?since=yesterday", nil).want(t, http.StatusUnprocessableEntity)
		admin.do("GET", "/users/not-a-uuid", nil).want(t, http.StatusNotFound)
		admin.do("GET", "/users/"+uuid.NewString(), nil).want(t, http.StatusNotFound)
		admin.do("GET", "/nothing-here", nil).want(t, http.StatusNotFound)
		r = admin.do("DELETE", "/users/"+u.ID, nil).want(t, http.StatusMethodNotAllowed)
		if r.header.Get("Allow") != "GET" {
			t.Errorf("Allow %q", r.header.Get("Allow"))
		}
		// Nothing reached the store.
		if got, _ := env.store.GetUser(context.Background(), u.ID); got.Phone != "" {
			t.Errorf("phone stored from bad input: %q", got.Phone)
		}
	})
}

func TestAPIUserSearchPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		var want []string
		for i := range 7 {
			name := fmt.Sprintf("nurse%02d", i)
			env.passwordOnlyUser(name, pw)
			want = append(want, name)
		}
		env.passwordOnlyUser("doctor", pw)
		var got []string
		path := "/users?q=nurse&limit=3"
		pages := 0
		for {
			r := admin.do("GET", path, nil).want(t, http.StatusOK)
			pages++
			items, _ := r.body["items"].([]any)
			for _, it := range items {
				got = append(got, it.(map[string]any)["username"].(string))
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				if r.body["next_cursor"] != nil {
					t.Errorf("last page: next_cursor %v, want null", r.body["next_cursor"])
				}
				break
			}
			path = "/users?q=nurse&limit=3&cursor=" + url.QueryEscape(next)
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("pages %d: %v, want %v", pages, got, want)
		}
	})
}

func TestAPIUserActions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		actor := admin.clientID(t, env)
		r := env.newRP(nil)
		u := env.user("sophie", pw)
		base := "/users/" + u.ID

		got := admin.do("GET", base, nil).want(t, http.StatusOK)
		methods, _ := got.body["methods"].([]any)
		if len(methods) != 2 || strings.Contains(string(got.raw), "argon2") {
			t.Fatalf("user: %s", got.raw)
		}
		env.outbox() // nothing yet, but start clean

		// Disable: the sign-in stops, the user is emailed, audited with the actor.
		res := admin.do("POST", base+"/disable", map[string]string{"reason": "départ"}).want(t, http.StatusOK)
		if res.str("status") != "disabled" {
			t.Fatalf("disable: %s", res.raw)
		}
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		if p = submitLogin(t, b, p, "sophie", pw); p.has("mfa") || p.status == http.StatusFound {
			t.Errorf("a disabled account reached the second factor: %d %s", p.status, p.url)
		}
		wantMail(t, env, u.Email, "désactivé")
		wantEvent(t, env, "user.disabled", u.ID, actor, "reason", "départ")
		// Idempotent: nothing more is sent.
		admin.do("POST", base+"/disable", nil).want(t, http.StatusOK)
		if m := env.outbox(); len(m) != 0 {
			t.Errorf("disabling again sent %d emails", len(m))
		}
		// Enable.
		if admin.do("POST", base+"/enable", "").want(t, http.StatusOK).str("status") != "active" {
			t.Error("enable")
		}
		wantMail(t, env, u.Email, "réactivé")
		wantEvent(t, env, "user.enabled", u.ID, actor, "", "")
		r.signIn(newBrowser(t), "sophie", pw)

		// Reset the second factors: the next sign-in enrolls again.
		res = admin.do("POST", base+"/reset-factors", nil).want(t, http.StatusOK)
		if ms, _ := res.body["methods"].([]any); len(ms) != 1 {
			t.Errorf("after reset: %s", res.raw)
		}
		wantMail(t, env, u.Email, "second facteur")
		wantEvent(t, env, "mfa.reset", u.ID, actor, "methods_removed", "1")
		b = newBrowser(t)
		p, _, _ = r.authorize(b)
		if p = submitLogin(t, b, p, "sophie", pw); !strings.Contains(p.url.Path, "/mfa/setup") {
			t.Errorf("after a reset the sign-in does not enroll: %d %s", p.status, p.url)
		}

		// The phone: only support sets it; the user is emailed.
		res = admin.do("PUT", base+"/phone", map[string]string{"phone": "514 872-1234"}).want(t, http.StatusOK)
		if res.str("phone") != "+15148721234" {
			t.Errorf("phone: %s", res.raw)
		}
		wantMail(t, env, u.Email, "•••-•••-1234")
		wantEvent(t, env, "user.phone_changed", u.ID, actor, "", "")

		// Unlock: after too many wrong passwords, the right one works again.
		for range 6 {
			b := newBrowser(t)
			p, _, _ := r.authorize(b)
			submitLogin(t, b, p, "sophie", "wrong password, surely")
		}
		b = newBrowser(t)
		p, _, _ = r.authorize(b)
		if p = submitLogin(t, b, p, "sophie", pw); !p.has("login") {
			t.Fatalf("not throttled after six wrong passwords: %d %s", p.status, p.url)
		}
		admin.do("POST", base+"/unlock", nil).want(t, http.StatusOK)
		wantEvent(t, env, "user.unlocked", u.ID, actor, "", "")
		b = newBrowser(t)
		p, _, _ = r.authorize(b)
		if p = submitLogin(t, b, p, "sophie", pw); p.has("login") {
			t.Errorf("still throttled after unlock: %d %s", p.status, p.url)
		}

		// Close: enable no longer brings it back.
		if admin.do("POST", base+"/close", nil).want(t, http.StatusOK).str("status") != "closed" {
			t.Error("close")
		}
		wantMail(t, env, u.Email, "fermé")
		res = admin.do("POST", base+"/enable", nil).want(t, http.StatusConflict)
		if !slices.Contains(res.fields(), "status:conflict") {
			t.Errorf("enable a closed account: %s", res.raw)
		}

		// Resend activation: only for an account waiting for it; the link works.
		pending := store.User{ID: uuid.NewString(), Username: "newnurse", Email: "new.nurse@clinic.example", Locale: "en-CA",
			Status: store.StatusPendingActivation, AccountType: "person", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		if err := env.store.CreateUser(context.Background(), pending); err != nil {
			t.Fatal(err)
		}
		admin.do("POST", base+"/resend-activation", nil).want(t, http.StatusConflict)
		admin.do("POST", "/users/"+pending.ID+"/resend-activation", nil).want(t, http.StatusOK)
		mails := env.outbox()
		if len(mails) != 1 || mails[0]["to"] != pending.Email {
			t.Fatalf("activation emails: %v", mails)
		}
		link := activationLinkRE.FindString(mails[0]["text"])
		if link == "" {
			t.Fatalf("no link in %q", mails[0]["text"])
		}
		if p := newBrowser(t).get(link); p.status != http.StatusOK || !strings.Contains(p.body, "password") {
			t.Errorf("activation link: %d %s", p.status, p.url)
		}
		wantEvent(t, env, "user.activation_resent", pending.ID, actor, "", "")

		// Every call was audited with its actor.
		calls := env.events("api.call", u.ID)
		ops := map[string]bool{}
		for _, e := range calls {
			if e.ActorID != actor || e.ClientID != actor || e.IP == "" || e.RequestID == "" {
				t.Errorf("api.call event: %+v", e)
			}
			ops[e.Details["operation"]] = true
		}
		for _, op := range []string{"getUser", "disableUser", "enableUser", "resetUserFactors", "setUserPhone", "unlockUser", "closeUser"} {
			if !ops[op] {
				t.Errorf("%s not audited: %v", op, ops)
			}
		}
	})
}

// Disabling an account ends everything it had: enabled again, its old
// refresh tokens get invalid_grant, its old access tokens are refused at
// userinfo (one bound to a session that had already expired too), and its
// browser signs in again with password and second factor. Closing does
// the same (seen after a reopening, here a direct status change).
func TestAPIDisableEndsSessionsAndTokens(t *testing.T) {
	forEachBackendWith(t, func(s *idp.Server) { s.SessionTTL = time.Hour }, func(t *testing.T, env *testEnv) {
		r := env.newRP(func(c *store.Client) { c.RefreshTokenTTL = 48 * time.Hour })
		u := env.user("sophie", pw)
		base := "/users/" + u.ID
		refresh := func(rt string) (*oauth2.Token, error) {
			return r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		}
		signedIn := func(b *browser) *oauth2.Token {
			t.Helper()
			code, v := r.signIn(b, "sophie", pw)
			tok, _, err := r.exchange(code, v)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		// tokens signs in twice: in a browser whose session then expires
		// (its refresh goes on, with access tokens bound to no open
		// session), and in the browser returned, whose session is open;
		// both are refreshed once.
		tokens := func() (*browser, map[string]*oauth2.Token) {
			t.Helper()
			expired := signedIn(newBrowser(t))
			env.offset.Add(int64(2 * time.Hour))
			b := newBrowser(t)
			open := signedIn(b)
			tks := map[string]*oauth2.Token{"open session": open}
			for name, tok := range map[string]*oauth2.Token{"open session, refreshed": open, "expired session, refreshed": expired} {
				next, err := refresh(tok.RefreshToken)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				tks[name] = next
			}
			for name, tok := range tks {
				if status, body := r.userinfo(tok.AccessToken, http.MethodGet); status != http.StatusOK {
					t.Fatalf("%s: userinfo %d %s", name, status, body)
				}
			}
			return b, tks
		}
		wantEnded := func(when string, b *browser, tks map[string]*oauth2.Token) {
			t.Helper()
			for name, tok := range tks {
				if status, _ := r.userinfo(tok.AccessToken, http.MethodGet); status == http.StatusOK {
					t.Errorf("%s: an access token of the %s still works at userinfo", when, name)
				}
				if name == "open session" {
					continue // rotated: its refresh token is spent
				}
				_, err := refresh(tok.RefreshToken)
				assertOAuthError(t, err, "invalid_grant")
			}
			p, _, _ := r.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
			if q := p.redirectParams(t); q.Get("error") != "login_required" {
				t.Errorf("%s: prompt=none in the old browser: %v, want login_required", when, q)
			}
			p, _, _ = r.authorize(b)
			if p.status != http.StatusOK || !p.has("login") {
				t.Errorf("%s: the old browser is not asked to sign in: %d %s %q", when, p.status, p.url, p.header.Get("Location"))
			}
			// Signing in again (password and second factor) gives new tokens.
			tok := signedIn(b)
			if status, _ := r.userinfo(tok.AccessToken, http.MethodGet); status != http.StatusOK {
				t.Errorf("%s: a new sign-in's access token: userinfo %d", when, status)
			}
			if _, err := refresh(tok.RefreshToken); err != nil {
				t.Errorf("%s: a new sign-in's refresh token: %v", when, err)
			}
		}

		b, tks := tokens()
		admin := env.apiClientFor(oidcstore.ScopeAdmin) // after the clock moved
		admin.do("POST", base+"/disable", nil).want(t, http.StatusOK)
		admin.do("POST", base+"/enable", nil).want(t, http.StatusOK)
		wantEnded("disabled, then enabled", b, tks)
		ev := env.events("user.disabled", u.ID)
		if len(ev) != 1 || ev[0].Details["refresh_tokens"] != "4" {
			t.Errorf("user.disabled events: %+v, want one revoking the 4 refresh tokens (2 spent, 2 live)", ev)
		}

		b, tks = tokens()
		admin = env.apiClientFor(oidcstore.ScopeAdmin)
		admin.do("POST", base+"/close", nil).want(t, http.StatusOK)
		setStatus(t, env, u.ID, store.StatusActive) // reopened
		wantEnded("closed, then reopened", b, tks)
	})
}

// After a resend, only the latest emailed activation link works: the
// first one gets the "expired or already used" page.
func TestResendActivationOnlyTheLatestLinkWorks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		pending := store.User{ID: uuid.NewString(), Username: "newnurse", Email: "new.nurse@clinic.example", Locale: "fr-CA",
			Status: store.StatusPendingActivation, AccountType: "person", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		if err := env.store.CreateUser(context.Background(), pending); err != nil {
			t.Fatal(err)
		}
		mails := startSMTPWorker(t, env)
		var links []string
		for i := 1; i <= 2; i++ {
			admin.do("POST", "/users/"+pending.ID+"/resend-activation", nil).want(t, http.StatusOK)
			got := mails.wait(t, i, 10*time.Second)
			_, text := parseEmail(t, got[i-1].data)
			link := activationLinkRE.FindString(text)
			if got[i-1].rcpt[0] != pending.Email || link == "" {
				t.Fatalf("activation email %d to %v:\n%s", i, got[i-1].rcpt, text)
			}
			links = append(links, link)
		}
		activate := func(link string) page {
			b := newBrowser(t)
			b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			action, vals := b.get(link).form(t, "activate")
			vals.Set("password", "une longue phrase de passe")
			vals.Set("password_confirm", "une longue phrase de passe")
			return b.post(action, vals)
		}
		if p := activate(links[0]); p.status != http.StatusBadRequest || !strings.Contains(p.body, "déjà été utilisé") {
			t.Fatalf("the first link after a resend: %d %s", p.status, errorText(p.body))
		}
		if p := activate(links[1]); p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "/account") {
			t.Fatalf("the latest link: %d %q", p.status, p.header.Get("Location"))
		}
		if got, _ := env.store.GetUser(context.Background(), pending.ID); got.Status != store.StatusActive {
			t.Fatalf("status %s", got.Status)
		}
	})
}

var activationLinkRE = regexp.MustCompile(`http://[^\s]+/activate\?token=[A-Za-z0-9_%-]+`)

// wantMail: exactly one email was queued, to addr, with text in it.
func wantMail(t *testing.T, env *testEnv, addr, text string) {
	t.Helper()
	mails := env.outbox()
	if len(mails) != 1 || mails[0]["to"] != addr || !strings.Contains(mails[0]["text"], text) {
		t.Errorf("emails %v, want one to %s saying %q", mails, addr, text)
	}
}

// wantEvent: an event typ about userID by actor, with detail k=v when k is set.
func wantEvent(t *testing.T, env *testEnv, typ, userID, actor, k, v string) {
	t.Helper()
	for _, e := range env.events(typ, userID) {
		if e.ActorID == actor && (k == "" || e.Details[k] == v) {
			return
		}
	}
	t.Errorf("no %s event for %s by %s (%s=%s): %+v", typ, userID, actor, k, v, env.events(typ, userID))
}

func TestAPIClients(t *testing.T) {
	// With the production cache on: a change made through the API is seen
	// at once by the token endpoint of this node (api.Handler.Forget).
	forEachBackendWith(t, func(s *idp.Server) { s.CacheTTL = time.Second }, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		res := admin.do("POST", "/clients", map[string]any{"id": "bot", "grant_types": []string{"client_credentials"},
			"scopes": []string{"sesame:admin"}}).want(t, http.StatusCreated)
		secret := res.str("client_secret")
		if secret == "" {
			t.Fatalf("no secret: %s", res.raw)
		}
		admin.do("POST", "/clients", map[string]any{"id": "bot", "grant_types": []string{"client_credentials"}}).want(t, http.StatusConflict)
		list := admin.do("GET", "/clients", nil).want(t, http.StatusOK)
		if strings.Contains(string(list.raw), secret) || !strings.Contains(string(list.raw), `"bot"`) {
			t.Errorf("list: %s", list.raw)
		}
		bot := &rp{env: env, client: store.Client{ID: "bot"}, secret: secret}
		admin.with(bot.clientToken(oidcstore.ScopeAdmin)).do("GET", "/users", nil).want(t, http.StatusOK)

		rot := admin.do("POST", "/clients/bot/rotate-secret", nil).want(t, http.StatusOK)
		if rot.str("client_secret") == "" || rot.str("client_secret") == secret {
			t.Fatalf("rotate: %s", rot.raw)
		}
		cc := clientcredentials.Config{ClientID: "bot", ClientSecret: secret, TokenURL: env.issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
		if _, err := cc.Token(context.Background()); err == nil {
			t.Error("the old secret still works")
		}
		bot.secret = rot.str("client_secret")
		bot.clientToken(oidcstore.ScopeAdmin)

		admin.do("DELETE", "/clients/bot", nil).want(t, http.StatusNoContent)
		admin.do("DELETE", "/clients/bot", nil).want(t, http.StatusNotFound)
		for _, typ := range []string{"client.created", "client.secret_rotated", "client.deleted"} {
			ev := env.events(typ, "")
			if len(ev) != 1 || ev[0].ActorID != admin.clientID(t, env) || ev[0].ClientID != "bot" {
				t.Errorf("%s: %+v", typ, ev)
			}
		}
	})
}

func TestAPIAuditEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		actor := admin.clientID(t, env)
		u := env.user("sophie", pw)
		start := env.now().UTC().Add(-time.Second)
		for range 5 {
			admin.do("GET", "/users/"+u.ID, nil).want(t, http.StatusOK)
		}
		// Newest first, in pages, without repeats, filtered.
		q := url.Values{"actor": {actor}, "type": {"api.call"}, "user": {u.ID}, "since": {start.Format(time.RFC3339Nano)}, "limit": {"2"}}
		var ids []string
		var last time.Time
		for path := "/audit-events?" + q.Encode(); path != ""; {
			r := admin.do("GET", path, nil).want(t, http.StatusOK)
			items, _ := r.body["items"].([]any)
			for _, it := range items {
				m := it.(map[string]any)
				at, _ := time.Parse(time.RFC3339Nano, m["at"].(string))
				if !last.IsZero() && at.After(last) {
					t.Errorf("not newest first: %v after %v", at, last)
				}
				last = at
				if m["actor_id"] != actor || m["type"] != "api.call" || m["user_id"] != u.ID {
					t.Errorf("filtered out: %v", m)
				}
				ids = append(ids, m["id"].(string))
			}
			path = ""
			if next, _ := r.body["next_cursor"].(string); next != "" {
				q.Set("cursor", next)
				path = "/audit-events?" + q.Encode()
			}
		}
		slices.Sort(ids)
		if len(ids) != 5 || len(slices.Compact(ids)) != 5 {
			t.Errorf("%d events (%v), want the 5 calls once each", len(ids), ids)
		}
		if r := admin.do("GET", "/audit-events?type=user.disabled", nil).want(t, http.StatusOK); len(r.body["items"].([]any)) != 0 {
			t.Errorf("type filter: %s", r.raw)
		}
	})
}

// The document is served to anyone, and describes every call.
func TestAPIOpenAPIServed(t *testing.T) {
	env := newTestEnv(t, backends[0])
	r := (&apiClient{t: t, env: env}).do("GET", "/openapi.json", nil).want(t, http.StatusOK)
	if r.str("openapi") != "3.1.0" {
		t.Fatalf("openapi.json: %.200s", r.raw)
	}
	if !bytes.Equal(r.raw, api.OpenAPI()) {
		t.Error("served document differs from the embedded one")
	}
}

func TestAPIInstitutionsAndMemberships(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		res := admin.do("POST", "/institutions", map[string]any{"name": "Clinique médicale Omnimed",
			"billing_accounts": []map[string]string{{"name": "Clinique médicale Omnimed", "customer_number": "123"}}}).want(t, http.StatusCreated)
		inst := res.str("id")
		admin.do("POST", "/institutions", map[string]any{"name": "<script>"}).want(t, http.StatusUnprocessableEntity)
		admin.do("POST", "/institutions", map[string]any{"name": "X", "billing": "X - 1"}).want(t, http.StatusBadRequest)
		if r := admin.do("GET", "/institutions/"+inst, nil).want(t, http.StatusOK); r.str("name") != "Clinique médicale Omnimed" {
			t.Errorf("institution: %s", r.raw)
		}
		admin.do("GET", "/institutions/"+uuid.NewString(), nil).want(t, http.StatusNotFound)
		if r := admin.do("GET", "/institutions", nil).want(t, http.StatusOK); len(r.body["items"].([]any)) != 1 {
			t.Errorf("institutions: %s", r.raw)
		}

		u := env.user("sophie", pw)
		env.user("marc", pw)
		m := admin.do("PUT", "/users/"+u.ID+"/memberships/"+inst, map[string]any{"primary": true, "mandates": []string{"infirmière"},
			"rights": []string{"account_requests"}}).want(t, http.StatusOK)
		if m.str("institution_name") != "Clinique médicale Omnimed" || m.body["primary"] != true {
			t.Errorf("membership: %s", m.raw)
		}
		admin.do("PUT", "/users/"+u.ID+"/memberships/"+inst, map[string]any{"rights": []string{"root"}}).want(t, http.StatusUnprocessableEntity)
		admin.do("PUT", "/users/"+u.ID+"/memberships/no-such-institution", map[string]any{}).want(t, http.StatusNotFound)
		got := admin.do("GET", "/users/"+u.ID, nil).want(t, http.StatusOK)
		ms, _ := got.body["memberships"].([]any)
		if len(ms) != 1 || !strings.Contains(fmt.Sprint(ms[0]), "infirmière") || !strings.Contains(fmt.Sprint(ms[0]), "account_requests") {
			t.Errorf("user memberships: %s", got.raw)
		}
		// Search by institution: its members only.
		r := admin.do("GET", "/users?institution="+inst, nil).want(t, http.StatusOK)
		if items := r.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["username"] != "sophie" {
			t.Errorf("users of the institution: %s", r.raw)
		}
		wantEvent(t, env, "membership.granted", u.ID, admin.clientID(t, env), "institution_id", inst)
		wantEvent(t, env, "institution.created", "", admin.clientID(t, env), "institution_id", inst)
	})
}

func TestAPIAccountRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		admin := env.apiClientFor(oidcstore.ScopeAdmin)
		ctx := context.Background()
		inst := admin.do("POST", "/institutions", map[string]any{"name": "Clinique A",
			"billing_accounts": []map[string]string{{"name": "Clinique médicale A", "customer_number": "123"}}}).want(t, http.StatusCreated).str("id")
		other := admin.do("POST", "/institutions", map[string]any{"name": "CLSC C",
			"billing_accounts": []map[string]string{{"name": "CLSC C", "customer_number": "789"}}}).want(t, http.StatusCreated).str("id")

		manager := env.user("gestion", pw)
		admin.do("PUT", "/users/"+manager.ID+"/memberships/"+inst, map[string]any{"primary": true, "rights": []string{"account_requests"}}).want(t, http.StatusOK)
		ref := env.user("ref.nurse", pw)
		admin.do("PUT", "/users/"+ref.ID+"/memberships/"+inst, map[string]any{"primary": true, "mandates": []string{"nursing", "vaccination"},
			"rights": []string{"patient_merge"}}).want(t, http.StatusOK)
		admin.do("PUT", "/users/"+ref.ID+"/memberships/"+other, map[string]any{"mandates": []string{"clsc-only"}}).want(t, http.StatusOK)
		env.user("stranger", pw)

		people := env.apiRP(nil)
		requester := admin.with(people.userToken("gestion", oidcstore.ScopeRequests))
		stranger := admin.with(people.userToken("stranger", oidcstore.ScopeRequests))

		body := map[string]any{
			"new_user":          map[string]any{"given_name": "Zoé", "family_name": "O'Neil-Côté", "email": "zoe.oneil@example.org"},
			"institutions":      []map[string]any{{"id": inst, "primary": true}},
			"occupation":        "nurse",
			"practice_number":   "2345678",
			"lab_registrations": []map[string]string{{"laboratory": "Laboratoire CHUM", "number": "L-4455"}},
			"reference_account": map[string]string{"given_name": ref.GivenName, "family_name": ref.FamilyName, "id": ref.ID},
			"billing":           map[string]string{"name": "Clinique médicale A", "customer_number": "123"},
			"special_rights":    []string{"patient_merge"},
			"comment":           "Commence lundi.\nFormation prévue mardi.",
		}
		// Someone without the right at the institution: 403 naming it.
		r := stranger.do("POST", "/account-requests", body).want(t, http.StatusForbidden)
		if !strings.Contains(r.str("detail"), "Clinique A") {
			t.Errorf("403 does not name the institution: %s", r.raw)
		}
		// Every field problem at once.
		bad := map[string]any{"new_user": map[string]any{"given_name": "", "email": "info@clinique.example"},
			"institutions": []map[string]any{{"id": inst, "primary": true}}, "occupation": "astronaut"}
		r = requester.do("POST", "/account-requests", bad).want(t, http.StatusUnprocessableEntity)
		if len(r.fields()) < 3 {
			t.Errorf("field problems: %s", r.raw)
		}
		r = requester.do("POST", "/account-requests", `{"new_user": {"given_name": "Zoé", "nickname": "Z"}}`).want(t, http.StatusBadRequest)
		if !slices.Contains(r.fields(), "nickname:unknown_field") {
			t.Errorf("unknown nested field: %s", r.raw)
		}
		r = requester.do("POST", "/account-requests", `{"comment": "a\u0000b"}`).want(t, http.StatusUnprocessableEntity)
		if !slices.Contains(r.fields(), "comment:invalid_text") {
			t.Errorf("NUL in the comment: %s", r.raw)
		}

		// The requester submits, sees it, and only theirs.
		r = requester.do("POST", "/account-requests", body).want(t, http.StatusCreated)
		id := r.str("id")
		if r.str("status") != "submitted" || r.str("kind") != "create" || r.header.Get("Location") != api.Prefix+"/account-requests/"+id {
			t.Fatalf("submit: %s (Location %q)", r.raw, r.header.Get("Location"))
		}
		r = requester.do("POST", "/account-requests", body).want(t, http.StatusConflict)
		if r.header.Get("Location") != api.Prefix+"/account-requests/"+id {
			t.Errorf("409 does not point to the pending request: %q %s", r.header.Get("Location"), r.raw)
		}
		if l := requester.do("GET", "/account-requests", nil).want(t, http.StatusOK); len(l.body["items"].([]any)) != 1 {
			t.Errorf("requester's list: %s", l.raw)
		}
		if l := stranger.do("GET", "/account-requests", nil).want(t, http.StatusOK); len(l.body["items"].([]any)) != 0 {
			t.Errorf("someone else sees the request: %s", l.raw)
		}
		stranger.do("GET", "/account-requests/"+id, nil).want(t, http.StatusNotFound)
		d := requester.do("GET", "/account-requests/"+id, nil).want(t, http.StatusOK)
		if vs, _ := d.body["verdicts"].([]any); len(vs) == 0 {
			t.Errorf("no verdicts: %s", d.raw)
		}
		admin.do("GET", "/account-requests?status=bogus", nil).want(t, http.StatusUnprocessableEntity)
		if l := admin.do("GET", "/account-requests?status=submitted&institution="+inst, nil).want(t, http.StatusOK); len(l.body["items"].([]any)) != 1 {
			t.Errorf("admin's list: %s", l.raw)
		}

		// Only an admin decides.
		requester.do("POST", "/account-requests/"+id+"/approve", map[string]any{}).want(t, http.StatusForbidden)
		dec := admin.do("POST", "/account-requests/"+id+"/approve", map[string]any{"grant_rights": []string{}}).want(t, http.StatusOK)
		userID := dec.str("user_id")
		if dec.str("status") != "approved" || userID == "" {
			t.Fatalf("approve: %s", dec.raw)
		}
		admin.do("POST", "/account-requests/"+id+"/approve", nil).want(t, http.StatusConflict)
		nu := admin.do("GET", "/users/"+userID, nil).want(t, http.StatusOK)
		ms, _ := nu.body["memberships"].([]any)
		if len(ms) != 1 || !strings.Contains(fmt.Sprint(ms[0]), "vaccination") || strings.Contains(fmt.Sprint(ms[0]), "patient_merge") ||
			strings.Contains(string(nu.raw), "clsc-only") || nu.str("status") != "pending_activation" {
			t.Errorf("the new user: %s", nu.raw)
		}
		if u, err := env.store.GetUser(ctx, userID); err != nil || u.Email != "zoe.oneil@example.org" {
			t.Errorf("new user: %+v %v", u, err)
		}

		// Reject another one, with its reason.
		body2 := body
		body2["new_user"] = map[string]any{"given_name": "Léa", "family_name": "Roy", "email": "lea.roy@example.org"}
		body2["practice_number"] = "3456789"
		id2 := requester.do("POST", "/account-requests", body2).want(t, http.StatusCreated).str("id")
		admin.do("POST", "/account-requests/"+id2+"/reject", map[string]any{}).want(t, http.StatusUnprocessableEntity)
		admin.do("POST", "/account-requests/"+id2+"/reject", map[string]any{"reason": "Adresse partagée."}).want(t, http.StatusOK)
		if g := requester.do("GET", "/account-requests/"+id2, nil).want(t, http.StatusOK); g.str("status") != "rejected" || g.str("decision_reason") != "Adresse partagée." {
			t.Errorf("rejected request: %s", g.raw)
		}
		admin.do("POST", "/account-requests/"+uuid.NewString()+"/approve", nil).want(t, http.StatusNotFound)

		// Audited with their actors.
		wantEvent(t, env, "api.call", "", manager.ID, "operation", "submitAccountRequest")
		wantEvent(t, env, "api.refused", "", manager.ID, "operation", "approveAccountRequest")
		wantEvent(t, env, "api.call", userID, admin.clientID(t, env), "operation", "approveAccountRequest")
	})
}
