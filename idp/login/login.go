package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/templates"
)

// SecondFactor is the MFA gate: called once the password is right, it
// decides what comes next (enrollment, challenge) and, in the end, calls
// Handler.Finish. It is the only way from a password to a code.
type SecondFactor interface {
	Begin(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User)
}

// Handler serves the password step, account activation, the callback
// guard and the logout pages.
type Handler struct {
	Store     store.Store
	Storage   *oidcstore.Storage
	Sessions  *session.Manager
	Networks  session.Networks
	Templates *templates.Engine
	Passwords users.Passwords
	// HashSlots bounds concurrent password hashing (19 MiB each with the
	// OWASP parameters); nil means no bound.
	HashSlots chan struct{}
	Regulator *regulate.Regulator
	Logger    *slog.Logger
	Now       func() time.Time
	// Prefix is the issuer's path ("" at the root).
	Prefix string
	// CallbackURL is op.AuthCallbackURL(provider).
	CallbackURL func(ctx context.Context, authRequestID string) string
	// AuthError answers an auth request with an OAuth error at the relying
	// party (op.AuthRequestError with the provider).
	AuthError func(w http.ResponseWriter, r *http.Request, a op.AuthRequest, err error)
	// Gate is the second-factor step; nil means the password is enough
	// (tests of the provider alone).
	Gate  SecondFactor
	Audit func(ctx context.Context, e store.AuditEvent)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Handler) audit(r *http.Request, e store.AuditEvent) {
	if h.Audit == nil {
		return
	}
	e.At = h.now()
	e.IP = h.Networks.ClientIP(r).String()
	h.Audit(r.Context(), e)
}

// Routes mounts the handler's pages on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", h.showLogin)
	mux.HandleFunc("POST /login", h.postLogin)
	mux.HandleFunc("GET /activate", h.showActivate)
	mux.HandleFunc("POST /activate", h.postActivate)
	mux.HandleFunc("GET /signed-out", h.signedOut)
}

// Lang picks the page language: an explicit choice (?lang= or its cookie),
// then ui_locales, then the user's locale, then Accept-Language.
func (h *Handler) Lang(w http.ResponseWriter, r *http.Request, uiLocales []string, userLocale string) string {
	if l := r.URL.Query().Get("lang"); l == "fr" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "sesame_lang", Value: l, Path: h.path("/"), MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.Sessions.Secure})
		return l
	}
	if c, err := r.Cookie("sesame_lang"); err == nil && (c.Value == "fr" || c.Value == "en") {
		return c.Value
	}
	return templates.Negotiate(strings.Join(uiLocales, " "), userLocale, r.Header.Get("Accept-Language"))
}

func (h *Handler) path(p string) string { return h.Prefix + p }

// Base builds the common page data.
func (h *Handler) Base(w http.ResponseWriter, r *http.Request, lang string) templates.Base {
	return templates.Base{
		Lang:     lang,
		CSRF:     h.Sessions.CSRFToken(w, r),
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

// ErrorPage renders the error page with a message key.
func (h *Handler) ErrorPage(w http.ResponseWriter, r *http.Request, status int, lang, title, message string) {
	if lang == "" {
		lang = h.Lang(w, r, nil, "")
	}
	b := h.Base(w, r, lang)
	_ = h.Templates.Error(w, status, templates.ErrorPage{Base: b, Title: title, Message: message, RequestID: w.Header().Get("X-Request-Id")})
}

// flow loads the auth request named by the "flow" parameter; on failure it
// has answered.
func (h *Handler) flow(w http.ResponseWriter, r *http.Request) (*oidcstore.AuthRequest, bool) {
	id := r.FormValue("flow")
	a, err := h.Storage.AuthRequest(r.Context(), id)
	if err != nil {
		var nf interface{ IsNotFound() }
		if !errors.As(err, &nf) {
			h.Logger.Error("load auth request", "err", err)
		}
		h.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return nil, false
	}
	return a, true
}

// checkPost parses a form POST and checks its CSRF token; on failure it has
// answered.
func (h *Handler) CheckPost(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "", "error.bad_request.title", "error.bad_request.message")
		return false
	}
	if !h.Sessions.CheckCSRF(r) {
		h.ErrorPage(w, r, http.StatusForbidden, "", "error.bad_request.title", "error.csrf")
		return false
	}
	return true
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request) {
	a, ok := h.flow(w, r)
	if !ok {
		return
	}
	if s, err := h.Sessions.Load(r); err == nil {
		switch u, v := h.sessionSatisfies(r, a, s); v {
		case sessionOK:
			h.complete(w, r, a, u, s)
			return
		case sessionNewNetwork:
			h.stepUp(w, r, a, u, s)
			return
		}
	}
	if a.HasPrompt(oidc.PromptNone) {
		h.AuthError(w, r, a, oidc.ErrLoginRequired())
		return
	}
	h.renderLogin(w, r, a, http.StatusOK, a.LoginHint, "")
}

