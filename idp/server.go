package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/sesame-idp/sesame/idp/account"
	"github.com/sesame-idp/sesame/idp/api"
	"github.com/sesame-idp/sesame/idp/audit"
	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/input"
	"github.com/sesame-idp/sesame/idp/keys"
	"github.com/sesame-idp/sesame/idp/login"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/provisioning"
	"github.com/sesame-idp/sesame/templates"
)

// Check is one dependency that /readyz pings.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Server is the HTTP face of Sésame. Fill the fields, then call Handler.
type Server struct {
	// Issuer is the OIDC issuer URL; the provider and pages live under its path.
	Issuer    string
	Store     store.Store
	Ephemeral ephemeral.Store
	Keys      *keys.Manager
	Templates *templates.Engine
	Passwords users.Passwords
	// Sealer seals TOTP secrets.
	Sealer *seal.Sealer
	// TOTPIssuer is the name authenticator apps show ("Sésame").
	TOTPIssuer string
	// SupportURL is given in security emails ("if this was not you…").
	SupportURL string
	// Notify wakes the outbox worker after an email was queued.
	Notify func()
	// SMSPerHour caps the validation texts per hour, whole deployment
	// (sms.max_per_hour; mfa.DefaultSMSPerHour when zero).
	SMSPerHour int
	// CryptoKey encrypts opaque access tokens and codes; the same on every node.
	CryptoKey      [32]byte
	TrustedProxies []netip.Prefix
	// SessionTTL is the absolute lifetime of a browser session from its
	// sign-in (session.lifetime, default 12 h).
	SessionTTL time.Duration
	// FactorWindow is how recent a second factor must be for a sensitive
	// action (session.factor_window, default 10 min).
	FactorWindow time.Duration
	// BodyTimeout is how long a request may take to send its body
	// (DefaultBodyTimeout when zero).
	BodyTimeout time.Duration
	// Regulate holds the throttle's limits (zero: regulate.DefaultConfig()).
	Regulate regulate.Config
	// Demo serves a small relying party at /demo, signing in with the
	// public client DemoClientID.
	Demo         bool
	DemoClientID string
	// Provisioning is the account-request service (built with the
	// default configuration when nil).
	Provisioning *provisioning.Service
	// Support reports whether a user holds the support right (the console
	// of /console/requests); nil: the user's support flag.
	Support func(ctx context.Context, u store.User) (bool, error)
	// UserActions are the actions of the console's user lookup (nil: the
	// management API's).
	UserActions []provisioning.UserAction
	// CacheTTL is how long the token, introspection and userinfo endpoints
	// reuse a client or a user read from the store (0: read them at every
	// request; config database.cache_ttl). Changes made through this
	// server's API are seen at once.
	CacheTTL time.Duration
	// Features returns the features an occupation enables, for the
	// "features" claim of sesame:institutions (nil: none).
	Features func(occupation string) []string

	Logger   *slog.Logger
	Registry *prometheus.Registry
	// SeparateMetrics: /metrics is served on its own listener
	// (metrics.addr), not by Handler.
	SeparateMetrics bool
	// AccountRequests feeds the account-request gauges (when nil, the
	// store is asked whether it offers them).
	AccountRequests AccountRequestCounter
	// Checks are pinged by /readyz, in parallel, each within ReadyTimeout.
	Checks       []Check
	ReadyTimeout time.Duration
	Now          func() time.Time

	// Built by Handler.
	Provider op.OpenIDProvider
	Storage  *oidcstore.Storage
	Flow     *flow.Flow
	Login    *login.Handler
	MFA      *mfa.Handler
	Account  *account.Handler
	API      *api.Handler
	Audit    *audit.Recorder
	// Requests is the account request service; RequestPages its pages.
	Requests     *provisioning.Service
	RequestPages *provisioning.Pages

	discovery atomic.Pointer[prepared]
}

// prepared is a response body computed once per signing-key change.
type prepared struct {
	version uint64
	body    []byte
}

