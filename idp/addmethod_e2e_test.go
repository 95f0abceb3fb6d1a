package idp_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// "Add a second method" (issue 10): after the first method it appears on
// the success page and at the next sign-ins (a#add-method on the
// challenge), until the user has two methods; the method choice then offers
// what the user lacks (SMS after the app), and the help article's steps
// work as written: "Add a second method", "enter a validation code for the
// authentication application", then the SMS steps. With two methods it is
// gone: from the success page and from the next challenge.
func TestAddMethodUntilTwoMethods(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		env.passwordOnlyUser("julie", pw)

		// First enrollment: the success page offers a second method.
		b := newBrowser(t)
		p, _, _ := r.authorize(b)
		p = submitLogin(t, b, p, "julie", pw)
		p = enrollTOTP(t, env, b, b.get(p.link(t, "/mfa/totp?")), "julie", "Cellulaire de Julie")
		if len(recoveryCodes(p)) != 5 || !p.has("add-method") {
			t.Fatalf("success page after the first method lacks a#add-method:\n%s", p.body)
		}
		action, vals := p.formAction(t, "/mfa/continue")
		p = b.post(action, vals)
		p.redirectParams(t)

		// The next sign-in: the challenge shows it, as the help article
		// says ("before entering this code, click on Add a second method").
		b2 := newBrowser(t)
		p, verifier := challengePage(t, env, r, b2, "julie")
		if !p.has("add-method") || !p.has("add-method-dismiss") {
			t.Fatalf("challenge lacks a#add-method and form#add-method-dismiss:\n%s", p.body)
		}
		p = b2.get(p.link(t, "then=add"))
		if !p.has("add-method-first") || p.has("add-method") || !p.has("mfa") {
			t.Fatalf("'add a method' challenge: want a code first (#add-method-first, form#mfa):\n%s", p.body)
		}
		action, vals = p.form(t, "mfa")
		vals.Set("code", env.nextCode("julie"))
		p = b2.post(action, vals)
		// Changing one's mind: "continue without adding" ends the sign-in.
		if !p.has("add-method-skip") {
			t.Fatalf("method choice after the code lacks form#add-method-skip:\n%s", p.body)
		}
		// SMS after the app (and a passkey), not a second app.
		if !strings.Contains(p.body, `data-method="sms"`) || strings.Contains(p.body, `data-method="totp"`) {
			t.Fatalf("method choice after the app: want SMS, not the app again:\n%s", p.body)
		}
		p = b2.get(p.link(t, "/mfa/sms?"))
		action, vals = p.form(t, "sms-enroll")
		vals.Set("phone", "438 555 0199")
		vals.Set("device_name", "Pixel de Julie")
		p = b2.post(action, vals)
		codes := env.smsCodes("+14385550199")
		if len(codes) != 1 {
			t.Fatalf("%d texts", len(codes))
		}
		action, vals = p.form(t, "sms-confirm")
		vals.Set("code", codes[0])
		p = b2.post(action, vals)
		if !strings.Contains(p.body, "Pixel de Julie") || !strings.Contains(p.body, "Votre numéro de cellulaire est maintenant configuré") || p.has("add-method") {
			t.Fatalf("success page with two methods: want the number confirmed and no a#add-method:\n%s", p.body)
		}
		// The confirmation email of the new method.
		if mails := env.outbox(); len(mails) != 1 || mails[0]["to"] != "julie@clinic.example" || !strings.Contains(mails[0]["text"], "Pixel de Julie") || !strings.Contains(mails[0]["text"], "SMS") {
			t.Errorf("confirmation email of the SMS method: %v", mails)
		}
		action, vals = p.formAction(t, "/mfa/continue")
		p = b2.post(action, vals)
		if amr := amrOf(t, r, p.redirectParams(t).Get("code"), verifier); !slices.Contains(amr, "otp") || !slices.Contains(amr, "sms") {
			t.Errorf("amr %v, want otp and sms", amr)
		}

		// Two methods: the next challenge no longer asks.
		p, _ = challengePage(t, env, r, newBrowser(t), "julie")
		if p.has("add-method") {
			t.Errorf("a#add-method still shown with two methods:\n%s", p.body)
		}
	})
}