// ShowLogin shows the password step of a flow with an error message key
// (e.g. after a voided challenge).
func (h *Handler) ShowLogin(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, status int, errKey string) {
	h.renderLogin(w, r, a, status, a.LoginHint, errKey)
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, status int, username, errKey string) {
	lang := h.Lang(w, r, a.UILocales, "")
	b := h.Base(w, r, lang)
	b.Error = errKey
	name := a.ClientID
	if c, err := h.Store.GetClient(r.Context(), a.ClientID); err == nil && c.Name != "" {
		name = c.Name
	}
	_ = h.Templates.Login(w, status, templates.LoginPage{
		Base: b, Action: h.path("/login"), Flow: a.ID, Username: username, ClientName: name,
	})
}

// Verdicts on a session for an auth request.
const (
	sessionNo         = iota // sign in again
	sessionOK                // answer from the session
	sessionNewNetwork        // the session holds, but the browser is on a new network: second factor again
)

// sessionSatisfies tells whether the browser's session may answer this
// request: same user as any id_token_hint, within max_age, no
// prompt=login, the acr asked for, an active account — and a second factor
// already verified from the browser's current network (sessionNewNetwork
// otherwise).
func (h *Handler) sessionSatisfies(r *http.Request, a *oidcstore.AuthRequest, s *session.Session) (store.User, int) {
	if a.HasPrompt(oidc.PromptLogin) {
		return store.User{}, sessionNo
	}
	if a.MaxAge != nil && h.now().Sub(s.AuthTime) > maxAge(*a.MaxAge) {
		return store.User{}, sessionNo
	}
	if a.HintSubject != "" && a.HintSubject != s.UserID {
		return store.User{}, sessionNo
	}
	if !acrSatisfied(a.ACRValues, s.ACR) {
		return store.User{}, sessionNo
	}
	u, err := h.Store.GetUser(r.Context(), s.UserID)
	if err != nil || u.Status != store.StatusActive {
		return store.User{}, sessionNo
	}
	// A session without a second factor (an account in its grace period)
	// ends with the grace period.
	if !slices.Contains(s.AMR, "mfa") && !h.now().Before(u.MFAGraceUntil) {
		return store.User{}, sessionNo
	}
	if !s.VerifiedOn(h.Networks.Of(h.Networks.ClientIP(r))) {
		return u, sessionNewNetwork
	}
	return u, sessionOK
}

// stepUp asks a signed-in browser that moved to another network for a
// second factor again, keeping its session (DESIGN §4): the flow starts
// past the password, at the gate.
func (h *Handler) stepUp(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, s *session.Session) {
	if a.HasPrompt(oidc.PromptNone) || h.Gate == nil {
		h.AuthError(w, r, a, oidc.ErrInteractionRequired().WithDescription("a second factor is required from this network"))
		return
	}
	h.Sessions.Browser(w, r)
	a.Flow = oidcstore.Flow{
		Browser:    h.Sessions.BrowserHash(r),
		UserID:     u.ID,
		PasswordAt: s.AuthTime,
		Round:      a.Flow.Round + 1,
	}
	if err := h.Storage.SaveAuthRequest(r.Context(), a); err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return
	}
	h.audit(r, store.AuditEvent{Type: "session.step_up", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
		Details: map[string]string{"network": h.Networks.Of(h.Networks.ClientIP(r))}})
	h.Gate.Begin(w, r, a, u)
}

// maxAge converts max_age without overflowing (a century is "any").
func maxAge(seconds uint) time.Duration {
	const limit = 100 * 365 * 24 * 3600
	return time.Duration(min(seconds, limit)) * time.Second
}

// ACR values Sésame asserts.
const (
	// ACRMFA: a password and a second factor.
	ACRMFA = "urn:sesame:acr:mfa"
	// ACRPhishingResistant: a second factor bound to the origin (passkey).
	ACRPhishingResistant = "urn:sesame:acr:phr"
)

