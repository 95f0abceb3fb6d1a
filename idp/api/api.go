package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/audit"
	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
)

// Prefix is where the API is mounted, under the issuer's path.
const Prefix = "/api/v1"

// MaxBody bounds a request body: more is a 413.
const MaxBody = 64 << 10

// Handler serves the management API.
type Handler struct {
	// Web renders errors as problem+json and translates messages.
	Web   *web.Kit
	Store store.Store
	Users *users.Service
	// VerifyToken returns the live access token a bearer value stands for
	// (oidcstore.Storage.VerifyAccessToken on the provider).
	VerifyToken func(ctx context.Context, raw string) (oidcstore.AccessToken, error)
	// Requests is the account-request service (nil: those calls answer 404).
	Requests Requests
	// Unlock voids an account's throttle counts (regulate.Regulator.Unlock).
	Unlock func(ctx context.Context, account string) error
	// ClientIP is the caller's address (session.Networks.ClientIP).
	ClientIP func(r *http.Request) netip.Addr
	// Issuer is where activation links point.
	Issuer string
	// SupportURL is given in the emails to users.
	SupportURL string
	// Notify wakes the outbox worker after an email was queued.
	Notify func()
	// Forget drops a client or a user from the provider's caches after a
	// change made here (kind "client" or "user"), so that this node sees it
	// at once (nil: nothing cached).
	Forget func(kind, id string)
	// EndSessions ends every browser session of a user and refuses every
	// access token issued to the user until now (flow.SignOutEverywhere
	// and oidcstore.Storage.RevokeUserAccessTokens), when an account is
	// disabled or closed and before it is enabled (nil: nothing to end).
	EndSessions func(ctx context.Context, userID string) error
	Logger      *slog.Logger
	Now         func() time.Time
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Handler) forget(kind, id string) {
	if h.Forget != nil {
		h.Forget(kind, id)
	}
}

func (h *Handler) notify() {
	if h.Notify != nil {
		h.Notify()
	}
}

// access is who may call a route.
type access int

const (
	public   access = iota // anyone (the OpenAPI document)
	admin                  // sesame:admin: a client, or a support user with a second factor
	requests               // sesame:requests (a requester's own requests), or admin
)

// route is one call of the API; the table below is what is served, and
// the OpenAPI document must describe exactly it.
type route struct {
	method, path string // path under Prefix, with {name} wildcards
	op           string // the OpenAPI operationId, and the audit events' "operation"
	access       access
	serve        func(h *Handler, w http.ResponseWriter, r *http.Request, c *call) error
}

// routes is the API. Keep openapi.json in step (TestOpenAPIMatchesRoutes).
var routes = []route{
	{"GET", "/openapi.json", "getOpenAPI", public, (*Handler).openAPI},

	{"GET", "/users", "searchUsers", admin, (*Handler).searchUsers},
	{"GET", "/users/{id}", "getUser", admin, (*Handler).getUser},
	{"POST", "/users/{id}/disable", "disableUser", admin, (*Handler).disableUser},
	{"POST", "/users/{id}/enable", "enableUser", admin, (*Handler).enableUser},
	{"POST", "/users/{id}/close", "closeUser", admin, (*Handler).closeUser},
	{"POST", "/users/{id}/unlock", "unlockUser", admin, (*Handler).unlockUser},
	{"POST", "/users/{id}/reset-factors", "resetUserFactors", admin, (*Handler).resetFactors},
	{"POST", "/users/{id}/resend-activation", "resendActivation", admin, (*Handler).resendActivation},
	{"PUT", "/users/{id}/phone", "setUserPhone", admin, (*Handler).setPhone},

	{"GET", "/clients", "listClients", admin, (*Handler).listClients},
	{"POST", "/clients", "createClient", admin, (*Handler).createClient},
	{"DELETE", "/clients/{id}", "deleteClient", admin, (*Handler).deleteClient},
	{"POST", "/clients/{id}/rotate-secret", "rotateClientSecret", admin, (*Handler).rotateClientSecret},

	{"PUT", "/users/{id}/memberships/{institution_id}", "putMembership", admin, (*Handler).putMembership},

	{"POST", "/institutions", "createInstitution", admin, (*Handler).createInstitution},
	{"GET", "/institutions", "listInstitutions", admin, (*Handler).listInstitutions},
	{"GET", "/institutions/{id}", "getInstitution", admin, (*Handler).getInstitution},

	{"POST", "/account-requests", "submitAccountRequest", requests, (*Handler).submitRequest},
	{"GET", "/account-requests", "listAccountRequests", requests, (*Handler).listRequests},
	{"GET", "/account-requests/{id}", "getAccountRequest", requests, (*Handler).getRequest},
	{"POST", "/account-requests/{id}/approve", "approveAccountRequest", admin, (*Handler).approveRequest},
	{"POST", "/account-requests/{id}/reject", "rejectAccountRequest", admin, (*Handler).rejectRequest},

	{"GET", "/audit-events", "listAuditEvents", admin, (*Handler).listAuditEvents},
}

