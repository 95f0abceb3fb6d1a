package web

import (
	"net/http"
	"strconv"
	"time"
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
	return &PublicError{Status: http.StatusServiceUnavailable, Title: "error.generic.title", Key: "error.generic.message", Err: err}
}
