package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/store"
)

// PublicError is an answer meant for the person: a status and a message
// key (translated on the page, or in problem+json's detail). Err is the
// private cause, logged and never shown.
type PublicError struct {
	Status int
	// Key is the message key, Title the page title's key (from the status
	// when empty).
	Key, Title string
	Args       []any
	// Lang, when set, is the page language (the user's, the flow's).
	Lang string
	// Retry tells the client when to try again (Retry-After).
	Retry time.Duration
	// Fields are field problems for the API.
	Fields []FieldError
	// Render, when set, draws the page itself (a form shown again with its
	// message) instead of the error page; it must write Status.
	Render func(w http.ResponseWriter, r *http.Request)
	Err    error
}

// FieldError is one field problem (management API).
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *PublicError) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.Key
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *PublicError) Unwrap() error { return e.Err }

func (e *PublicError) title() string {
	if e.Title != "" {
		return e.Title
	}
	switch e.Status {
	case http.StatusForbidden:
		return "error.forbidden.title"
	case http.StatusTooManyRequests:
		return "error.throttled.title"
	case http.StatusServiceUnavailable, http.StatusInternalServerError:
		return "error.generic.title"
	}
	return "error.bad_request.title"
}

func (e *PublicError) retryAfter() string {
	return strconv.Itoa(int((e.Retry + time.Second - 1) / time.Second))
}

// BadRequest is a 400 with a message key.
func BadRequest(key string) *PublicError {
	return &PublicError{Status: http.StatusBadRequest, Key: key}
}

// Expired: the sign-in request is unknown, finished or expired.
func Expired() *PublicError {
	return &PublicError{Status: http.StatusBadRequest, Title: "error.expired.title", Key: "error.expired.message"}
}

// Forbidden is a 403 with the generic message.
func Forbidden() *PublicError {
	return &PublicError{Status: http.StatusForbidden, Title: "error.forbidden.title", Key: "error.forbidden.message"}
}

// Unavailable is a 503: a dependency failed; err is logged.
func Unavailable(err error) *PublicError {
	return &PublicError{Status: http.StatusServiceUnavailable, Title: "error.unavailable.title", Key: "error.unavailable.message", Err: err}
}

// IsUnavailable reports whether err is, or wraps, a failure of the
// database or of the ephemeral store (store.ErrUnavailable,
// ephemeral.ErrUnavailable): an answer for it is a 503, never a verdict
// such as "not found", "expired" or "disabled".
func IsUnavailable(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, ephemeral.ErrUnavailable)
}

// Throttled is a 429 that says when to retry.
func Throttled(lang string, wait time.Duration) *PublicError {
	return &PublicError{Status: http.StatusTooManyRequests, Lang: lang, Key: "error.throttled_wait",
		Args: []any{FormatWait(lang, wait)}, Retry: wait}
}

// FormatWait says a wait the way people do: "45 secondes", "3 minutes",
// "2 h 30" ("45 seconds", "3 minutes", "2 h 30 min" in English); it rounds
// up, so the person never comes back too early.
func FormatWait(lang string, d time.Duration) string {
	en := lang == "en"
	switch secs := int((d + time.Second - 1) / time.Second); {
	case secs < 60:
		secs = max(secs, 1)
		if en {
			return plural(secs, "second", "seconds")
		}
		return plural(secs, "seconde", "secondes")
	case secs < 3600:
		return plural((secs+59)/60, "minute", "minutes")
	default:
		mins := (secs + 59) / 60
		h, m := mins/60, mins%60
		switch {
		case m == 0 && en:
			return plural(h, "hour", "hours")
		case m == 0:
			return plural(h, "heure", "heures")
		case en:
			return strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
		}
		return strconv.Itoa(h) + "\u00a0h\u00a0" + strconv.Itoa(m)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1\u00a0" + one
	}
	return strconv.Itoa(n) + "\u00a0" + many
}
