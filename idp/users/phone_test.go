package users_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/templates"
)

// The acceptance table of issue 10: Canadian cell numbers in the formats
// people type are accepted and normalised to E.164; everything that cannot
// receive a text in Canada is refused with its own message, in both
// languages.
func TestParseCanadianMobile(t *testing.T) {
	valid := []struct{ in, want string }{
		{"514 872-1234", "+15148721234"},
		{"(438) 933 1234", "+14389331234"},
		{"+1 418-691-2000", "+14186912000"},
		{"450.678.1234", "+14506781234"},
		{"1 581 888 1234", "+15818881234"},
		{"6046811234", "+16046811234"},
		{"+14169671111", "+14169671111"},
		{"1-403-262-1234", "+14032621234"},
		{" (902) 420-1234 ", "+19024201234"},
		{"+1 (867) 667-1234", "+18676671234"},
	}
	for _, c := range valid {
		got, err := users.ParseCanadianMobile(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseCanadianMobile(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}

	refused := []struct {
		name, in string
		want     *users.InputError
	}{
		{"US", "212 736-5000", users.PhoneUS},
		{"US +1", "+1 (415) 555-2671", users.PhoneUS},
		{"toll-free 800", "1 800 555-1234", users.PhoneTollFree},
		{"toll-free 888", "888-463-6332", users.PhoneTollFree},
		{"premium", "1-900-555-1234", users.PhonePremium},
		{"short code", "23333", users.PhoneShortCode},
		{"short code 6", "555 123", users.PhoneShortCode},
		{"malformed", "514 55-012", users.PhoneMalformed},
		{"malformed area code", "456 123 4567", users.PhoneMalformed},
		{"malformed symbols", "514#872*1234", users.PhoneMalformed},
		{"letters", "514 ABC DEFG", users.PhoneLetters},
		{"vanity", "1-800-FLOWERS", users.PhoneLetters},
		{"40 digits", strings.Repeat("1234567890", 4), users.PhoneTooLong},
		{"11 digits", "514 872 12345", users.PhoneTooLong},
		{"foreign", "+33 1 23 45 67 89", users.PhoneNotCanadian},
		{"empty", "  ", users.PhoneRequired},
	}
	eng, err := templates.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			got, err := users.ParseCanadianMobile(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("ParseCanadianMobile(%q) = %q, %v; want %v", c.in, got, err, c.want)
			}
			var ie *users.InputError
			if !errors.As(err, &ie) || ie.Field != "phone" || ie.Message == "" {
				t.Fatalf("error %#v: want an InputError on phone with a message", err)
			}
			fr, en := eng.T("fr", ie.Key), eng.T("en", ie.Key)
			if fr == ie.Key || en == ie.Key || fr == en {
				t.Errorf("key %s: fr %q, en %q: want both messages", ie.Key, fr, en)
			}
		})
		keys[c.want.Key] = true
	}
	if len(keys) < 9 {
		t.Errorf("%d distinct messages; want one per kind of refusal", len(keys))
	}
}

func TestMaskPhone(t *testing.T) {
	if got := users.MaskPhone("+15148721234"); got != "+1 •••-•••-1234" {
		t.Errorf("MaskPhone = %q", got)
	}
}

// Support sets a number on an account without one (a verified method is
// created), then changes it (the same method, the new number), each time
// with an event and the email; a bad number changes nothing.
func TestSetPhone(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		created, err := svc.CreateUsers(ctx, []users.NewUser{{Username: "lea.roy", Email: "lea@clinique.example", Password: "une phrase de passe assez longue"}}, byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		id := created[0].ID
		mails := 0
		mail := func(u store.User) (notify.Email, error) {
			mails++
			return notify.Email{To: u.Email, Subject: "numéro changé", Text: "Nouveau numéro : " + users.MaskPhone(u.Phone)}, nil
		}
		if _, err := svc.SetPhone(ctx, id, "212 736-5000", byAdmin, mail); !errors.Is(err, users.PhoneUS) {
			t.Fatalf("US number: %v", err)
		}
		u, err := svc.SetPhone(ctx, id, "514 872-1234", byAdmin, mail)
		if err != nil || u.Phone != "+15148721234" {
			t.Fatalf("first number: %+v %v", u, err)
		}
		first, _ := svc.Store.ListCredentials(ctx, id, store.CredSMS)
		if _, err := svc.SetPhone(ctx, id, "+1 418 691-2000", byAdmin, mail); err != nil {
			t.Fatal(err)
		}
		after, _ := svc.Store.ListCredentials(ctx, id, store.CredSMS)
		if len(first) != 1 || first[0].VerifiedAt.IsZero() || len(after) != 1 || after[0].ID != first[0].ID || users.CredentialPhone(after[0]) != "+14186912000" {
			t.Fatalf("credentials: %+v then %+v", first, after)
		}
		ev, _ := svc.Store.ListAuditEvents(ctx, store.AuditFilter{UserID: id, Type: "user.phone_changed"})
		if len(ev) != 2 || ev[0].ActorID != "admin-1" || strings.Contains(ev[0].Details["phone"], "691") {
			t.Errorf("events: %+v", ev)
		}
		msgs, _ := svc.Store.ClaimOutbox(ctx, t0.Add(time.Hour), time.Minute, 10)
		if mails != 2 || len(msgs) != 2 {
			t.Errorf("%d emails built, %d queued; want 2", mails, len(msgs))
		}
	})
}
