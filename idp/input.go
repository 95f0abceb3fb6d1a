package idp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/sesame-idp/sesame/idp/input"
)

// DefaultBodyTimeout is how long a request may take to send its body
// (Server.BodyTimeout when zero).
const DefaultBodyTimeout = 5 * time.Second

// offeredGrants are the grant types the token endpoint takes, and those
// discovery advertises (with implicit, which is no token endpoint grant).
// Any other grant_type is refused before zitadel/oidc reads the request:
// it would otherwise parse a jwt-bearer assertion it cannot validate.
var offeredGrants = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}

// advertisedGrants filters zitadel/oidc's list for discovery.
func advertisedGrants(all []oidc.GrantType) []oidc.GrantType {
	return slices.DeleteFunc(slices.Clone(all), func(g oidc.GrantType) bool {
		return g != oidc.GrantTypeImplicit && !slices.Contains(offeredGrants, g)
	})
}

func (s *Server) bodyTimeout() time.Duration {
	if s.BodyTimeout > 0 {
		return s.BodyTimeout
	}
	return DefaultBodyTimeout
}

// withBodyDeadline gives a request with a body BodyTimeout to send it all
// (the server's read timeout is for the slowest client of the largest
// body): a Content-Length larger than the body sent no longer holds the
// connection. Every endpoint takes small bodies; one that takes a large
// one must set its own deadline (http.ResponseController). Once the body
// is read the deadline is lifted, so a slow answer is not cut.
func (s *Server) withBodyDeadline(next http.Handler) http.Handler {
	timeout := s.bodyTimeout()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			// The deadline is the network's: the real clock, not s.Now.
			if err := rc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// withOAuthInput checks what an OAuth endpoint (token, introspection,
// revocation, userinfo) reads before zitadel/oidc hands any of it to the
// storage: a form of at most 64 KiB that arrives in time, every parameter
// and the HTTP Basic credentials valid text (input.Values); otherwise
// invalid_request. With grants, a grant_type not offered is
// unsupported_grant_type.
func withOAuthInput(next http.Handler, grants []oidc.GrantType) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			status := http.StatusBadRequest
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				status = http.StatusRequestEntityTooLarge
			case errors.Is(err, os.ErrDeadlineExceeded):
				status = http.StatusRequestTimeout
			}
			oauthError(w, status, "invalid_request")
			return
		}
		if _, err := input.Values(r.Form); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		if id, secret, ok := r.BasicAuth(); ok {
			// RFC 6749 §2.3.1: both are form-encoded inside the header.
			for _, v := range []string{id, secret} {
				u, err := url.QueryUnescape(v)
				if err != nil || input.Line(v, 1024) != nil || input.Line(u, 1024) != nil {
					oauthError(w, http.StatusBadRequest, "invalid_request")
					return
				}
			}
		}
		if grants != nil {
			if g := r.FormValue("grant_type"); g != "" && !slices.Contains(grants, oidc.GrantType(g)) {
				oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// oauthError writes an OAuth error object (RFC 6749 §5.2).
func oauthError(w http.ResponseWriter, status int, code string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