// Routes returns the API's handler, for paths under Prefix (the caller
// strips the issuer's path first).
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.method+" "+Prefix+rt.path, h.serve(rt))
	}
	mux.Handle(Prefix+"/", h.Web.Handle(func(w http.ResponseWriter, r *http.Request) error {
		// No route for this path, or not with this method.
		var allow []string
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != Prefix+"/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return &web.PublicError{Status: http.StatusMethodNotAllowed, Key: "api.not_found"}
		}
		return notFound()
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// call is what a handler knows of the request: who calls, in which
// language, and what the audit event of the call says.
type call struct {
	op    string
	actor *Actor
	lang  string
	// userID is the account the call concerns, for its audit event.
	userID  string
	details map[string]string
}

// by is the audit event that names the caller, for idp/users.
func (c *call) by(ip string) store.AuditEvent {
	return store.AuditEvent{ActorID: c.actor.ID(), ClientID: c.actor.ClientID, IP: ip}
}

// Actor is who calls: a client on its own behalf, or a signed-in user
// through a client.
type Actor struct {
	ClientID string
	UserID   string // "" for a client's own token
	// Admin: may call every route (sesame:admin, and for a user the
	// support right and a second factor).
	Admin bool
	// Requester: a user with sesame:requests.
	Requester bool
}

// ID is the actor's id in audit events: the user's, or the client's.
func (a *Actor) ID() string {
	if a == nil {
		return ""
	}
	if a.UserID != "" {
		return a.UserID
	}
	return a.ClientID
}

// serve wraps a route: authentication, the language, the call's audit
// event, and errors as problem+json.
func (h *Handler) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		c := &call{op: rt.op, lang: lang(r)}
		var err error
		if rt.access != public {
			c.actor, err = h.authenticate(r, rt.access)
		}
		if err == nil {
			err = checkQuery(r)
		}
		if err == nil {
			c.userID = r.PathValue("id")
			if !strings.HasPrefix(rt.path, "/users/") {
				c.userID = ""
			}
			err = rt.serve(h, sw, r, c)
		}
		if err != nil {
			h.Web.Fail(sw, r, h.public(sw, err, c))
		}
		if c.actor != nil {
			h.record(r, c, sw.status)
		}
	})
}

// record appends the call's audit event: "api.call" for a call that was
// answered, "api.refused" for one the caller may not make (a token without
// the scope, a user without the support right or a second factor). Calls
// without a valid token are logged, not audited: they have no actor.
func (h *Handler) record(r *http.Request, c *call, status int) {
	typ := "api.call"
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		typ = "api.refused"
	}
	details := map[string]string{"operation": c.op, "status": http.StatusText(status)}
	for k, v := range c.details {
		details[k] = v
	}
	e := h.event(r.Context(), store.AuditEvent{
		Type: typ, ActorID: c.actor.ID(), ClientID: c.actor.ClientID, UserID: c.userID, IP: h.ip(r), Details: details,
	})
	if err := h.Store.AppendAuditEvent(r.Context(), e); err != nil {
		h.Logger.Error("audit event not recorded", "type", typ, "operation", c.op, "err", err)
	}
}

