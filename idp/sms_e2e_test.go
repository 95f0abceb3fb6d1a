package idp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

var smsCodeRE = regexp.MustCompile(`#([0-9]{6})$`)

// smsCodes returns the codes of the texts queued for phone (and leases
// every queued message).
func (e *testEnv) smsCodes(phone string) []string {
	var out []string
	for _, m := range e.outbox() {
		if m["to"] != phone || m["body"] == "" {
			continue
		}
		if c := smsCodeRE.FindStringSubmatch(m["body"]); c != nil {
			out = append(out, c[1])
		}
	}
	return out
}

// A user with no factor sets up SMS from the method choice: a US number
// is refused in French; a Canadian one gets a code, and the number is
// saved (E.164, verified, with its device name, a confirmation email)
// only once the code is entered. A new sign-in in another browser then
// goes through SMS: nothing is sent on the GET, a code on the POST, and
// the ID token's amr says sms.
func TestSMSEnrollThenSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.passwordOnlyUser("lea", pw)
		b := newBrowser(t)
		p, _, verifier := r.authorize(b)
		p = submitLogin(t, b, p, "lea", pw)
		for _, want := range []string{`data-method="totp"`, `data-method="sms"`} {
			if !strings.Contains(p.body, want) {
				t.Fatalf("method choice lacks a[%s]:\n%s", want, p.body)
			}
		}
		p = b.get(p.link(t, "/mfa/sms?"))
		action, vals := p.form(t, "sms-enroll")
		vals.Set("phone", "212 736-5000")
		vals.Set("device_name", "Cellulaire de Léa")
		bad := b.post(action, vals)
		if bad.status != http.StatusUnprocessableEntity || !strings.Contains(bad.body, "États-Unis") || !bad.has("sms-enroll") {
			t.Fatalf("US number: %d\n%s", bad.status, bad.body)
		}
		if n := len(env.smsCodes("+12127365000")); n != 0 {
			t.Fatalf("%d texts to a refused number", n)
		}
		vals.Set("phone", "(514) 872-1234")
		p = b.post(action, vals)
		if !p.has("sms-confirm") || !strings.Contains(p.body, "1234") {
			t.Fatalf("no code form after the number: %d\n%s", p.status, p.body)
		}
		if creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredSMS); len(creds) != 0 {
			t.Fatalf("number saved before its code: %+v", creds)
		}
		codes := env.smsCodes("+15148721234")
		if len(codes) != 1 {
			t.Fatalf("%d texts to the number, want 1", len(codes))
		}
		action, vals = p.form(t, "sms-confirm")
		vals.Set("code", "000000")
		if codes[0] == "000000" {
			vals.Set("code", "111111")
		}
		if wrong := b.post(action, vals); wrong.status != http.StatusUnprocessableEntity || !wrong.has("sms-confirm") {
			t.Fatalf("wrong code: %d", wrong.status)
		}
		vals.Set("code", codes[0])
		p = b.post(action, vals)
		if len(recoveryCodes(p)) != 5 {
			t.Fatalf("after the code: %d\n%s", p.status, p.body)
		}
		creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredSMS)
		if len(creds) != 1 || users.CredentialPhone(creds[0]) != "+15148721234" || creds[0].Name != "Cellulaire de Léa" || creds[0].VerifiedAt.IsZero() {
			t.Fatalf("sms credential: %+v", creds)
		}
		if mails := env.outbox(); len(mails) != 1 || mails[0]["to"] != u.Email || !strings.Contains(mails[0]["text"], "Cellulaire de Léa") || !strings.Contains(mails[0]["text"], "SMS") {
			t.Errorf("confirmation email: %v", mails)
		}
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		if amr := amrOf(t, r, p.redirectParams(t).Get("code"), verifier); !slices.Contains(amr, "sms") || !slices.Contains(amr, "mfa") {
			t.Errorf("enrollment amr %v", amr)
		}

		// Signed out: a new browser. The challenge offers SMS, sends
		// nothing on the GET, a code on the POST.
		b2 := newBrowser(t)
		p, _, verifier = r.authorize(b2)
		p = submitLogin(t, b2, p, "lea", pw)
		if !p.has("sms-send") || p.has("mfa") {
			t.Fatalf("challenge: want form#sms-send first:\n%s", p.body)
		}
		if n := len(env.smsCodes("+15148721234")); n != 0 {
			t.Fatalf("a GET sent %d texts", n)
		}
		action, vals = p.form(t, "sms-send")
		p = b2.post(action, vals)
		if !p.has("mfa") {
			t.Fatalf("after sending: no form#mfa:\n%s", p.body)
		}
		action, vals = p.form(t, "mfa")
		if vals.Get("method") != "sms" {
			t.Fatalf("form#mfa method %q", vals.Get("method"))
		}
		// "Send a new code" right away: refused, with the wait.
		if again := b2.post(p.formAction(t, "/mfa/sms/send")); again.status != http.StatusTooManyRequests || !again.has("mfa") {
			t.Fatalf("resend at once: %d", again.status)
		}
		codes = env.smsCodes("+15148721234")
		if len(codes) != 1 {
			t.Fatalf("%d texts, want 1", len(codes))
		}
		vals.Set("code", codes[0])
		p = b2.post(action, vals)
		if amr := amrOf(t, r, p.redirectParams(t).Get("code"), verifier); !slices.Contains(amr, "sms") || !slices.Contains(amr, "pwd") || !slices.Contains(amr, "mfa") {
			t.Errorf("sign-in amr %v, want sms", amr)
		}
		// A number is never added twice: support changes it.
		b3 := newBrowser(t)
		p, _, _ = r.authorize(b3)
		p = submitLogin(t, b3, p, "lea", pw)
		if got := b3.get(env.issuer + "/mfa/sms?flow=" + p.url.Query().Get("flow")); got.status < 400 || got.status >= 500 {
			t.Errorf("SMS set-up open with a number: %d", got.status)
		}
	})
}

