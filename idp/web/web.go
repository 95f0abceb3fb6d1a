package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/sesame-idp/sesame/idp/input"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/templates"
)

// MaxFormBytes bounds a form body.
const MaxFormBytes = 64 << 10

// Kit holds what pages share.
type Kit struct {
	Templates *templates.Engine
	// Sessions sets the browser cookie that CSRF tokens derive from.
	Sessions *session.Manager
	// Prefix is the issuer's path ("" at the root).
	Prefix string
	Logger *slog.Logger
}

// Path is p under the issuer's path.
func (k *Kit) Path(p string) string { return k.Prefix + p }

// Lang picks the page language: an explicit choice (?lang= or its cookie),
// then ui_locales, then the user's locale, then Accept-Language (French by
// default).
func (k *Kit) Lang(w http.ResponseWriter, r *http.Request, uiLocales []string, userLocale string) string {
	if l := r.URL.Query().Get("lang"); l == "fr" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "sesame_lang", Value: l, Path: k.Path("/"), MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: k.Sessions.Secure})
		return l
	}
	if c, err := r.Cookie("sesame_lang"); err == nil && (c.Value == "fr" || c.Value == "en") {
		return c.Value
	}
	return templates.Negotiate(strings.Join(uiLocales, " "), userLocale, r.Header.Get("Accept-Language"))
}

// Base is the data every page carries: language, CSRF token, language
// switch.
func (k *Kit) Base(w http.ResponseWriter, r *http.Request, lang string) templates.Base {
	return templates.Base{
		Lang:     lang,
		CSRF:     k.Sessions.CSRFToken(w, r),
		LangURLs: langURLs(r),
	}
}

func langURLs(r *http.Request) map[string]string {
	out := map[string]string{}
	for _, l := range []string{"fr", "en"} {
		q := r.URL.Query()
		q.Set("lang", l)
		out[l] = r.URL.Path + "?" + q.Encode()
	}
	return out
}

// CheckPost parses a form POST (at most MaxFormBytes), checks every field
// (CheckText) and its CSRF token.
func (k *Kit) CheckPost(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return &PublicError{Status: http.StatusRequestEntityTooLarge, Key: "error.bad_request.message"}
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The body did not arrive in time (the server's body deadline).
			return &PublicError{Status: http.StatusRequestTimeout, Key: "error.bad_request.message", Err: err}
		}
		return BadRequest("error.bad_request.message")
	}
	if err := CheckText(r.Form); err != nil {
		return err
	}
	if !k.Sessions.CheckCSRF(r) {
		return &PublicError{Status: http.StatusForbidden, Title: "error.bad_request.title", Key: "error.csrf"}
	}
	return nil
}

// CheckText checks every name and value of a form or a query with
// input.Values (valid UTF-8, no control character, MaxLen bytes each)
// before any of it reaches a store: a bad one is a 400 with the
// error.invalid_text message. The value is never logged.
func CheckText(v map[string][]string) error {
	field, err := input.Values(v)
	if err != nil {
		return &PublicError{Status: http.StatusBadRequest, Key: "error.invalid_text",
			Err: fmt.Errorf("field %q: %w", field, err)}
	}
	return nil
}

// ErrorPage renders the error page: title and message are message keys;
// lang "" negotiates.
func (k *Kit) ErrorPage(w http.ResponseWriter, r *http.Request, status int, lang, title, message string) {
	if lang == "" {
		lang = k.Lang(w, r, nil, "")
	}
	b := k.Base(w, r, lang)
	if err := k.Templates.Error(w, status, templates.ErrorPage{Base: b, Title: title, Message: message,
		RequestID: w.Header().Get("X-Request-Id")}); err != nil {
		k.Logger.Error("render error page", "err", err)
	}
}

// Handle adapts a handler that returns an error: a *PublicError (anywhere
// in the chain) is shown to the person, as the error page or, for the API
// (paths under /api/, or a client that accepts only JSON), as
// application/problem+json (RFC 9457); any other error is logged and
// answered with a fixed 500 message and the request id. The query is
// checked (CheckText) before fn runs; CheckPost checks a form.
func (k *Kit) Handle(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := CheckText(r.URL.Query())
		if err == nil {
			err = fn(w, r)
		}
		if err != nil {
			k.Fail(w, r, err)
		}
	})
}

// Fail answers err as Handle does.
func (k *Kit) Fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *PublicError
	switch {
	case IsUnavailable(err):
		// A dependency failed: never a verdict about the request, whatever
		// answer was being prepared.
		k.Logger.Error("dependency unavailable", "err", err, "path", r.URL.Path, "request_id", w.Header().Get("X-Request-Id"))
		pe = Unavailable(nil)
	case !errors.As(err, &pe):
		k.Logger.Error("request failed", "err", err, "path", r.URL.Path, "request_id", w.Header().Get("X-Request-Id"))
		pe = &PublicError{Status: http.StatusInternalServerError, Title: "error.generic.title", Key: "error.generic.message"}
	case pe.Status >= http.StatusInternalServerError:
		k.Logger.Error("request failed", "status", pe.Status, "err", pe.Err, "path", r.URL.Path,
			"request_id", w.Header().Get("X-Request-Id"))
	case pe.Err != nil:
		k.Logger.Info("request refused", "status", pe.Status, "reason", pe.Err, "path", r.URL.Path,
			"request_id", w.Header().Get("X-Request-Id"))
	}
	if pe.Render != nil {
		// The answer is a page of its own (a form shown again, a redirect).
		pe.Render(w, r)
		return
	}
	if wantsJSON(r) {
		k.problem(w, r, pe)
		return
	}
	if pe.Retry > 0 {
		w.Header().Set("Retry-After", pe.retryAfter())
	}
	if pe.Status == http.StatusServiceUnavailable {
		w.Header().Set("Cache-Control", "no-store")
	}
	k.ErrorPage(w, r, pe.Status, pe.Lang, pe.title(), pe.Key)
}

func wantsJSON(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return true
	}
	a := r.Header.Get("Accept")
	return a != "" && !strings.Contains(a, "text/html") &&
		(strings.Contains(a, "application/json") || strings.Contains(a, "application/problem+json"))
}

// problem writes pe as application/problem+json, its detail in the
// request's language.
func (k *Kit) problem(w http.ResponseWriter, r *http.Request, pe *PublicError) {
	lang := pe.Lang
	if lang == "" {
		lang = templates.Negotiate("", "", r.Header.Get("Accept-Language"))
	}
	body := map[string]any{
		"type":   "about:blank",
		"title":  http.StatusText(pe.Status),
		"status": pe.Status,
		"detail": k.Templates.T(lang, pe.Key, pe.Args...),
	}
	if id := w.Header().Get("X-Request-Id"); id != "" {
		body["request_id"] = id
	}
	if len(pe.Fields) > 0 {
		body["errors"] = pe.Fields
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if pe.Retry > 0 {
		h.Set("Retry-After", pe.retryAfter())
	}
	w.WriteHeader(pe.Status)
	_ = json.NewEncoder(w).Encode(body)
}
