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

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/softkey"
)

// dataOptions returns the data-options of the button with id.
func dataOptions(t *testing.T, p page, id string) []byte {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `"[^>]*data-options="([^"]*)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no button#%s with data-options:\n%s", id, p.body)
	}
	return []byte(html.UnescapeString(m[1]))
}

// idClaims returns the amr and acr of the ID token of code.
func amrACR(t *testing.T, r *rp, code, verifier string) ([]string, string) {
	t.Helper()
	_, idt, err := r.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
		ACR string   `json:"acr"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c.AMR, c.ACR
}

// A user with no factor registers a security key from the method choice
// (a software authenticator answers for the browser), then signs in with
// it in another browser: the ID tokens say hwk, mfa and
// urn:sesame:acr:phishing-resistant. A replayed assertion is refused with a 4xx, and so
// is a sign-count regression, which is audited.
func TestWebAuthnRegisterThenSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		// Browsers refuse IP addresses as RP IDs: the relying party is
		// localhost on the test server's port.
		iu, _ := url.Parse(env.issuer)
		origin := "http://localhost:" + iu.Port()
		env.srv.MFA.WebAuthn.Issuer = origin
		key := softkey.New(origin, "localhost")

		r := env.newRP(nil)
		u := env.passwordOnlyUser("noah", pw)
		b := newBrowser(t)
		p, _, verifier := r.authorize(b)
		p = submitLogin(t, b, p, "noah", pw)
		if !strings.Contains(p.body, `data-method="webauthn"`) {
			t.Fatalf("method choice lacks a[data-method=webauthn]:\n%s", p.body)
		}
		p = b.get(p.link(t, "/mfa/webauthn?"))
		if !p.has("webauthn-name") || !p.has("webauthn-register") || !strings.Contains(p.body, "webauthn.js") {
			t.Fatalf("registration page:\n%s", p.body)
		}
		resp, err := key.Create(dataOptions(t, p, "webauthn-register"))
		if err != nil {
			t.Fatal(err)
		}
		action, vals := p.form(t, "webauthn-enroll")
		vals.Set("name", "YubiKey de Noah")
		vals.Set("credential", "{}")
		if bad := b.post(action, vals); bad.status != http.StatusUnprocessableEntity || !bad.has("webauthn-register") {
			t.Fatalf("garbage credential: %d", bad.status)
		}
		vals.Set("credential", string(resp))
		p = b.post(action, vals)
		if len(recoveryCodes(p)) != 5 {
			t.Fatalf("after registration: %d\n%s", p.status, p.body)
		}
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn)
		if len(creds) != 1 || creds[0].Name != "YubiKey de Noah" || creds[0].VerifiedAt.IsZero() {
			t.Fatalf("webauthn credential: %+v", creds)
		}
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		if amr, acr := amrACR(t, r, p.redirectParams(t).Get("code"), verifier); !slices.Contains(amr, "hwk") || acr != "urn:sesame:acr:phishing-resistant" {
			t.Errorf("registration: amr %v acr %q", amr, acr)
		}

		b2 := newBrowser(t)
		p, _, verifier = r.authorize(b2)
		p = submitLogin(t, b2, p, "noah", pw)
		if !p.has("webauthn-signin") {
			t.Fatalf("challenge lacks button#webauthn-signin:\n%s", p.body)
		}
		assertion, err := key.Get(dataOptions(t, p, "webauthn-signin"), []byte(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "mfa")
		if vals.Get("method") != "webauthn" {
			t.Fatalf("form#mfa method %q", vals.Get("method"))
		}
		vals.Set("code", string(assertion))
		p = b2.post(action, vals)
		amr, acr := amrACR(t, r, p.redirectParams(t).Get("code"), verifier)
		if !slices.Contains(amr, "hwk") || !slices.Contains(amr, "pwd") || !slices.Contains(amr, "mfa") || acr != "urn:sesame:acr:phishing-resistant" {
			t.Errorf("sign-in: amr %v acr %q", amr, acr)
		}

		// The same assertion again, in a new sign-in: refused.
		b3 := newBrowser(t)
		p, _, _ = r.authorize(b3)
		p = submitLogin(t, b3, p, "noah", pw)
		action, vals = p.form(t, "mfa")
		vals.Set("code", string(assertion))
		if again := b3.post(action, vals); again.status != http.StatusUnprocessableEntity || !again.has("webauthn-signin") {
			t.Errorf("replayed assertion: %d", again.status)
		}

		// A cloned key: its counter goes back. Refused and audited.
		key.Counter = 0
		b4 := newBrowser(t)
		p, _, _ = r.authorize(b4)
		p = submitLogin(t, b4, p, "noah", pw)
		clone, err := key.Get(dataOptions(t, p, "webauthn-signin"), []byte(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", string(clone))
		if got := b4.post(action, vals); got.status != http.StatusUnprocessableEntity {
			t.Errorf("sign-count regression: %d", got.status)
		}
		if ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: "mfa.webauthn_sign_count"}); len(ev) != 1 || ev[0].Details["credential_id"] != creds[0].ID {
			t.Errorf("sign-count audit: %+v", ev)
		}
	})
}
