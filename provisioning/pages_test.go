package provisioning

import (
	"net/http/httptest"
	"testing"

	"github.com/sesame-idp/sesame/idp/web"
)

// The callback goes back only to a page of ours: never to another site.
func TestReturnPath(t *testing.T) {
	h := &Pages{Web: &web.Kit{Prefix: "/idp"}}
	for _, c := range []struct{ state, want string }{
		{"abc./idp/requests/new", "/idp/requests/new"},
		{"abc./idp/console/users?q=julie", "/idp/console/users?q=julie"},
		{"abc./idp/console/requests/1234", "/idp/console/requests/1234"},
		{"abc.//evil.example/idp/requests", "/idp/requests"},
		{"abc./idp/requests//evil.example", "/idp/requests"},
		{"abc.https://evil.example/idp/requests", "/idp/requests"},
		{"abc./idp/requests\\evil", "/idp/requests"},
		{"abc./idp/requests%2F%2Fevil", "/idp/requests"},
		{"abc./account", "/idp/requests"},
		{"abc./idp/consolex", "/idp/requests"},
		{"abc./idp/console/users?q=a#frag", "/idp/requests"},
		{"no-dot", "/idp/requests"},
		{"", "/idp/requests"},
	} {
		if got := h.returnPath(c.state); got != c.want {
			t.Errorf("returnPath(%q) = %q, want %q", c.state, got, c.want)
		}
	}
}

// A sign-in started by a decision comes back to the request's page.
func TestPageOf(t *testing.T) {
	for _, c := range []struct{ method, target, want string }{
		{"GET", "/console/requests/42", "/console/requests/42"},
		{"GET", "/console/users?q=julie", "/console/users?q=julie"},
		{"POST", "/console/requests/42/approve", "/console/requests/42"},
		{"POST", "/console/requests/42/reject", "/console/requests/42"},
		{"POST", "/console/users/42/disable", "/console/users"},
		{"POST", "/requests/new", "/requests/new"},
	} {
		if got := pageOf(httptest.NewRequest(c.method, c.target, nil)); got != c.want {
			t.Errorf("pageOf(%s %s) = %q, want %q", c.method, c.target, got, c.want)
		}
	}
}