// acrSatisfied: requested acr_values are alternatives; the session's acr
// must be at least one of them (phr satisfies mfa).
func acrSatisfied(requested []string, have string) bool {
	if len(requested) == 0 {
		return true
	}
	for _, want := range requested {
		if want == have || (want == ACRMFA && have == ACRPhishingResistant) {
			return true
		}
	}
	// Unknown values are not ours to refuse (OIDC Core §3.1.2.1: voluntary).
	return !slices.ContainsFunc(requested, func(v string) bool { return v == ACRMFA || v == ACRPhishingResistant })
}

// complete answers the auth request from an existing session.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, s *session.Session) {
	a.Flow.Browser = h.Sessions.BrowserHash(r)
	if a.Flow.Browser == "" {
		h.Sessions.Browser(w, r)
		a.Flow.Browser = h.Sessions.BrowserHash(r)
	}
	a.Flow.UserID = u.ID
	a.Flow.Done = true
	a.Flow.AuthTime = s.AuthTime
	a.Flow.AMR = s.AMR
	a.Flow.ACR = s.ACR
	a.Flow.SessionID = s.ID
	a.Flow.Step = "done"
	if err := h.Storage.SaveAuthRequest(r.Context(), a); err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return
	}
	http.Redirect(w, r, h.CallbackURL(r.Context(), a.ID), http.StatusFound)
}

func (h *Handler) postLogin(w http.ResponseWriter, r *http.Request) {
	if !h.CheckPost(w, r) {
		return
	}
	a, ok := h.flow(w, r)
	if !ok {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	if username == "" || password == "" || len(username) > 256 || len(password) > 1024 {
		h.renderLogin(w, r, a, http.StatusBadRequest, username, "error.credentials")
		return
	}
	ip := h.Networks.ClientIP(r)
	subject := store.FoldUsername(username)
	if ok, err := h.Regulator.Attempt(r.Context(), regulate.Password, subject, ip.String()); err != nil {
		h.Logger.Error("throttle", "err", err)
		h.ErrorPage(w, r, http.StatusServiceUnavailable, "", "error.generic.title", "error.generic.message")
		return
	} else if !ok {
		h.audit(r, store.AuditEvent{Type: "login.throttled", Details: map[string]string{"username": username}})
		h.renderLogin(w, r, a, http.StatusTooManyRequests, username, "error.throttled")
		return
	}

	if h.HashSlots != nil {
		select {
		case h.HashSlots <- struct{}{}:
			defer func() { <-h.HashSlots }()
		case <-r.Context().Done():
			return
		}
	}
	u, err := h.Store.GetUserByUsername(r.Context(), username)
	var phc string
	if err == nil && u.Status == store.StatusActive {
		if creds, cerr := h.Store.ListCredentials(r.Context(), u.ID, store.CredPassword); cerr == nil && len(creds) > 0 {
			phc = string(creds[0].Secret)
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.Logger.Error("load user", "err", err)
		h.ErrorPage(w, r, http.StatusServiceUnavailable, "", "error.generic.title", "error.generic.message")
		return
	}
	if phc == "" {
		// Unknown user, inactive account or no password: same answer, same
		// cost as a wrong password.
		h.Passwords.DummyVerify(password)
		h.audit(r, store.AuditEvent{Type: "login.failed", UserID: u.ID, ClientID: a.ClientID, Details: map[string]string{"reason": "unknown_or_inactive"}})
		h.renderLogin(w, r, a, http.StatusUnauthorized, username, "error.credentials")
		return
	}
	ok, rehash, err := h.Passwords.Verify(phc, password)
	if err != nil || !ok {
		if err != nil {
			h.Logger.Error("verify password", "user_id", u.ID, "err", err)
		}
		h.audit(r, store.AuditEvent{Type: "login.failed", UserID: u.ID, ClientID: a.ClientID, Details: map[string]string{"reason": "password"}})
		h.renderLogin(w, r, a, http.StatusUnauthorized, username, "error.credentials")
		return
	}
	h.Regulator.Reset(r.Context(), regulate.Password, subject)
	if rehash {
		if phc, err := h.Passwords.Hash(password); err == nil {
			_ = h.Store.SetPassword(r.Context(), u.ID, phc, h.now())
		}
	}
	h.audit(r, store.AuditEvent{Type: "login.password_ok", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID})

	a.Flow = oidcstore.Flow{
		Browser:    h.Sessions.BrowserHash(r),
		UserID:     u.ID,
		PasswordAt: h.now(),
		Round:      a.Flow.Round + 1,
	}
	if err := h.Storage.SaveAuthRequest(r.Context(), a); err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return
	}
	if h.Gate == nil {
		h.Finish(w, r, a, u, []string{"pwd"}, "")
		return
	}
	h.Gate.Begin(w, r, a, u)
}

// Finish ends a sign-in whose every step succeeded: the session starts
// under a new cookie, the auth request is marked done, and the browser
// goes to the provider's callback.
func (h *Handler) Finish(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, amr []string, acr string) {
	now := h.now()
	network := h.Networks.Of(h.Networks.ClientIP(r))
	s := session.Session{
		UserID:   u.ID,
		AuthTime: a.Flow.PasswordAt,
		AMR:      amr,
		ACR:      acr,
	}
	if s.AuthTime.IsZero() {
		s.AuthTime = now
	}
	// The network from which every required factor was just verified, plus
	// those of the browser's session for the same user (a step-up).
	s.Networks = []string{network}
	if old, err := h.Sessions.Load(r); err == nil && old.UserID == u.ID && old.AuthTime.Equal(s.AuthTime) {
		for _, n := range old.Networks {
			if !slices.Contains(s.Networks, n) && len(s.Networks) < 16 {
				s.Networks = append(s.Networks, n)
			}
		}
	}
	if slices.Contains(amr, "mfa") {
		s.FactorAt = now
	}
	started, err := h.Sessions.Start(w, r, s)
	if err != nil {
		h.Logger.Error("start session", "err", err)
		h.ErrorPage(w, r, http.StatusServiceUnavailable, "", "error.generic.title", "error.generic.message")
		return
	}
	a.Flow.Done = true
	a.Flow.Step = "done"
	a.Flow.AuthTime = s.AuthTime
	a.Flow.AMR = amr
	a.Flow.ACR = acr
	a.Flow.SessionID = started.ID
	if err := h.Storage.SaveAuthRequest(r.Context(), a); err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return
	}
	h.audit(r, store.AuditEvent{Type: "login.succeeded", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
		Details: map[string]string{"amr": strings.Join(amr, " ")}})
	http.Redirect(w, r, h.CallbackURL(r.Context(), a.ID), http.StatusFound)
}

