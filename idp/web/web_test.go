package web_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral/memory"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

func newKit(t *testing.T) *web.Kit {
	t.Helper()
	tpl, err := templates.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &web.Kit{Templates: tpl, Sessions: &session.Manager{Ephemeral: memory.New(nil), TTL: time.Hour},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestHandle(t *testing.T) {
	kit := newKit(t)
	secret := errors.New("dial tcp 10.0.0.5:5432: connection refused")
	tests := []struct {
		name, path, accept string
		err                error
		status             int
		ctype, has, hasNot string
	}{
		{"page error", "/login", "text/html", web.Expired(), 400, "text/html", `class="error"`, ""},
		{"page error in English", "/login", "text/html", &web.PublicError{Status: 403, Lang: "en", Key: "error.forbidden.message"}, 403, "text/html", "You do not have access", ""},
		{"API error", "/api/v1/users", "", web.BadRequest("error.bad_request.message"), 400, "application/problem+json", `"status":400`, ""},
		{"API by Accept", "/x", "application/json", web.Throttled("en", 90*time.Second), 429, "application/problem+json", "2\u00a0minutes", ""},
		{"private error", "/login", "text/html", secret, 500, "text/html", "req-1", "10.0.0.5"},
		{"private error, API", "/api/v1/x", "", secret, 500, "application/problem+json", `"status":500`, "10.0.0.5"},
		{"unavailable keeps the cause private", "/login", "", web.Unavailable(secret), 503, "text/html", "", "10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kit.Handle(func(w http.ResponseWriter, r *http.Request) error { return tt.err })
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			w := httptest.NewRecorder()
			w.Header().Set("X-Request-Id", "req-1")
			h.ServeHTTP(w, req)
			body := w.Body.String()
			if w.Code != tt.status || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.ctype) {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Header().Get("Content-Type"), tt.status, tt.ctype)
			}
			if tt.has != "" && !strings.Contains(body, tt.has) {
				t.Errorf("body lacks %q:\n%s", tt.has, body)
			}
			if tt.hasNot != "" && strings.Contains(body, tt.hasNot) {
				t.Errorf("body shows %q", tt.hasNot)
			}
			if tt.ctype == "application/problem+json" {
				var p map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p["detail"] == "" || p["request_id"] != "req-1" {
					t.Errorf("problem: %v %v", p, err)
				}
			}
		})
	}
}

func TestCheckPost(t *testing.T) {
	kit := newKit(t)
	// A browser gets its cookie and token from a page first.
	w := httptest.NewRecorder()
	token := kit.Sessions.CSRFToken(w, httptest.NewRequest(http.MethodGet, "/", nil))
	cookie := w.Result().Cookies()[0]
	post := func(body string) error {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(cookie)
		return kit.CheckPost(httptest.NewRecorder(), r)
	}
	if err := post("csrf_token=" + token); err != nil {
		t.Fatalf("good token: %v", err)
	}
	var pe *web.PublicError
	if err := post("csrf_token=forged"); !errors.As(err, &pe) || pe.Status != http.StatusForbidden {
		t.Fatalf("forged token: %v", err)
	}
	if err := post("a=" + strings.Repeat("x", web.MaxFormBytes+1)); !errors.As(err, &pe) || pe.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("huge form: %v", err)
	}
	// Text a store cannot hold is refused before the CSRF check, with the
	// invalid_text message; the value is not in the logged cause.
	for _, body := range []string{
		"username=sophie%00&csrf_token=" + token,
		"username=%FF%FE&csrf_token=" + token,
		"comment=%1B%5B31m&csrf_token=" + token,
		"username=" + strings.Repeat("a", 4097) + "&csrf_token=" + token,
		"user%00name=x&csrf_token=" + token,
	} {
		err := post(body)
		if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest || pe.Key != "error.invalid_text" {
			t.Errorf("%.40q: %v", body, err)
		} else if strings.Contains(pe.Error(), "sophie") {
			t.Errorf("the cause shows the value: %v", pe)
		}
	}
	if err := post("comment=line+1%0D%0Aline+2&csrf_token=" + token); err != nil {
		t.Errorf("a textarea's newlines: %v", err)
	}
}

// TestHandleChecksQuery: every page refuses a bad query parameter before
// its handler runs, in the request's language.
func TestHandleChecksQuery(t *testing.T) {
	kit := newKit(t)
	ran := false
	h := kit.Handle(func(w http.ResponseWriter, r *http.Request) error { ran = true; return nil })
	for _, tt := range []struct{ target, lang, want string }{
		{"/login?flow=%00", "fr", "caractères non permis"},
		{"/activate?token=%FF", "en", "characters that are not allowed"},
		{"/login?lang=en&x=%7F", "fr", "characters that are not allowed"},
	} {
		r := httptest.NewRequest(http.MethodGet, tt.target, nil)
		r.Header.Set("Accept-Language", tt.lang)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if ran || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("%s: ran %v, %d, want 400 with %q:\n%s", tt.target, ran, w.Code, tt.want, w.Body.String())
		}
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/login?flow=abc&lang=fr", nil))
	if !ran {
		t.Error("a plain query did not reach the handler")
	}
}

func TestFormatWait(t *testing.T) {
	for _, tt := range []struct {
		lang string
		d    time.Duration
		want string
	}{
		{"fr", 500 * time.Millisecond, "1\u00a0seconde"},
		{"fr", 30 * time.Second, "30\u00a0secondes"},
		{"en", 61 * time.Second, "2\u00a0minutes"},
		{"fr", time.Hour, "1\u00a0heure"},
		{"en", 150 * time.Minute, "2 h 30 min"},
	} {
		if got := web.FormatWait(tt.lang, tt.d); got != tt.want {
			t.Errorf("FormatWait(%s, %v) = %q, want %q", tt.lang, tt.d, got, tt.want)
		}
	}
}
