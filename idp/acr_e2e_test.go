package idp_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/softkey"
)

const acrPhishingResistant = "urn:sesame:acr:phishing-resistant"

// passkeysOn makes the test server a WebAuthn relying party on
// localhost:port (browsers refuse IP addresses as RP IDs) and returns a
// software authenticator for it.
func passkeysOn(env *testEnv) *softkey.Key {
	iu, _ := url.Parse(env.issuer)
	origin := "http://localhost:" + iu.Port()
	env.srv.MFA.WebAuthn.Issuer = origin
	return softkey.New(origin, "localhost")
}

// acr_values=urn:sesame:acr:phishing-resistant through a relying party
// (code flow, PKCE, ID token verified): a user with only the app is asked
// for the app's code, then to add a passkey, and no code is issued before
// it is registered (not even by posting "continue" by hand); the ID token
// then says acr phishing-resistant. At the next sign-in the challenge asks
// for the passkey.
func TestACRPhishingResistantAsksForAPasskey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		key := passkeysOn(env)
		r := env.newRP(nil)
		u := env.user("amelie", pw)
		phr := oauth2.SetAuthURLParam("acr_values", acrPhishingResistant)

		b := newBrowser(t)
		p, _, verifier := r.authorize(b, phr)
		p = submitLogin(t, b, p, "amelie", pw)
		if !p.has("mfa") || !strings.Contains(p.body, "exige une clé d'accès") {
			t.Fatalf("challenge: want the app's code first, and why a key follows:\n%s", p.body)
		}
		action, vals := p.form(t, "mfa")
		vals.Set("code", env.nextCode("amelie"))
		p = b.post(action, vals)
		if redirectedToRP(p) || p.status >= 400 || !p.has("webauthn-register") {
			t.Fatalf("after the app's code: want the passkey registration, got %d %s (Location %q)\n%s", p.status, p.url, p.header.Get("Location"), p.body)
		}
		// "Continue" without a passkey: still no code.
		flowID := p.url.Query().Get("flow")
		csrf := csrfOf(t, p)
		if c := b.post(env.issuer+"/mfa/continue?flow="+flowID, url.Values{"csrf_token": {csrf}}); redirectedToRP(c) || !strings.Contains(c.header.Get("Location")+c.url.String(), "/mfa/webauthn") {
			t.Fatalf("continue without a passkey: %d %s (Location %q)", c.status, c.url, c.header.Get("Location"))
		}
		// The method choice offers the passkey only.
		if s := b.get(env.issuer + "/mfa/setup?flow=" + flowID); !strings.Contains(s.body, `data-method="webauthn"`) || strings.Contains(s.body, `data-method="sms"`) || strings.Contains(s.body, `data-method="totp"`) {
			t.Errorf("method choice under acr phishing-resistant:\n%s", s.body)
		}
		p = b.get(env.issuer + "/mfa/webauthn?flow=" + flowID)
		resp, err := key.Create(dataOptions(t, p, "webauthn-register"))
		if err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "webauthn-enroll")
		vals.Set("name", "Clé d'Amélie")
		vals.Set("credential", string(resp))
		p = b.post(action, vals)
		if !strings.Contains(p.body, "Clé d'Amélie") {
			t.Fatalf("after registration: %d\n%s", p.status, p.body)
		}
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		amr, acr := amrACR(t, r, p.redirectParams(t).Get("code"), verifier)
		if acr != acrPhishingResistant || !slices.Contains(amr, "hwk") || !slices.Contains(amr, "otp") {
			t.Errorf("after adding a passkey: amr %v acr %q", amr, acr)
		}
		if creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn); len(creds) != 1 {
			t.Fatalf("%d passkeys", len(creds))
		}

		// The next sign-in asks for the passkey.
		b2 := newBrowser(t)
		p, _, verifier = r.authorize(b2, phr)
		p = submitLogin(t, b2, p, "amelie", pw)
		if !p.has("webauthn-signin") {
			t.Fatalf("challenge with a passkey: no button#webauthn-signin:\n%s", p.body)
		}
		assertion, err := key.Get(dataOptions(t, p, "webauthn-signin"), []byte(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", string(assertion))
		p = b2.post(action, vals)
		if amr, acr := amrACR(t, r, p.redirectParams(t).Get("code"), verifier); acr != acrPhishingResistant || !slices.Contains(amr, "hwk") {
			t.Errorf("sign-in with the passkey: amr %v acr %q", amr, acr)
		}
		// That session answers the next request for the same class.
		p, _, _ = r.authorize(b2, phr, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("code") == "" {
			t.Errorf("a phishing-resistant session did not answer: %v", q)
		}

		// A session with the app only does not: a step-up (DESIGN §4),
		// the session kept, no password asked; the app's code, then a
		// passkey to register.
		env.user("bruno", pw)
		b3 := newBrowser(t)
		r.signIn(b3, "bruno", pw)
		p, _, _ = r.authorize(b3, phr, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("code") != "" || q.Get("error") != "interaction_required" {
			t.Errorf("prompt=none, a session with the app, acr phishing-resistant: %v", q)
		}
		p, _, _ = r.authorize(b3, phr)
		if p.has("login") || !p.has("mfa") {
			t.Fatalf("a session with the app, acr phishing-resistant: want a step-up challenge:\n%s", p.body)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", env.nextCode("bruno"))
		if p = b3.post(action, vals); redirectedToRP(p) || !p.has("webauthn-register") {
			t.Fatalf("step-up with the app: want the passkey registration, got %d %s", p.status, p.url)
		}

		// A new account: the method choice offers the passkey only.
		env.passwordOnlyUser("chloe", pw)
		b4 := newBrowser(t)
		p, _, _ = r.authorize(b4, phr)
		p = submitLogin(t, b4, p, "chloe", pw)
		if !strings.Contains(p.url.Path, "/mfa/setup") || !strings.Contains(p.body, `data-method="webauthn"`) || strings.Contains(p.body, `data-method="totp"`) {
			t.Errorf("first enrollment under acr phishing-resistant: %s\n%s", p.url, p.body)
		}
	})
}

// Without passkeys (an issuer that is an IP address), acr_values asking
// for a phishing-resistant factor are unmet: an OAuth error, no code.
func TestACRPhishingResistantWithoutPasskeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.user("denis", pw)
		b := newBrowser(t)
		p, _, _ := r.authorize(b, oauth2.SetAuthURLParam("acr_values", acrPhishingResistant))
		p = submitLogin(t, b, p, "denis", pw)
		if q := p.redirectParams(t); q.Get("error") != "unmet_authentication_requirements" || q.Get("code") != "" {
			t.Errorf("acr phishing-resistant without passkeys: %v", q)
		}
	})
}