// GuardCallback lets the provider's callback run only for a finished
// sign-in, in the browser that did it: a forged or replayed callback URL
// gets an error page, never a code.
func (h *Handler) GuardCallback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := h.Storage.AuthRequest(r.Context(), r.URL.Query().Get("id"))
		if err != nil || !a.Done() || a.Flow.Browser == "" || a.Flow.Browser != h.Sessions.BrowserHash(r) {
			h.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request) {
	lang := h.Lang(w, r, nil, "")
	_ = h.Templates.SignedOut(w, http.StatusOK, templates.SignedOutPage{Base: h.Base(w, r, lang)})
}

// EndSession serves RP-initiated logout: the request is validated by
// zitadel/oidc (registered post_logout_redirect_uri only, state echoed);
// the browser session ends; a bad request gets an error page.
func (h *Handler) EndSession(provider op.OpenIDProvider, issuer string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		req, err := op.ParseEndSessionRequest(r, provider.Decoder())
		if err != nil {
			h.ErrorPage(w, r, http.StatusBadRequest, "", "error.bad_request.title", "error.logout_invalid")
			return
		}
		ctx := op.ContextWithIssuer(r.Context(), issuer)
		es, err := op.ValidateEndSessionRequest(ctx, req, provider)
		if err != nil {
			h.ErrorPage(w, r, http.StatusBadRequest, "", "error.bad_request.title", "error.logout_invalid")
			return
		}
		if s, err := h.Sessions.Load(r); err == nil && es.UserID == "" {
			es.UserID = s.UserID
		}
		h.Sessions.End(w, r)
		redirect, err := h.Storage.TerminateSessionFromRequest(ctx, es)
		if err != nil {
			h.ErrorPage(w, r, http.StatusBadRequest, "", "error.bad_request.title", "error.logout_invalid")
			return
		}
		if _, err := url.Parse(redirect); err != nil {
			redirect = h.path("/signed-out")
		}
		http.Redirect(w, r, redirect, http.StatusFound)
	})
}
