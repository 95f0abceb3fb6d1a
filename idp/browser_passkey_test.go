package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// Passkeys in a real Chromium: the server's issuer is http://localhost:PORT
// (newLocalhostTestEnv), and the tab gets a virtual authenticator through
// DevTools (WebAuthn.addVirtualAuthenticator), which answers
// navigator.credentials.create and .get as a security key would.

// addVirtualAuthenticator gives the tab of ctx a CTAP2 USB security key
// with user verification, whose presence checks succeed at once.
func addVirtualAuthenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	_, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
			Transport:                   cdpwebauthn.AuthenticatorTransportUsb,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
}

// demoClaims reads the ID token claims the demo shows after a sign-in.
type demoIDClaims struct {
	Sub string   `json:"sub"`
	AMR []string `json:"amr"`
	ACR string   `json:"acr"`
}

func demoClaims(t *testing.T, ctx context.Context) demoIDClaims {
	t.Helper()
	do(t, ctx, "the demo shows the ID token", chromedp.WaitVisible(chromedp.ID("claims")))
	raw := get(t, ctx, "claims", chromedp.TextContent(chromedp.ID("claims")))
	var c demoIDClaims
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("#claims is not JSON: %v\n%s", err, raw)
	}
	return c
}

// demoPassword opens the demo, signs in with Sésame and gives the password.
func demoPassword(t *testing.T, ctx context.Context, env *testEnv, username string, next chromedp.Action[chromedp.Void]) {
	t.Helper()
	do(t, ctx, "open the demo",
		chromedp.Navigate(env.issuer+"/demo"),
		chromedp.WaitVisible(chromedp.ID("demo-login")),
		clickLoad("#demo-login"),
		chromedp.WaitVisible(chromedp.CSS("form#login")),
	)
	do(t, ctx, "password",
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="username"]`), username),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), pw),
		clickLoad(`form#login button[type="submit"]`),
		next,
	)
}

// demoSignOut follows the demo's "sign out" link (with the ID token as
// hint, so Sésame signs out at once) back to the demo.
func demoSignOut(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "sign out",
		clickLoad(`a[href*="/end_session"]`),
		chromedp.WaitVisible(chromedp.ID("demo-login")),
	)
}

// registerPasskey names the key on the registration page and presses
// button#webauthn-register; the page's script runs
// navigator.credentials.create and posts the answer. It waits for the
// success page.
func registerPasskey(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	do(t, ctx, "name the key and register it",
		chromedp.WaitVisible(chromedp.ID("webauthn-register")),
		chromedp.SendKeys(chromedp.ID("webauthn-name"), name),
		clickLoad("#webauthn-register"),
		chromedp.WaitVisible(chromedp.CSS(`form[action*="/mfa/continue"]`)),
	)
}

// (a) A new user registers a security key at enrollment with Chrome's
// virtual authenticator, then signs out and signs in with it: the ID
// tokens say hwk (or swk) and the phishing-resistant class.
func TestBrowserPasskeyRegisterThenSignIn(t *testing.T) {
	ctx := newChromium(t)
	env := newLocalhostTestEnv(t, backends[0], nil)
	registerDemoClient(t, env)
	u := env.passwordOnlyUser("ines", pw)
	addVirtualAuthenticator(t, ctx)

	demoPassword(t, ctx, env, "ines", chromedp.WaitVisible(chromedp.CSS(`a[data-method="webauthn"]`)))
	do(t, ctx, "choose a passkey", clickLoad(`a[data-method="webauthn"]`))
	registerPasskey(t, ctx, "Clé USB d'Inès")
	if n := get(t, ctx, "recovery codes", chromedp.Evaluate[int](`document.querySelectorAll('.recovery-code').length`)); n != 5 {
		t.Errorf("%d recovery codes after a first method, want 5", n)
	}
	do(t, ctx, "continue to the demo", clickLoad(`form[action*="/mfa/continue"] button[type="submit"]`))
	c := demoClaims(t, ctx)
	if c.Sub != u.ID || !(slices.Contains(c.AMR, "hwk") || slices.Contains(c.AMR, "swk")) || c.ACR != acrPhishingResistant {
		t.Errorf("after registration: %+v", c)
	}
	creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn)
	if len(creds) != 1 || creds[0].Name != "Clé USB d'Inès" {
		t.Fatalf("stored keys: %+v", creds)
	}

	demoSignOut(t, ctx)
	demoPassword(t, ctx, env, "ines", chromedp.WaitVisible(chromedp.ID("webauthn-signin")))
	do(t, ctx, "sign in with the key", clickLoad("#webauthn-signin"))
	c = demoClaims(t, ctx)
	if !(slices.Contains(c.AMR, "hwk") || slices.Contains(c.AMR, "swk")) || !slices.Contains(c.AMR, "pwd") || c.ACR != acrPhishingResistant {
		t.Errorf("sign-in with the key: %+v", c)
	}
	if creds, _ = env.store.ListCredentials(context.Background(), u.ID, store.CredWebAuthn); creds[0].LastUsedAt.IsZero() {
		t.Error("the key's last use is not recorded")
	}
}