// The app after SMS: a user whose only method is SMS is offered the app.
func TestAddMethodOffersTheAppAfterSMS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.passwordOnlyUser("omar", pw)
		now := time.Now().UTC()
		if err := env.store.CreateCredential(context.Background(), users.NewSMSCredential(u.ID, "Pixel", "+15148721234", now, now)); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p, _, verifier := r.authorize(b)
		p = submitLogin(t, b, p, "omar", pw)
		if !p.has("add-method") {
			t.Fatalf("challenge lacks a#add-method:\n%s", p.body)
		}
		p = b.get(p.link(t, "then=add"))
		action, vals := p.form(t, "sms-send")
		p = b.post(action, vals)
		action, vals = p.form(t, "mfa")
		codes := env.smsCodes("+15148721234")
		if len(codes) != 1 {
			t.Fatalf("%d texts", len(codes))
		}
		vals.Set("code", codes[0])
		p = b.post(action, vals)
		if !strings.Contains(p.body, `data-method="totp"`) || strings.Contains(p.body, `data-method="sms"`) {
			t.Fatalf("method choice after SMS: want the app, not SMS again:\n%s", p.body)
		}
		// Not now after all: on to the application, with the SMS verified.
		action, vals = p.form(t, "add-method-skip")
		p = b.post(action, vals)
		if amr := amrOf(t, r, p.redirectParams(t).Get("code"), verifier); !slices.Contains(amr, "sms") {
			t.Errorf("continue without adding: amr %v", amr)
		}
	})
}

// "Not now": the reminder is dismissed for 30 days, for this user in any
// browser (kept in the durable store, audited), and comes back after.
func TestAddMethodDismissedFor30Days(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		r := env.newRP(nil)
		u := env.user("rene", pw)
		b := newBrowser(t)
		p, verifier := challengePage(t, env, r, b, "rene")
		action, vals := p.form(t, "add-method-dismiss")
		p = b.post(action, vals)
		if p.status != http.StatusOK || p.has("add-method") || !p.has("mfa") || !strings.Contains(p.body, "30 jours") {
			t.Fatalf("after 'not now': %d\n%s", p.status, p.body)
		}
		if ev, _ := env.store.ListAuditEvents(context.Background(), store.AuditFilter{UserID: u.ID, Type: users.EventAddMethodDismissed}); len(ev) != 1 {
			t.Errorf("dismissal events: %+v", ev)
		}
		// The same challenge goes on.
		action, vals = p.form(t, "mfa")
		vals.Set("code", env.nextCode("rene"))
		p = b.post(action, vals)
		amrOf(t, r, p.redirectParams(t).Get("code"), verifier)

		// Another browser, 29 days later: still dismissed.
		env.offset.Add(int64(29 * 24 * time.Hour))
		if p, _ := challengePage(t, env, r, newBrowser(t), "rene"); p.has("add-method") {
			t.Errorf("a#add-method back after 29 days:\n%s", p.body)
		}
		// After 30 days: back.
		env.offset.Add(int64(24*time.Hour + time.Minute))
		if p, _ := challengePage(t, env, r, newBrowser(t), "rene"); !p.has("add-method") {
			t.Errorf("a#add-method not back after 30 days:\n%s", p.body)
		}
		// Another user is not affected by rene's dismissal.
		env.user("zoe", pw)
		if p, _ := challengePage(t, env, r, newBrowser(t), "zoe"); !p.has("add-method") {
			t.Errorf("another user's a#add-method hidden:\n%s", p.body)
		}
		// The Security page always has its "add a method" (a#add-method).
		p, _ = challengePage(t, env, r, b, "rene")
		action, vals = p.form(t, "mfa")
		vals.Set("code", env.nextCode("rene"))
		b.post(action, vals)
		if sec := b.get(env.issuer + "/account"); sec.status != http.StatusOK || !sec.has("add-method") {
			t.Errorf("security page: %d, a#add-method %v", sec.status, sec.has("add-method"))
		}
	})
}
