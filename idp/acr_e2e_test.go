package idp_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

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

		// A session with the app only does not.
		env.user("bruno", pw)
		b3 := newBrowser(t)
		r.signIn(b3, "bruno", pw)
		p, _, _ = r.authorize(b3, phr, oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.redirectParams(t); q.Get("code") != "" || q.Get("error") != "login_required" {
			t.Errorf("a session with the app answered acr phishing-resistant: %v", q)
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