// Supported scopes.
var scopes = []string{"openid", "profile", "email", "offline_access", oidcstore.ScopeInstitutions, oidcstore.ScopeAdmin, oidcstore.ScopeRequests}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler builds the provider and returns the server's root handler.
func (s *Server) Handler() (http.Handler, error) {
	iss, err := url.Parse(s.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	prefix := strings.TrimSuffix(iss.Path, "/")
	secure := iss.Scheme == "https"
	if s.SessionTTL <= 0 {
		s.SessionTTL = 12 * time.Hour
	}
	signals := newSignals(s.Registry)
	s.Audit = &audit.Recorder{Store: s.Store, Logger: s.Logger, Now: s.Now, Observe: signals.observe}
	if s.Registry != nil {
		s.Registry.MustRegister(newStateCollector(s))
	}
	s.Storage = &oidcstore.Storage{
		Store:     s.Store,
		Ephemeral: s.Ephemeral,
		Keys:      s.Keys,
		Logger:    s.Logger,
		Now:       s.Now,
		LoginURL:  func(id string) string { return prefix + "/login?flow=" + url.QueryEscape(id) },
		Audit:     s.Audit.Record,
		Features:  s.Features,
		ClientTTL: s.CacheTTL,
		UserTTL:   s.CacheTTL,
	}
	tc, err := newTokenCrypto(s.CryptoKey)
	if err != nil {
		return nil, fmt.Errorf("token crypto: %w", err)
	}
	opts := []op.Option{op.WithHttpInterceptors(s.withTokenGrants), op.WithCrypto(tc)}
	if !secure {
		opts = append(opts, op.WithAllowInsecure())
	}
	s.Provider, err = op.NewProvider(&op.Config{
		CryptoKey:                s.CryptoKey,
		DefaultLogoutRedirectURI: prefix + "/signed-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.French, language.English},
		SupportedScopes:          scopes,
	}, s.Storage, op.StaticIssuer(s.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	sessions := &session.Manager{Ephemeral: s.Ephemeral, TTL: s.SessionTTL, Secure: secure, Path: prefix + "/", Now: s.Now}
	if prefix == "" {
		sessions.Path = "/"
	}
	kit := &web.Kit{Templates: s.Templates, Sessions: sessions, Prefix: prefix, Logger: s.Logger}
	regulator, err := regulate.New(s.Ephemeral, s.Regulate, s.Now)
	if err != nil {
		return nil, fmt.Errorf("regulate: %w", err)
	}
	s.Flow = &flow.Flow{
		Store:        s.Store,
		Storage:      s.Storage,
		Sessions:     sessions,
		Networks:     session.Networks{Trusted: s.TrustedProxies},
		Web:          kit,
		Provider:     s.Provider,
		FactorWindow: s.FactorWindow,
		Regulator:    regulator,
		SecondFactors: func(ctx context.Context, userID string) ([]store.Credential, error) {
			return users.SecondFactors(ctx, s.Store, userID)
		},
		Passkeys: func() bool { return s.MFA.WebAuthn.On() },
		Logger:   s.Logger,
		Now:      s.Now,
		Audit:    s.Audit.Record,
	}
	s.Login = &login.Handler{
		Flow:      s.Flow,
		Web:       kit,
		Store:     s.Store,
		Storage:   s.Storage,
		Sessions:  sessions,
		Passwords: s.Passwords,
		HashSlots: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		Regulator: regulator,
		Provider:  s.Provider,
		Issuer:    s.Issuer,
		Logger:    s.Logger,
		Now:       s.Now,
		Audit:     s.Audit.Record,
	}
	if s.TOTPIssuer == "" {
		s.TOTPIssuer = "Sésame"
	}
	s.MFA = &mfa.Handler{
		Flow:       s.Flow,
		Web:        kit,
		Store:      s.Store,
		Sealer:     s.Sealer,
		Regulator:  regulator,
		TOTP:       mfa.TOTP{Store: s.Store, Sealer: s.Sealer},
		SMS:        mfa.SMS{Store: s.Store, Ephemeral: s.Ephemeral, Issuer: s.Issuer, MaxPerHour: s.SMSPerHour, Text: s.Templates.T, Notify: s.Notify},
		Recovery:   mfa.Recovery{Store: s.Store},
		WebAuthn:   mfa.WebAuthn{Store: s.Store, Ephemeral: s.Ephemeral, Issuer: s.Issuer},
		Issuer:     s.TOTPIssuer,
		SupportURL: s.SupportURL,
		Logger:     s.Logger,
		Now:        s.Now,
		Audit:      s.Audit.Record,
		Notify:     s.Notify,
	}
	s.Account = &account.Handler{
		Flow:    s.Flow,
		Web:     kit,
		Store:   s.Store,
		Storage: s.Storage,
		Users:   &users.Service{Store: s.Store, Sealer: s.Sealer, Passwords: s.Passwords, Now: s.Now},
		Issuer:  s.Issuer,
		Logger:  s.Logger,
		Now:     s.Now,
		Audit:   s.Audit.Record,

		Passwords:  s.Passwords,
		Notify:     s.Notify,
		SupportURL: s.SupportURL,
	}
	s.Login.NewFlow = s.Account.NewAuthRequest
	s.Login.Notify, s.Login.SupportURL = s.Notify, s.SupportURL
	if err := s.ensureClient(account.Client(s.Issuer, s.now().UTC())); err != nil {
		return nil, err
	}
	if s.Provisioning == nil {
		s.Provisioning = &provisioning.Service{Store: s.Store, Templates: s.Templates, Issuer: s.Issuer, Now: s.Now,
			Logger: s.Logger}
	}
	if s.Provisioning.Poke == nil {
		s.Provisioning.Poke = s.Notify
	}
	s.Requests = s.Provisioning
	if s.Support == nil {
		// The support right is users.support (sesame user grant --support).
		s.Support = func(_ context.Context, u store.User) (bool, error) { return u.Support, nil }
	}
	if s.Storage.Features == nil {
		s.Storage.Features = s.Requests.Features
	}
	s.API = &api.Handler{
		Requests: apiRequests{s.Provisioning},
		Web:      kit,
		Store:    s.Store,
		Users:    &users.Service{Store: s.Store, Sealer: s.Sealer, Passwords: s.Passwords, Now: s.Now},
		VerifyToken: func(ctx context.Context, raw string) (oidcstore.AccessToken, error) {
			// JWTs are checked against the issuer in ctx, as the provider's
			// own endpoints do.
			return s.Storage.VerifyAccessToken(op.ContextWithIssuer(ctx, s.Issuer), s.Provider, raw)
		},
		Unlock:     regulator.Unlock,
		ClientIP:   func(r *http.Request) netip.Addr { return s.Flow.Networks.ClientIP(r) },
		Issuer:     s.Issuer,
		SupportURL: s.SupportURL,
		Notify:     s.Notify,
		Forget: func(kind, id string) {
			if kind == "client" {
				s.Storage.ForgetClient(id)
			} else {
				s.Storage.ForgetUser(id)
			}
		},
		EndSessions: func(ctx context.Context, userID string) error {
			_, err := s.Flow.SignOutEverywhere(ctx, userID, "")
			return err
		},
		Logger: s.Logger,
		Now:    s.Now,
	}
	s.RequestPages = &provisioning.Pages{
		Service: s.Requests, Web: kit, Store: s.Store, Sessions: sessions,
		Networks: session.Networks{Trusted: s.TrustedProxies}, Issuer: s.Issuer, FactorWindow: s.FactorWindow,
		BurnCode: func(ctx context.Context, code string) {
			if a, err := s.Storage.AuthRequestByCode(ctx, code); err == nil {
				_ = s.Storage.DeleteAuthRequest(ctx, a.GetID())
			}
		},
		Support: s.Support, UserActions: s.consoleActions(), Logger: s.Logger, Now: s.Now,
	}
	if err := s.ensureClient(provisioning.PagesClient(s.Issuer, s.now().UTC())); err != nil {
		return nil, err
	}

	pages := http.NewServeMux()
	s.Login.Routes(pages)
	s.MFA.Routes(pages)
	s.Account.Routes(pages)
	s.RequestPages.Routes(pages)
	pages.Handle("GET /static/", http.StripPrefix("/static", s.Templates.Static()))
	if s.Demo {
		(&demo{s: s, prefix: prefix}).routes(pages)
	}

	provider := s.Provider.HttpHandler()
	oidcMux := http.NewServeMux()
	handleMethods(oidcMux, "/.well-known/openid-configuration", http.HandlerFunc(s.serveDiscovery), http.MethodGet)
	handleMethods(oidcMux, "/keys", http.HandlerFunc(s.serveJWKS), http.MethodGet)
	// withFaults: a dependency failure met by the provider is a 503.
	pageFaults := func(h http.Handler) http.Handler { return withFaults(h, kit, s.Logger, true) }
	apiFaults := func(h http.Handler) http.Handler { return withFaults(h, kit, s.Logger, false) }
	handleMethods(oidcMux, "/authorize", pageFaults(withErrorPage(requireClient(withAuthorizeRules(withRequestLimit(provider, s.Flow), s, kit), kit), kit)), http.MethodGet, http.MethodPost)
	oidcMux.Handle("/oauth/introspect", withNoStore(apiFaults(withOAuthInput(withJSONError(provider, "invalid_client", basicChallenge), nil))))
	oidcMux.Handle("/userinfo", withNoStore(apiFaults(withOAuthInput(withJSONError(provider, "invalid_token", `Bearer error="invalid_token"`), nil))))
	oidcMux.Handle("/revoke", apiFaults(withOAuthInput(provider, nil)))
	oidcMux.Handle("/authorize/callback", withNoStore(pageFaults(withErrorPage(s.Flow.Guard(provider), kit))))
	handleMethods(oidcMux, "/end_session", withCSP(s.Login.EndSession()), http.MethodGet, http.MethodPost)
	oidcMux.Handle(api.Prefix+"/", s.API.Routes())
	oidcMux.Handle(tokenPath, withTokenRules(apiFaults(withOAuthInput(withTokenClient(withTokenMetrics(provider, signals)), offeredGrants))))
	oidcMux.Handle("/", withPageHeaders(pages, apiFaults(provider)))

	root := http.NewServeMux()
	handleMethods(root, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	}), http.MethodGet)
	handleMethods(root, "/readyz", http.HandlerFunc(s.readyz), http.MethodGet)
	if !s.SeparateMetrics && s.Registry != nil {
		handleMethods(root, "/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}), http.MethodGet)
	}
	if prefix == "" {
		root.Handle("/", oidcMux)
	} else {
		root.Handle(prefix+"/", http.StripPrefix(prefix, oidcMux))
	}
	return s.withBodyDeadline(withCommon(root, s.Logger, newHTTPMetrics(s.Registry))), nil
}

// ensureClient registers one of Sésame's own clients (the account pages,
// the request pages).
func (s *Server) ensureClient(want store.Client) error {
	ctx := context.Background()
	c, err := s.Store.GetClient(ctx, want.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := s.Store.CreateClient(ctx, want); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("register the client %s: %w", want.ID, err)
		}
	case err != nil:
		return fmt.Errorf("load the client %s: %w", want.ID, err)
	case !slices.Equal(c.RedirectURIs, want.RedirectURIs):
		// The issuer changed.
		c.RedirectURIs, c.UpdatedAt = want.RedirectURIs, want.UpdatedAt
		if err := s.Store.UpdateClient(ctx, c); err != nil {
			return fmt.Errorf("update the client %s: %w", want.ID, err)
		}
	}
	return nil
}

// withTokenClient tells the storage which client a token request is for
// (from HTTP Basic or the form, as zitadel/oidc reads it), so its tokens
// use the client's algorithm; a refresh_token grant that asks for no scope
// is marked for a claim of its token (oidcstore.WithRefreshClaim).
func withTokenClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		_ = r.ParseForm() // a bad form is the provider's to refuse
		id, _, ok := r.BasicAuth()
		if ok {
			if u, err := url.QueryUnescape(id); err == nil {
				id = u
			}
		} else {
			id = r.PostForm.Get("client_id")
		}
		switch {
		case id == "" || len(id) > 128:
		case r.PostForm.Get("grant_type") == "refresh_token" && !r.Form.Has("scope"):
			r = r.WithContext(oidcstore.WithRefreshClaim(r.Context(), id))
		default:
			r = r.WithContext(oidcstore.WithClientID(r.Context(), id))
		}
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy: our pages load only our own files. (No
// form-action: browsers apply it to the redirects that follow a sign-in
// form, which end at the relying party.)
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'"

// withPageHeaders routes to our pages when one matches, to the provider
// otherwise; pages get a strict CSP.
func withPageHeaders(pages *http.ServeMux, provider http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := pages.Handler(r); pattern != "" {
			w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
			pages.ServeHTTP(w, r)
			return
		}
		provider.ServeHTTP(w, r)
	})
}

