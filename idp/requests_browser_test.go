package idp_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// browserSignIn fills form#login, then the TOTP challenge of a user whose
// authenticator the test holds, and waits for sel on the page it returns to.
func browserSignIn(t *testing.T, ctx context.Context, env *testEnv, username, sel string) {
	t.Helper()
	do(t, ctx, "password of "+username,
		chromedp.WaitVisible(chromedp.CSS("form#login")),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="username"]`), username),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), pw),
		clickLoad(`form#login button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("form#mfa")),
	)
	do(t, ctx, "TOTP code of "+username,
		chromedp.SendKeys(chromedp.CSS(`form#mfa input[name="code"]`), env.nextCode(username)),
		clickLoad(`form#mfa button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
}

// testRP is a relying party with its own HTTP server: /login starts a
// code + PKCE sign-in asking for scope sesame:institutions; /callback
// exchanges the code and shows the ID token's claims in #claims.
type testRP struct {
	*rp
	srv *httptest.Server
	mu  sync.Mutex
	ver map[string]string // state → PKCE verifier
}

func newTestRP(t *testing.T, env *testEnv) *testRP {
	t.Helper()
	trp := &testRP{ver: map[string]string{}}
	mux := http.NewServeMux()
	trp.srv = httptest.NewServer(mux)
	t.Cleanup(trp.srv.Close)
	redirect := trp.srv.URL + "/callback"
	trp.rp = env.newRP(func(c *store.Client) { c.RedirectURIs = []string{redirect} })
	trp.conf.RedirectURL = redirect
	trp.conf.Scopes = []string{gooidc.ScopeOpenID, "profile", "email", "sesame:institutions"}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, verifier := uuid.NewString(), oauth2.GenerateVerifier()
		trp.mu.Lock()
		trp.ver[state] = verifier
		trp.mu.Unlock()
		http.Redirect(w, r, trp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		trp.mu.Lock()
		verifier, ok := trp.ver[r.URL.Query().Get("state")]
		trp.mu.Unlock()
		if !ok {
			http.Error(w, "unknown state", http.StatusBadRequest)
			return
		}
		_, idt, err := trp.exchange(r.URL.Query().Get("code"), verifier)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var claims map[string]any
		if err := idt.Claims(&claims); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := json.Marshal(claims)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>RP</title><pre id="claims">` + html.EscapeString(string(b)) + `</pre>`))
	})
	return trp
}

var (
	welcomeLinkRE = regexp.MustCompile(`https?://\S+/activate\?token=\S+`)
	usernameRE    = regexp.MustCompile(`utilisateur[^:\n]*:[\s\x{00a0}\x{202f}]*([a-z0-9._-]+)`)
)

