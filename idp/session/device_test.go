package session

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDeviceCookie(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      Manager
		cookie string
		path   string
	}{
		{"plain http", Manager{}, "sesame_device", "/"},
		{"tls", Manager{Secure: true}, "__Host-sesame_device", "/"},
		{"tls under a path", Manager{Secure: true, Path: "/idp/"}, "sesame_device", "/idp/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/login", nil)
			if got := tc.m.Device(r); got != "" {
				t.Fatalf("Device without a cookie = %q", got)
			}
			w := httptest.NewRecorder()
			v := tc.m.RememberDevice(w, r)
			if len(v) != 43 {
				t.Fatalf("device value %q", v)
			}
			if got := tc.m.Device(r); got != v {
				t.Fatalf("Device in the same request = %q, want %q", got, v)
			}
			cs := w.Result().Cookies()
			if len(cs) != 1 {
				t.Fatalf("cookies set: %v", cs)
			}
			c := cs[0]
			if c.Name != tc.cookie || c.Value != v || c.Path != tc.path || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
				c.Secure != tc.m.Secure || c.MaxAge != 400*24*3600 {
				t.Fatalf("cookie %+v", c)
			}

			// The next request carries it: the value is kept, its lifetime renewed.
			next := httptest.NewRequest("POST", "/login", nil)
			next.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			if got := tc.m.Device(next); got != v {
				t.Fatalf("Device on the next request = %q, want %q", got, v)
			}
			w = httptest.NewRecorder()
			if again := tc.m.RememberDevice(w, next); again != v {
				t.Fatalf("RememberDevice replaced the value: %q, want %q", again, v)
			}
			if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge != 400*24*3600 {
				t.Fatalf("lifetime not renewed: %v", cs)
			}
		})
	}
	// A value that is not one of ours is no device.
	m := Manager{}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "sesame_device", Value: "short"})
	if got := m.Device(r); got != "" {
		t.Fatalf("Device with a malformed cookie = %q", got)
	}
	if v := m.RememberDevice(httptest.NewRecorder(), r); len(v) != 43 || v == "short" {
		t.Fatalf("RememberDevice kept a malformed value: %q", v)
	}
}