// methodBlock returns the Security page's li.method that names name.
func methodBlock(t *testing.T, p page, name string) string {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?s)<li class="method">.*?</li>`).FindAllString(p.body, -1) {
		if strings.Contains(m, html.EscapeString(name)) {
			return m
		}
	}
	t.Fatalf("no method %q on the Security page:\n%s", name, p.body)
	return ""
}

// Passkeys on the Security page (issue 10): added from its "add a method",
// listed with their name, when added and last used, and removable under
// the rules of every method: never the last one, and only with a second
// factor verified within the factor window.
func TestSecurityPagePasskeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		key := passkeysOn(env)
		r := env.newRP(nil)
		u := env.user("gael", pw)
		b := newBrowser(t)
		r.signIn(b, "gael", pw)
		p := b.get(env.issuer + "/account")
		p = b.get(p.link(t, "/account/methods/add"))
		p = b.get(p.link(t, "/mfa/webauthn?"))
		resp, err := key.Create(dataOptions(t, p, "webauthn-register"))
		if err != nil {
			t.Fatal(err)
		}
		action, vals := p.form(t, "webauthn-enroll")
		vals.Set("name", "YubiKey bleue")
		vals.Set("credential", string(resp))
		p = b.post(action, vals)
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		if !strings.HasSuffix(p.url.Path, "/account") {
			t.Fatalf("after adding a passkey: %s\n%s", p.url, p.body)
		}
		m := methodBlock(t, p, "YubiKey bleue")
		if !strings.Contains(m, "Clé de sécurité") || !strings.Contains(m, "Ajoutée") || !strings.Contains(m, montrealDay(env.now())) {
			t.Errorf("passkey on the Security page:\n%s", m)
		}
		if !strings.Contains(m, "/account/methods/remove") {
			t.Errorf("a passkey next to the app cannot be removed:\n%s", m)
		}
		// The email names the key and its kind.
		if mails := env.outbox(); len(mails) != 1 || !strings.Contains(mails[0]["text"], "YubiKey bleue") || !strings.Contains(mails[0]["text"], "Clé de sécurité") {
			t.Errorf("confirmation email of the passkey: %v", mails)
		}

		// Signed in with the passkey in another browser: "last used".
		b2 := newBrowser(t)
		p, _, _ = r.authorize(b2)
		p = submitLogin(t, b2, p, "gael", pw)
		assertion, err := key.Get(dataOptions(t, p, "webauthn-signin"), []byte(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", string(assertion))
		b2.post(action, vals).redirectParams(t)
		p = b2.get(env.issuer + "/account")
		if m := methodBlock(t, p, "YubiKey bleue"); strings.Contains(m, "Jamais") {
			t.Errorf("passkey never used after a sign-in with it:\n%s", m)
		}
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn)
		if len(creds) != 1 || creds[0].LastUsedAt.IsZero() {
			t.Fatalf("passkey: %+v", creds)
		}
		app, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)

		// Past the factor window, a removal asks for a sign-in first.
		env.offset.Add(int64(11 * time.Minute))
		csrf := csrfOf(t, p)
		got := b2.post(env.issuer+"/account/methods/remove", url.Values{"csrf_token": {csrf}, "id": {creds[0].ID}})
		if !strings.Contains(got.url.Path, "/login") {
			t.Errorf("removal past the factor window: %d %s", got.status, got.url)
		}
		if left, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn); len(left) != 1 {
			t.Fatalf("passkey removed without a recent factor")
		}
		// Within it: the app goes, then the passkey is the last method.
		action, vals = got.form(t, "login")
		vals.Set("username", "gael")
		vals.Set("password", pw)
		p = b2.post(action, vals)
		assertion, err = key.Get(dataOptions(t, p, "webauthn-signin"), []byte(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", string(assertion))
		p = b2.post(action, vals)
		p = b2.post(env.issuer+"/account/methods/remove", url.Values{"csrf_token": {csrfOf(t, p)}, "id": {app[0].ID}})
		if p.status != http.StatusOK {
			t.Fatalf("remove the app: %d %s\n%s", p.status, p.url, p.body)
		}
		if m := methodBlock(t, p, "YubiKey bleue"); strings.Contains(m, "/account/methods/remove") {
			t.Errorf("the last method (a passkey) offers removal:\n%s", m)
		}
		if got := b2.post(env.issuer+"/account/methods/remove", url.Values{"csrf_token": {csrfOf(t, p)}, "id": {creds[0].ID}}); got.status != http.StatusBadRequest {
			t.Errorf("removing the last method, a passkey: %d", got.status)
		}
		if left, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn); len(left) != 1 {
			t.Errorf("the last passkey was removed")
		}
	})
}

// montrealDay is the day of t as the Security page shows it.
func montrealDay(t time.Time) string {
	loc, err := time.LoadLocation("America/Montreal")
	if err != nil {
		loc = time.FixedZone("EST", -5*3600)
	}
	return t.In(loc).Format("2006-01-02")
}
