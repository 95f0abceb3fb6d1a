package templates

import (
	"sort"
	"strconv"
	"strings"
)

// Negotiate picks the language of a page, "fr" or "en": the first supported
// tag of ui_locales (space-separated, e.g. "en-CA fr"), else the user's
// locale (fr-CA | en-CA), else the preferred supported language of an
// Accept-Language header (q values respected), else French.
func Negotiate(uiLocales, userLocale, acceptLanguage string) string {
	for _, tag := range strings.Fields(uiLocales) {
		if l, ok := supported(tag); ok {
			return l
		}
	}
	if l, ok := supported(userLocale); ok {
		return l
	}
	if l, ok := fromAcceptLanguage(acceptLanguage); ok {
		return l
	}
	return defaultLang
}

// fromAcceptLanguage parses an Accept-Language header (RFC 9110 §12.5.4).
// A wildcard stands for the supported languages the header does not name,
// French first.
func fromAcceptLanguage(header string) (string, bool) {
	type weighted struct {
		tag string
		q   float64
	}
	var prefs []weighted
	named := map[string]bool{}
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		tag := strings.TrimSpace(fields[0])
		if tag == "" {
			continue
		}
		q := 1.0
		for _, p := range fields[1:] {
			name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil || v < 0 || v > 1 {
				v = 0 // malformed weight: ignore the entry
			}
			q = v
		}
		if l, ok := supported(tag); ok {
			named[l] = true
		}
		if q > 0 {
			prefs = append(prefs, weighted{tag, q})
		}
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	for _, p := range prefs {
		if p.tag == "*" {
			for _, l := range languages {
				if !named[l] {
					return l, true
				}
			}
			continue
		}
		if l, ok := supported(p.tag); ok {
			return l, true
		}
	}
	return "", false
}
