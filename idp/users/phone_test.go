package users_test

import (
	"errors"
	"strings"
	"testing"

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