// A user with the app picks SMS on the challenge page: a[data-method=sms]
// → form#sms-send → form#mfa with method=sms.
func TestChallengeChoosesSMS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("marc", pw)
		now := time.Now().UTC()
		if err := env.store.CreateCredential(context.Background(), users.NewSMSCredential(u.ID, "Pixel", "+14186912000", now, now)); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p, verifier := challengePage(t, env, r, b, "marc")
		if _, vals := p.form(t, "mfa"); vals.Get("method") != "totp" {
			t.Fatalf("default method %q", vals.Get("method"))
		}
		if !strings.Contains(p.body, `data-method="sms"`) {
			t.Fatalf("no a[data-method=sms]:\n%s", p.body)
		}
		p = b.get(p.link(t, "method=sms"))
		action, vals := p.form(t, "sms-send")
		p = b.post(action, vals)
		action, vals = p.form(t, "mfa")
		codes := env.smsCodes("+14186912000")
		if vals.Get("method") != "sms" || len(codes) != 1 {
			t.Fatalf("method %q, %d texts", vals.Get("method"), len(codes))
		}
		vals.Set("code", codes[0])
		p = b.post(action, vals)
		if amr := amrOf(t, r, p.redirectParams(t).Get("code"), verifier); !slices.Contains(amr, "sms") || slices.Contains(amr, "otp") {
			t.Errorf("amr %v, want sms (not otp)", amr)
		}
		// The Security page shows the number masked, and who changes it.
		sec := b.get(env.issuer + "/account")
		if sec.status != http.StatusOK || !strings.Contains(sec.body, "•••-•••-2000") || strings.Contains(sec.body, "4186912000") ||
			!strings.Contains(sec.body, "Pour changer de numéro, communiquez avec le soutien.") {
			t.Errorf("security page: %d\n%s", sec.status, sec.body)
		}
	})
}

// "Add a second method" from the challenge, as the help article says: a
// code of the app first, then the SMS steps; the recovery codes are kept,
// the new number saved, and both factors count in the amr.
func TestAddSMSFromChallenge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("paul", pw)
		b := newBrowser(t)
		p, verifier := challengePage(t, env, r, b, "paul")
		p = b.get(p.link(t, "then=add"))
		action, vals := p.form(t, "mfa")
		vals.Set("code", env.nextCode("paul"))
		p = b.post(action, vals)
		if !strings.Contains(p.body, `data-method="sms"`) {
			t.Fatalf("no SMS on the method choice after the app's code: %s\n%s", p.url, p.body)
		}
		p = b.get(p.link(t, "/mfa/sms?"))
		action, vals = p.form(t, "sms-enroll")
		vals.Set("phone", "+1 604-681-1234")
		vals.Set("device_name", "iPhone de Paul")
		p = b.post(action, vals)
		codes := env.smsCodes("+16046811234")
		if len(codes) != 1 {
			t.Fatalf("%d texts", len(codes))
		}
		action, vals = p.form(t, "sms-confirm")
		vals.Set("code", codes[0])
		p = b.post(action, vals)
		if n := len(recoveryCodes(p)); n != 0 {
			t.Errorf("adding a method showed %d new recovery codes", n)
		}
		if creds, _ := env.store.ListCredentials(context.Background(), u.ID, store.CredSMS); len(creds) != 1 || users.CredentialPhone(creds[0]) != "+16046811234" {
			t.Fatalf("sms credential: %+v", creds)
		}
		action, vals = p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		amr := amrOf(t, r, p.redirectParams(t).Get("code"), verifier)
		if !slices.Contains(amr, "otp") || !slices.Contains(amr, "sms") {
			t.Errorf("amr %v, want otp and sms", amr)
		}
	})
}

// A text the gateway refuses (a 4xx) is recorded, and the page says it
// could not be sent instead of letting the user wait for it.
func TestSMSCouldNotSend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"code": 21614, "message": "not a mobile number"}`))
		}))
		defer gw.Close()
		worker := &notify.Worker{Store: env.store, Senders: map[string]notify.Sender{
			notify.KindSMS: &notify.TwilioSender{URL: gw.URL, AccountSID: "AC1", AuthToken: "t", From: "+15145550000", Client: gw.Client()},
		}}
		r := env.newRP(nil)
		u := env.user("ines", pw)
		now := time.Now().UTC()
		if err := env.store.CreateCredential(context.Background(), users.NewSMSCredential(u.ID, "Pixel", "+14186912000", now, now)); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p, _ := challengePage(t, env, r, b, "ines")
		p = b.get(p.link(t, "method=sms"))
		action, vals := p.form(t, "sms-send")
		p = b.post(action, vals)
		if strings.Contains(p.body, "n'a pas pu être envoyé") {
			t.Fatal("failure shown before any attempt")
		}
		if _, err := worker.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", "000000")
		p = b.post(action, vals)
		if !strings.Contains(p.body, "Le texto n'a pas pu être envoyé à ce numéro.") {
			t.Fatalf("no 'could not send': %d\n%s", p.status, p.body)
		}
	})
}