// smsInbox is a fake SMS provider: a Twilio-compatible HTTP server that
// keeps the texts it is asked to send.
type smsInbox struct {
	texts chan url2text
}

type url2text struct{ to, body string }

var smsCodeInText = regexp.MustCompile(`#([0-9]{6})`)

// code waits for the next text to `to` and returns its code.
func (s *smsInbox) code(t *testing.T, to string) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-s.texts:
			if m.to != to {
				continue
			}
			c := smsCodeInText.FindStringSubmatch(m.body)
			if c == nil {
				t.Fatalf("text without a code: %q", m.body)
			}
			return c[1]
		case <-deadline:
			t.Fatalf("no text to %s", to)
			return ""
		}
	}
}

// startSMSProvider starts the fake provider and an outbox worker that
// sends env's texts to it with the Twilio sender.
func startSMSProvider(t *testing.T, env *testEnv) *smsInbox {
	t.Helper()
	inbox := &smsInbox{texts: make(chan url2text, 16)}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Accounts/AC-test/Messages.json") || !ok || user != "AC-test" || pass != "token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		inbox.texts <- url2text{to: r.PostFormValue("To"), body: r.PostFormValue("Body")}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sid": "SM1", "status": "queued"}`))
	}))
	t.Cleanup(gw.Close)
	w := &notify.Worker{
		Store: env.store,
		Senders: map[string]notify.Sender{
			notify.KindSMS: &notify.TwilioSender{URL: gw.URL, AccountSID: "AC-test", AuthToken: "token", From: "+15145550000", Client: gw.Client()},
		},
		Now:       env.now,
		PollEvery: 50 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return inbox
}

