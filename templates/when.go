package templates

import "time"

// UserLang is the language of a user's emails: "en" for an en-CA locale,
// French otherwise.
func UserLang(locale string) string { return normLang(locale) }

// montreal is the time zone Québec's users read times in.
var montreal = func() *time.Location {
	if loc, err := time.LoadLocation("America/Montreal"); err == nil {
		return loc
	}
	return time.FixedZone("EST", -5*3600)
}()

// InQuebec is t in the time zone Québec's users read times in.
func InQuebec(t time.Time) time.Time { return t.In(montreal) }

// FormatWhen says a time as people of Québec read it, in lang ("fr" or
// "en"), for emails ("2026-12-01 à 07 h 05 (EST)").
func FormatWhen(t time.Time, lang string) string {
	t = t.In(montreal)
	if lang == "en" {
		return t.Format("January 2, 2006 at 3:04 pm MST")
	}
	return t.Format("2006-01-02 à 15 h 04 (MST)")
}