// event fills e's id, time and request id.
func (h *Handler) event(ctx context.Context, e store.AuditEvent) store.AuditEvent {
	return (&audit.Recorder{Now: h.now}).Event(ctx, e)
}

func (h *Handler) ip(r *http.Request) string {
	if h.ClientIP == nil {
		return ""
	}
	if ip := h.ClientIP(r); ip.IsValid() {
		return ip.String()
	}
	return ""
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ---- authentication ----

const realm = `Bearer realm="sesame"`

// authenticate reads the bearer token and decides whether its holder may
// call a route of this access. The refusals follow RFC 6750 §3 (and RFC
// 9470 for a sign-in without a second factor). A refusal with a known
// actor returns the actor too, so that it is audited.
func (h *Handler) authenticate(r *http.Request, need access) (*Actor, error) {
	raw, ok := bearer(r)
	if !ok {
		return nil, unauthorized("", "no bearer token")
	}
	t, err := h.VerifyToken(r.Context(), raw)
	if err != nil {
		return nil, unauthorized("invalid_token", "token not valid")
	}
	a := &Actor{ClientID: t.ClientID}
	hasAdmin := slices.Contains(t.Scopes, oidcstore.ScopeAdmin)
	hasRequests := slices.Contains(t.Scopes, oidcstore.ScopeRequests)
	if t.Subject == t.ClientID && t.AuthTime.IsZero() {
		// A client's own token (client credentials).
		a.Admin = hasAdmin
	} else {
		a.UserID = t.Subject
		u, err := h.Store.GetUser(r.Context(), t.Subject)
		if errors.Is(err, store.ErrNotFound) || err == nil && u.Status != store.StatusActive {
			return nil, unauthorized("invalid_token", "the token's account is not active")
		}
		if err != nil {
			return nil, web.Unavailable(err)
		}
		mfa := flow.ParseAMR(t.AMR).MultiFactor()
		switch {
		case hasAdmin && u.Support && mfa:
			a.Admin = true
		case hasRequests && mfa:
			a.Requester = true
		case hasAdmin && !u.Support && !hasRequests:
			return a, &refusal{PublicError: web.PublicError{Status: http.StatusForbidden, Key: "api.not_support",
				Err: errors.New("sesame:admin token of a user without the support right")}}
		case (hasAdmin || hasRequests) && !mfa:
			return a, &refusal{challenge: realm + `, error="insufficient_user_authentication", ` +
				`error_description="a sign-in with a second factor is required"`,
				PublicError: web.PublicError{Status: http.StatusUnauthorized, Key: "api.mfa_required",
					Err: errors.New("user token without a second factor")}}
		}
	}
	switch {
	case a.Admin:
		return a, nil
	case need == requests && a.Requester:
		return a, nil
	}
	scope := oidcstore.ScopeAdmin
	if need == requests {
		scope = oidcstore.ScopeRequests + " " + oidcstore.ScopeAdmin
	}
	return a, &refusal{challenge: realm + `, error="insufficient_scope", scope="` + scope + `"`,
		PublicError: web.PublicError{Status: http.StatusForbidden, Key: "api.insufficient_scope", Args: []any{scope},
			Err: errors.New("token without the scope")}}
}

// bearer returns the token of "Authorization: Bearer <token>".
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// refusal is a 401 or 403 with its WWW-Authenticate challenge.
type refusal struct {
	web.PublicError
	challenge string
}

func unauthorized(code, why string) *refusal {
	ch := realm
	if code != "" {
		ch += `, error="` + code + `"`
	}
	return &refusal{challenge: ch, PublicError: web.PublicError{Status: http.StatusUnauthorized, Key: "api.invalid_token", Err: errors.New(why)}}
}