// (b) The help article, in a browser: a user with the app clicks "Add a
// second method" on the challenge, enters a validation code of the app,
// follows the SMS steps (the code comes from the fake provider), signs
// out, signs in choosing SMS; adds a security key from the Security page;
// signs out and signs in with the key. The ID tokens' amr say otp and sms,
// then sms, then hwk/swk.
func TestBrowserAddSMSThenPasskey(t *testing.T) {
	ctx := newChromiumFor(t, 3*browserTimeout) // four sign-ins and two enrollments
	env := newLocalhostTestEnv(t, backends[0], nil)
	registerDemoClient(t, env)
	u := env.user("paul", pw)
	inbox := startSMSProvider(t, env)
	addVirtualAuthenticator(t, ctx)
	const phone = "+15145550123"

	// "Before entering this code, click on Add a second method."
	demoPassword(t, ctx, env, "paul", chromedp.WaitVisible(chromedp.ID("add-method")))
	do(t, ctx, "add a second method",
		clickLoad("#add-method"),
		chromedp.WaitVisible(chromedp.ID("add-method-first")),
	)
	// "Enter a validation code for the authentication application."
	do(t, ctx, "the app's code",
		chromedp.SendKeys(chromedp.CSS(`form#mfa input[name="code"]`), env.nextCode("paul")),
		clickLoad(`form#mfa button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`a[data-method="sms"]`)),
	)
	// "Follow the steps to configure SMS authentication."
	do(t, ctx, "set up SMS",
		clickLoad(`a[data-method="sms"]`),
		chromedp.WaitVisible(chromedp.CSS("form#sms-enroll")),
		chromedp.SendKeys(chromedp.CSS(`form#sms-enroll input[name="phone"]`), "514 555-0123"),
		chromedp.SendKeys(chromedp.CSS(`form#sms-enroll input[name="device_name"]`), "Cellulaire de Paul"),
		clickLoad(`form#sms-enroll button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("form#sms-confirm")),
	)
	do(t, ctx, "the code received by SMS",
		chromedp.SendKeys(chromedp.CSS(`form#sms-confirm input[name="code"]`), inbox.code(t, phone)),
		clickLoad(`form#sms-confirm button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`form[action*="/mfa/continue"]`)),
	)
	if get(t, ctx, "a#add-method after the second method", chromedp.Evaluate[bool](`!!document.getElementById("add-method")`)) {
		t.Error("a#add-method still offered with two methods")
	}
	do(t, ctx, "continue to the demo", clickLoad(`form[action*="/mfa/continue"] button[type="submit"]`))
	if c := demoClaims(t, ctx); !slices.Contains(c.AMR, "otp") || !slices.Contains(c.AMR, "sms") {
		t.Errorf("after adding SMS: amr %v, want otp and sms", c.AMR)
	}
	creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredSMS)
	if len(creds) != 1 || users.CredentialPhone(creds[0]) != phone {
		t.Fatalf("sms credential: %+v", creds)
	}

	// Signed out, then in again choosing SMS.
	demoSignOut(t, ctx)
	demoPassword(t, ctx, env, "paul", chromedp.WaitVisible(chromedp.CSS(`a[data-method="sms"]`)))
	if get(t, ctx, "a#add-method with two methods", chromedp.Evaluate[bool](`!!document.getElementById("add-method")`)) {
		t.Error("the challenge still offers a second method")
	}
	do(t, ctx, "choose SMS",
		clickLoad(`a[data-method="sms"]`),
		chromedp.WaitVisible(chromedp.CSS("form#sms-send")),
		clickLoad(`form#sms-send button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`form#mfa input[name="code"]`)),
	)
	do(t, ctx, "the code received by SMS",
		chromedp.SendKeys(chromedp.CSS(`form#mfa input[name="code"]`), inbox.code(t, phone)),
		clickLoad(`form#mfa button[type="submit"]`),
	)
	if c := demoClaims(t, ctx); !slices.Contains(c.AMR, "sms") || slices.Contains(c.AMR, "otp") {
		t.Errorf("sign-in with SMS: amr %v, want sms", c.AMR)
	}

	// A security key from the Security page.
	do(t, ctx, "the Security page",
		chromedp.Navigate(env.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("add-method")),
		clickLoad("#add-method"),
		chromedp.WaitVisible(chromedp.CSS(`a[data-method="webauthn"]`)),
		clickLoad(`a[data-method="webauthn"]`),
	)
	registerPasskey(t, ctx, "YubiKey de Paul")
	do(t, ctx, "back to the Security page",
		clickLoad(`form[action*="/mfa/continue"] button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(".methods")),
	)
	if listed := get(t, ctx, "methods", chromedp.TextContent(chromedp.CSS(".methods"))); !strings.Contains(listed, "YubiKey de Paul") {
		t.Errorf("the Security page does not list the key:\n%s", listed)
	}

	// Signed out, then in with the key.
	do(t, ctx, "back to the demo",
		chromedp.Navigate(env.issuer+"/demo"),
		chromedp.WaitVisible(chromedp.ID("demo-login")),
		clickLoad("#demo-login"),
	)
	demoClaims(t, ctx) // the session answers
	demoSignOut(t, ctx)
	demoPassword(t, ctx, env, "paul", chromedp.WaitVisible(chromedp.ID("webauthn-signin")))
	do(t, ctx, "sign in with the key", clickLoad("#webauthn-signin"))
	c := demoClaims(t, ctx)
	if !(slices.Contains(c.AMR, "hwk") || slices.Contains(c.AMR, "swk")) || slices.Contains(c.AMR, "sms") || c.ACR != acrPhishingResistant {
		t.Errorf("sign-in with the key: amr %v acr %q", c.AMR, c.ACR)
	}
}