// withRequestLimit refuses an authorization request when the client's
// network has created too many (each one stores state): flow.AllowRequest.
func withRequestLimit(next http.Handler, f *flow.Flow) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f.AllowRequest(w, r); err != nil {
			w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
			f.Web.Fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withCSP gives a page served outside the pages mux our CSP.
func withCSP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		next.ServeHTTP(w, r)
	})
}

// withErrorPage turns the plain-text 400 zitadel/oidc writes when it must
// not redirect (unknown client, unregistered redirect_uri…) into our error
// page, in the user's language. The library's text is logged, not shown.
func withErrorPage(next http.Handler, kit *web.Kit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &captureWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if !cw.captured {
			return
		}
		kit.Logger.Info("authorization request refused", "reason", strings.TrimSpace(cw.body.String()), "request_id", w.Header().Get("X-Request-Id"))
		w.Header().Del("Content-Type")
		w.Header().Del("X-Content-Type-Options")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		kit.ErrorPage(w, r, cw.status, "", "error.bad_request.title", "error.bad_request.message")
	})
}

// requireClient answers a request without client_id or redirect_uri, or
// with a parameter that is not valid text (input.Values: it would reach
// the store as the client's id, or the auth request), with our error page
// itself (zitadel/oidc would log it as a server error).
func requireClient(next http.Handler, kit *web.Kit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		err := r.ParseForm()
		if err == nil {
			_, err = input.Values(r.Form)
		}
		// Given twice, client_id or redirect_uri leaves no safe place to
		// send an error (zitadel/oidc would read another copy than ours).
		if err != nil || r.Form.Get("client_id") == "" || r.Form.Get("redirect_uri") == "" ||
			len(r.Form["client_id"]) > 1 || len(r.Form["redirect_uri"]) > 1 {
			w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
			kit.ErrorPage(w, r, http.StatusBadRequest, "", "error.bad_request.title", "error.bad_request.message")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withJSONError turns the plain-text 4xx that zitadel/oidc writes on some
// API endpoints (with its internal error text) into an OAuth JSON error
// with a WWW-Authenticate challenge (RFC 6750 §3, RFC 7662 §2.3).
func withJSONError(next http.Handler, code, challenge string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &captureWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if !cw.captured {
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		if cw.status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", challenge)
		}
		w.WriteHeader(cw.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
	})
}

// captureWriter swallows a plain-text error response.
type captureWriter struct {
	http.ResponseWriter
	status   int
	captured bool
	decided  bool
	body     bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	if c.decided {
		return
	}
	c.decided = true
	ct := c.Header().Get("Content-Type")
	if code >= 400 && code < 500 && strings.HasPrefix(ct, "text/plain") {
		c.captured, c.status = true, code
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if !c.decided {
		c.WriteHeader(http.StatusOK)
	}
	if c.captured {
		if c.body.Len() < 4096 {
			c.body.Write(b)
		}
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// serveDiscovery serves the discovery document prepared once per signing
// key change.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	v := s.Keys.Version()
	p := s.discovery.Load()
	if p == nil || p.version != v {
		ctx := op.ContextWithIssuer(r.Context(), s.Issuer)
		cfg := op.CreateDiscoveryConfig(ctx, s.Provider, s.Storage)
		cfg.ClaimsParameterSupported = true      // its id_token member (oidcstore.ClaimsRequest)
		cfg.RequestURIParameterSupported = false // withAuthorizeRules
		cfg.GrantTypesSupported = advertisedGrants(cfg.GrantTypesSupported)
		// The claims of sesame:institutions (DESIGN §5).
		for _, c := range []string{"sesame_institutions", "occupation", "practice_number", "prescriber_number", "features"} {
			if !slices.Contains(cfg.ClaimsSupported, c) {
				cfg.ClaimsSupported = append(cfg.ClaimsSupported, c)
			}
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			http.Error(w, "discovery unavailable", http.StatusServiceUnavailable)
			return
		}
		p = &prepared{version: v, body: b}
		s.discovery.Store(p)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(p.body)
}

// serveJWKS serves the key set prepared by the key manager.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(s.Keys.JWKS())
}

// readyz answers 200 when every check answers within ReadyTimeout, 503
// otherwise, with the state of each check (never the error text, which may
// carry addresses).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	timeout := s.ReadyTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	results := make(map[string]string, len(s.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ready := true
	for _, c := range s.Checks {
		wg.Go(func() {
			err := c.Ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ready = false
				results[c.Name] = "unavailable"
				s.Logger.Warn("readiness check failed", "check", c.Name, "err", err)
				return
			}
			results[c.Name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": results})
}