// TestBrowserAccountRequestEndToEnd is the acceptance of the request pages
// in a real browser: a requester asks for an account, support approves it
// in the console, the welcome email reaches a real SMTP server addressed
// to the new user only, the new user activates, sets a password, enrolls
// an authenticator app and signs in to a relying party whose ID token
// carries exactly the requested institutions with the reference account's
// mandates and only the granted right; the requester's confirmation
// arrives after the welcome.
func TestBrowserAccountRequestEndToEnd(t *testing.T) {
	env := newRequestEnv(t, backends[0])
	w := env.requestWorld()
	mails := startSMTPWorker(t, env)
	dir := artifactDir(t)
	const newEmail = "julie.roy@courriel.example"
	start := time.Now()

	// 1. The requester signs in (password and TOTP), fills the form and submits.
	req := newChromium(t)
	do(t, req, "open the request form", chromedp.Navigate(env.issuer+"/requests/new"))
	browserSignIn(t, req, env, "gestionnaire", "form#account-request")
	// (SetValue rather than typing: the browser has one minute in all on a
	// busy machine.)
	text := func(id, v string) chromedp.Action[chromedp.Void] {
		return chromedp.SetValue(chromedp.ID(id), v)
	}
	do(t, req, "fill the request",
		text("given_name", "Julie"),
		text("family_name", "Roy"),
		text("email", newEmail),
		chromedp.Click(chromedp.ID("previously-no")),
		chromedp.Click(chromedp.ID("institution-"+w.a.ID)),
		chromedp.Click(chromedp.ID("institution-"+w.b.ID)),
		chromedp.Click(chromedp.ID("primary-"+w.a.ID)),
		chromedp.SetValue(chromedp.ID("occupation"), "nurse"),
		text("practice_number", "1234567"),
		text("lab_laboratory-0", "Laboratoire Biron"),
		text("lab_number-0", "BIR-4455"),
		text("reference_given_name", w.reference.GivenName),
		text("reference_family_name", w.reference.FamilyName),
		text("reference_id", w.reference.ID),
		chromedp.Click(chromedp.ID("right-"+store.RightPatientMerge)),
		chromedp.Click(chromedp.ID("right-"+store.RightAccountRequests)),
		text("billing_name", w.a.Name),
		text("billing_customer_number", "123"),
		text("comment", "Arrive lundi; formation prévue."),
	)
	screenshot(t, req, dir, "request-form.png")
	do(t, req, "submit", clickLoad("#request-submit"), chromedp.WaitVisible(chromedp.ID("request-id")))
	requestID := strings.TrimSpace(get(t, req, "request id", chromedp.Text(chromedp.ID("request-id"))))
	due := strings.TrimSpace(get(t, req, "due date", chromedp.Text(chromedp.ID("request-due"))))
	if _, err := uuid.Parse(requestID); err != nil || due == "" {
		t.Fatalf("#request-id %q, #request-due %q", requestID, due)
	}
	screenshot(t, req, dir, "request-sent.png")

	t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), "// 2. Support approves")
	// 2. Support approves in the console, granting one of the two rights asked for.
	adm := newChromium(t)
	do(t, adm, "open the console", chromedp.Navigate(env.issuer+"/console/requests"))
	browserSignIn(t, adm, env, supportUsername, "table#request-queue")
	do(t, adm, "open the request",
		clickLoad(`tr[data-request-id="`+requestID+`"] a`),
		chromedp.WaitVisible(chromedp.CSS("form#approve")),
	)
	mandates := get(t, adm, "reference mandates", chromedp.Text(chromedp.ID("reference-mandates")))
	for _, m := range []string{"clinical_notes", "prescriptions", "vaccination"} {
		if !strings.Contains(mandates, m) {
			t.Errorf("the console does not show the reference's mandate %s: %q", m, mandates)
		}
	}
	screenshot(t, adm, dir, "console-request.png")
	do(t, adm, "approve with account_requests only",
		chromedp.Click(chromedp.ID("grant-"+store.RightAccountRequests)),
		clickLoad(`form#approve button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role="status"]`)),
	)
	r, err := env.store.GetAccountRequest(context.Background(), requestID)
	if err != nil || r.UserID == "" {
		t.Fatalf("after approval: %+v, %v", r, err)
	}

	t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), "// 3. The welcome email")
	// 3. The welcome email reaches the SMTP server, to the new user only;
	// 5. then the requester's confirmation.
	msgs := mails.wait(t, 2, 20*time.Second)
	welcome, done := msgs[0], msgs[1]
	if len(welcome.rcpt) != 1 || !strings.EqualFold(welcome.rcpt[0], newEmail) {
		t.Fatalf("first message to %q, want the welcome to %s only", welcome.rcpt, newEmail)
	}
	if len(done.rcpt) != 1 || !strings.EqualFold(done.rcpt[0], w.requester.Email) {
		t.Fatalf("second message to %q, want the confirmation to the requester %s", done.rcpt, w.requester.Email)
	}
	_, welcomeText := parseEmail(t, welcome.data)
	doneSubject, doneText := parseEmail(t, done.data)
	if !strings.Contains(doneSubject+doneText, "formation") {
		t.Errorf("the confirmation does not ask for training: %q\n%s", doneSubject, doneText)
	}
	link := welcomeLinkRE.FindString(welcomeText)
	um := usernameRE.FindStringSubmatch(welcomeText)
	if link == "" || um == nil {
		t.Fatalf("no activation link or username in the welcome:\n%s", welcomeText)
	}
	if strings.Contains(strings.ToLower(welcomeText), "mot de passe :") {
		t.Errorf("the welcome carries a password:\n%s", welcomeText)
	}
	username := um[1]

	t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), "// 4. The new user")
	// 4. The new user activates, sets a password, enrolls TOTP, and signs
	// in to the relying party.
	const newPassword = "tulipe fenêtre orange violon"
	nu := newChromium(t)
	do(t, nu, "open the activation link",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("form#activate")),
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("password_confirm"), newPassword),
		clickLoad(`form#activate button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("form#login")),
	)
	do(t, nu, "sign in for the first time",
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="username"]`), username),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), newPassword),
		clickLoad(`form#login button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`a[href*="/mfa/totp?"]`)),
	)
	do(t, nu, "set up the authenticator app",
		clickLoad(`a[href*="/mfa/totp?"]`),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	attr := get(t, nu, "read the key", chromedp.AttributeValue(chromedp.ID("totp-secret"), "data-secret"))
	secret, err := users.ParseSecret(attr.Value)
	if err != nil {
		t.Fatalf("#totp-secret: %v", err)
	}
	confirmTOTP(t, nu, env, totpSetup{secret: secret}, "Cellulaire de Julie")
	do(t, nu, "continue", clickLoad(`form[action*="/mfa/continue"] button[type="submit"]`))

	t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), "trp := newTestRP")
	trp := newTestRP(t, env)
	do(t, nu, "sign in to the relying party",
		chromedp.Navigate(trp.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("claims")),
	)
	screenshot(t, nu, dir, "rp-claims.png")
	raw := get(t, nu, "claims", chromedp.TextContent(chromedp.ID("claims")))
	var claims struct {
		Sub          string   `json:"sub"`
		AMR          []string `json:"amr"`
		Occupation   string   `json:"occupation"`
		Institutions []struct {
			ID       string   `json:"id"`
			Name     string   `json:"name"`
			Primary  bool     `json:"primary"`
			Mandates []string `json:"mandates"`
			Rights   []string `json:"rights"`
		} `json:"sesame_institutions"`
	}
	if err := json.Unmarshal([]byte(raw), &claims); err != nil {
		t.Fatalf("#claims: %v\n%s", err, raw)
	}
	if claims.Sub != r.UserID || !slices.Contains(claims.AMR, "otp") {
		t.Errorf("sub %q amr %q, want %q with otp", claims.Sub, claims.AMR, r.UserID)
	}
	want := map[string][]string{w.a.ID: {"clinical_notes", "prescriptions"}, w.b.ID: {"vaccination"}}
	if len(claims.Institutions) != len(want) {
		t.Fatalf("sesame_institutions %+v, want exactly A and B", claims.Institutions)
	}
	for _, in := range claims.Institutions {
		m, ok := want[in.ID]
		if !ok {
			t.Errorf("institution %s (%s) was not requested", in.ID, in.Name)
			continue
		}
		if !slices.Equal(in.Mandates, m) {
			t.Errorf("at %s: mandates %q, want the reference's %q", in.Name, in.Mandates, m)
		}
		if in.Primary != (in.ID == w.a.ID) {
			t.Errorf("at %s: primary %v", in.Name, in.Primary)
		}
		if !slices.Equal(in.Rights, []string{store.RightAccountRequests}) {
			t.Errorf("at %s: rights %q, want only the granted account_requests", in.Name, in.Rights)
		}
	}
	if claims.Occupation != "nurse" {
		t.Errorf("occupation %q", claims.Occupation)
	}

	// The request is completed (the welcome was sent).
	if r, err := env.store.GetAccountRequest(context.Background(), requestID); err != nil || r.Status != store.RequestCompleted {
		t.Errorf("request after the welcome: %s, %v; want completed", r.Status, err)
	}
}
