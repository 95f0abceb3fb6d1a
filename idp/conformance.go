package idp

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/web"
)

// The wrappers here hold the provider to the OAuth 2 and OpenID Connect
// rules zitadel/oidc leaves open. Each cites the rule it keeps.

// withNoStore marks a response that carries a token or a code as not to be
// stored (RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma: no-cache").
func withNoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setNoStore(w.Header())
		next.ServeHTTP(w, r)
	})
}

func setNoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// writeOAuthError writes an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setNoStore(h)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, description})
}

// basicChallenge is the challenge a client that used HTTP Basic gets with
// a 401 (RFC 6749 §5.2).
const basicChallenge = `Basic realm="sesame"`

// withTokenRules checks a token request before the provider sees it:
//   - POST only (RFC 6749 §3.2): another method gets 405 with Allow;
//   - an application/x-www-form-urlencoded body (RFC 6749 §3.2, §4.1.3):
//     multipart or JSON gets invalid_request;
//   - no parameter twice (RFC 6749 §3.2: "Request and response parameters
//     MUST NOT be included more than once");
//   - one client authentication method (RFC 6749 §2.3: "The client MUST NOT
//     use more than one authentication method in each request"): HTTP Basic
//     with a client_secret or client_assertion in the body is refused, and a
//     body client_id other than Basic's is invalid_client;
//   - a 401 to a client that used HTTP Basic carries WWW-Authenticate (RFC
//     6749 §5.2);
//   - every answer is no-store (RFC 6749 §5.1).
func withTokenRules(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
			return
		}
		if name := repeated(r.Form); name != "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameter "+name+" is repeated")
			return
		}
		id, _, basic := r.BasicAuth()
		if basic {
			if r.PostForm.Get("client_secret") != "" || r.PostForm.Get("client_assertion") != "" {
				writeOAuthError(w, http.StatusBadRequest, "invalid_request", "more than one client authentication method")
				return
			}
			if u, err := url.QueryUnescape(id); err == nil {
				id = u
			}
			if body := r.PostForm.Get("client_id"); body != "" && body != id {
				w.Header().Set("WWW-Authenticate", basicChallenge)
				writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client_id differs from the authenticated client")
				return
			}
			w = &challengeWriter{ResponseWriter: w}
		}
		setNoStore(w.Header())
		next.ServeHTTP(w, r)
	})
}

// repeated returns the name of a parameter given more than once, or "".
func repeated(form url.Values) string {
	for name, values := range form {
		if len(values) > 1 {
			return name
		}
	}
	return ""
}

// challengeWriter adds the Basic challenge to a 401.
type challengeWriter struct {
	http.ResponseWriter
}

func (c *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		c.Header().Set("WWW-Authenticate", basicChallenge)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *challengeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// methodNotAllowed answers a method the path does not take with 405 and
// the methods it does take (RFC 9110 §15.5.6), and OPTIONS with them
// (RFC 9110 §9.3.7). It is mounted on the bare path next to the method
// patterns, so the served methods never pass through it.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
	}
}

// handleMethods mounts h on path for the methods given, and 405 for the
// others.
func handleMethods(mux *http.ServeMux, path string, h http.Handler, methods ...string) {
	allow := ""
	for i, m := range methods {
		mux.Handle(m+" "+path, h)
		if i > 0 {
			allow += ", "
		}
		allow += m
		if m == http.MethodGet {
			allow += ", " + http.MethodHead
		}
	}
	mux.Handle(path, methodNotAllowed(allow))
}

// pkceChallenge is RFC 7636 §4.2's code_challenge: 43 to 128 characters of
// [A-Za-z0-9-._~].
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authorizeProblem returns what makes an authorization request malformed
// in ways zitadel/oidc lets through, or nil:
//   - a parameter given twice (RFC 6749 §3.1);
//   - request_uri, which Sésame does not support (OIDC Core §6.2,
//     request_uri_not_supported; discovery says
//     request_uri_parameter_supported: false);
//   - an empty or malformed code_challenge, or a code_challenge_method
//     without a challenge (RFC 7636 §4.2, §4.4.1);
//   - a claims parameter that is not a JSON object (OIDC Core §5.5).
func authorizeProblem(form url.Values) *oidc.Error {
	if name := repeated(form); name != "" {
		return oidc.ErrInvalidRequest().WithDescription("parameter %s is repeated", name)
	}
	if form.Get("request_uri") != "" {
		return &oidc.Error{ErrorType: "request_uri_not_supported", Description: "request_uri is not supported"}
	}
	challenge, given := form["code_challenge"]
	switch {
	case given && !pkceChallenge.MatchString(challenge[0]):
		return oidc.ErrInvalidRequest().WithDescription("code_challenge is malformed (RFC 7636 §4.2)")
	case !given && form.Get("code_challenge_method") != "":
		return oidc.ErrInvalidRequest().WithDescription("code_challenge_method without code_challenge")
	}
	if c := form.Get("claims"); c != "" {
		if _, err := oidcstore.ParseClaimsRequest(c); err != nil {
			return oidc.ErrInvalidRequest().WithDescription("claims is not a valid claims request")
		}
	}
	return nil
}

// withAuthorizeRules refuses a malformed authorization request
// (authorizeProblem). The error goes to the redirect URI when the client
// and the redirect URI are valid (RFC 6749 §4.1.2.1), to our error page
// otherwise; a repeated redirect_uri or client_id never redirects. It
// hands a claims request on to the storage (oidcstore.WithClaimsRequest).
// The form is already parsed (requireClient).
func withAuthorizeRules(next http.Handler, s *Server, kit *web.Kit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem := authorizeProblem(r.Form)
		if problem == nil {
			if c := r.Form.Get("claims"); c != "" {
				cr, _ := oidcstore.ParseClaimsRequest(c)
				r = r.WithContext(oidcstore.WithClaimsRequest(r.Context(), cr))
			}
			next.ServeHTTP(w, r)
			return
		}
		redirect := r.Form.Get("redirect_uri")
		if len(r.Form["redirect_uri"]) == 1 && len(r.Form["client_id"]) == 1 {
			c, err := s.Storage.GetClientByClientID(r.Context(), r.Form.Get("client_id"))
			if err == nil && slices.Contains(c.RedirectURIs(), redirect) {
				op.AuthRequestError(w, r, &oidc.AuthRequest{
					RedirectURI:  redirect,
					ResponseType: oidc.ResponseType(r.Form.Get("response_type")),
					ResponseMode: oidc.ResponseMode(r.Form.Get("response_mode")),
					State:        r.Form.Get("state"),
				}, problem, s.Provider)
				return
			}
		}
		s.Logger.Info("authorization request refused", "reason", problem.Description, "request_id", w.Header().Get("X-Request-Id"))
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		kit.ErrorPage(w, r, http.StatusBadRequest, "", "error.bad_request.title", "error.bad_request.message")
	})
}
