package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// Handler serves the password step, account activation and the logout
// pages. It reports a right password to the flow, which decides the rest.
type Handler struct {
	Flow      *flow.Flow
	Web       *web.Kit
	Store     store.Store
	Storage   *oidcstore.Storage
	Sessions  *session.Manager
	Passwords users.Passwords
	// HashSlots bounds concurrent password hashing (19 MiB each with the
	// OWASP parameters); nil means no bound.
	HashSlots chan struct{}
	Regulator *regulate.Regulator
	// Provider validates logout requests.
	Provider op.OpenIDProvider
	Issuer   string
	Logger   *slog.Logger
	Now      func() time.Time
	Audit    func(ctx context.Context, e store.AuditEvent) error

	// NewFlow creates an auth request of Sésame's own account client (the
	// forgotten-password flow runs in one).
	NewFlow func(ctx context.Context) (*oidcstore.AuthRequest, error)
	// Notify wakes the outbox worker after an email was queued.
	Notify func()
	// SupportURL is given to users who cannot reset their password alone.
	SupportURL string
	// ResetBudget is the least time a forgotten-password request takes
	// (DefaultResetBudget when zero); Pad, when set, replaces the wait
	// (tests record it).
	ResetBudget time.Duration
	Pad         func(ctx context.Context, started time.Time, budget time.Duration)
	// Forgotten-password quotas; zero: ResetPerAccount, ResetPerNetwork.
	ResetPerAccount, ResetPerNetwork regulate.Quota
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// audit records e; an error fails the action it records.
func (h *Handler) audit(r *http.Request, e store.AuditEvent) error {
	if h.Audit != nil {
		return h.Audit(r.Context(), h.Flow.Event(r, e))
	}
	return nil
}

// Routes mounts the handler's pages on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("GET /login", h.Web.Handle(h.showLogin))
	mux.Handle("POST /login", h.Web.Handle(h.postLogin))
	mux.Handle("GET /activate", h.Web.Handle(h.showActivate))
	mux.Handle("POST /activate", h.Web.Handle(h.postActivate))
	mux.Handle("GET /signed-out", h.Web.Handle(h.signedOut))
	mux.Handle("GET /password/forgot", h.Web.Handle(h.showForgot))
	mux.Handle("POST /password/forgot", h.Web.Handle(h.postForgot))
	mux.Handle("GET "+flow.PathReset, h.Web.Handle(h.showReset))
	mux.Handle("POST "+flow.PathReset, h.Web.Handle(h.postReset))
	mux.Handle("POST /password/reset/start", h.Web.Handle(h.startReset))
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request) error {
	a, err := h.Flow.Request(r)
	if err != nil {
		return err
	}
	if handled, err := h.Flow.Start(w, r, a); handled || err != nil {
		return err
	}
	status := http.StatusOK
	if a.Flow.Notice != "" {
		// A voided challenge sent the browser back here.
		status = http.StatusUnauthorized
	}
	return h.renderLogin(w, r, a, status, a.LoginHint, a.Flow.Notice)
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, status int, username, errKey string) error {
	return h.renderLoginWith(w, r, a, status, username, errKey)
}

func (h *Handler) renderLoginWith(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, status int, username, errKey string, args ...any) error {
	lang := h.Web.Lang(w, r, a.UILocales, "")
	b := h.Web.Base(w, r, lang)
	b.Error, b.ErrorArgs = errKey, args
	name := a.ClientID
	if c, err := h.Store.GetClient(r.Context(), a.ClientID); err == nil && c.Name != "" {
		name = c.Name
	}
	return h.Web.Templates.Login(w, status, templates.LoginPage{
		Base: b, Action: h.Web.Path("/login"), Flow: a.ID, Username: username, ClientName: name,
		ForgotURL: h.Web.Path("/password/forgot"),
	})
}

func (h *Handler) postLogin(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	a, err := h.Flow.Request(r)
	if err != nil {
		return err
	}
	if a.Flow.Done {
		return web.Expired()
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	if username == "" || password == "" || len(username) > 256 || len(password) > 1024 {
		return h.renderLogin(w, r, a, http.StatusBadRequest, username, "error.credentials")
	}
	att := regulate.Attempt{Kind: regulate.KindPassword, Account: store.FoldUsername(username),
		IP: h.Flow.Networks.ClientIP(r), Device: h.Sessions.Device(r)}
	if v, err := h.Regulator.Check(r.Context(), att); err != nil {
		return web.Unavailable(err)
	} else if !v.Allowed {
		if err := h.audit(r, store.AuditEvent{Type: "login.throttled", ClientID: a.ClientID,
			Details: map[string]string{"username": att.Account, "reason": string(v.Reason)}}); err != nil {
			return web.Unavailable(err)
		}
		w.Header().Set("Retry-After", strconv.Itoa(v.RetryAfterSeconds()))
		lang := h.Web.Lang(w, r, a.UILocales, "")
		return h.renderLoginWith(w, r, a, http.StatusTooManyRequests, username, "error.throttled_wait", web.FormatWait(lang, v.RetryAfter))
	}

	if h.HashSlots != nil {
		select {
		case h.HashSlots <- struct{}{}:
			defer func() { <-h.HashSlots }()
		case <-r.Context().Done():
			return nil
		}
	}
	u, err := h.Store.GetUserByUsername(r.Context(), username)
	var phc string
	if err == nil && u.Status == store.StatusActive {
		creds, err := h.Store.ListCredentials(r.Context(), u.ID, store.CredPassword)
		if err != nil {
			return web.Unavailable(err)
		}
		if len(creds) > 0 {
			phc = string(creds[0].Secret)
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return web.Unavailable(err)
	}
	if phc == "" {
		// Unknown user, inactive account or no password: same answer, same
		// cost as a wrong password.
		h.Passwords.DummyVerify(password)
		if err := h.Regulator.Fail(r.Context(), att); err != nil {
			return web.Unavailable(err)
		}
		if err := h.audit(r, store.AuditEvent{Type: "login.failed", UserID: u.ID, ClientID: a.ClientID, Details: map[string]string{"reason": "unknown_or_inactive"}}); err != nil {
			return web.Unavailable(err)
		}
		return h.renderLogin(w, r, a, http.StatusUnauthorized, username, "error.credentials")
	}
	ok, rehash, err := h.Passwords.Verify(phc, password)
	if err != nil || !ok {
		if err != nil {
			h.Logger.Error("verify password", "user_id", u.ID, "err", err)
		}
		if err := h.Regulator.Fail(r.Context(), att); err != nil {
			return web.Unavailable(err)
		}
		if err := h.audit(r, store.AuditEvent{Type: "login.failed", UserID: u.ID, ClientID: a.ClientID, Details: map[string]string{"reason": "password"}}); err != nil {
			return web.Unavailable(err)
		}
		return h.renderLogin(w, r, a, http.StatusUnauthorized, username, "error.credentials")
	}
	att.Device = h.Sessions.RememberDevice(w, r)
	if err := h.Regulator.Succeed(r.Context(), att); err != nil {
		return web.Unavailable(err)
	}
	if rehash {
		if phc, err := h.Passwords.Hash(password); err == nil {
			_ = h.Store.SetPassword(r.Context(), u.ID, phc, h.now())
		}
	}
	if err := h.audit(r, store.AuditEvent{Type: "login.password_ok", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID}); err != nil {
		return web.Unavailable(err)
	}
	return h.Flow.PasswordOK(w, r, a, u)
}

func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request) error {
	lang := h.Web.Lang(w, r, nil, "")
	return h.Web.Templates.SignedOut(w, http.StatusOK, templates.SignedOutPage{Base: h.Web.Base(w, r, lang)})
}

// EndSession serves RP-initiated logout (OIDC RP-Initiated Logout 1.0):
// the request is validated by zitadel/oidc (registered
// post_logout_redirect_uri only, state echoed). With an id_token_hint of
// the browser's user the browser is signed out at once; otherwise Sésame
// asks first (a form POST with its CSRF token), so a cross-site link
// cannot sign anyone out. Signing out ends the browser session and revokes
// the tokens issued to it.
func (h *Handler) EndSession() http.Handler {
	return h.Web.Handle(func(w http.ResponseWriter, r *http.Request) error {
		invalid := &web.PublicError{Status: http.StatusBadRequest, Key: "error.logout_invalid"}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			if err := h.Web.CheckPost(w, r); err != nil {
				return err
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			return &web.PublicError{Status: http.StatusMethodNotAllowed, Key: "error.bad_request.message"}
		}
		r.Body = http.MaxBytesReader(w, r.Body, web.MaxFormBytes)
		req, err := op.ParseEndSessionRequest(r, h.Provider.Decoder())
		if err != nil {
			return invalid
		}
		ctx := op.ContextWithIssuer(r.Context(), h.Issuer)
		es, err := op.ValidateEndSessionRequest(ctx, req, h.Provider)
		if err != nil {
			if web.IsUnavailable(err) {
				return web.Unavailable(err)
			}
			return invalid
		}
		s, err := h.Sessions.Load(r)
		if err != nil && !errors.Is(err, session.ErrNoSession) {
			return web.Unavailable(err)
		}
		confirmed := r.Method == http.MethodPost || (s != nil && es.UserID != "" && es.UserID == s.UserID)
		if s != nil && !confirmed {
			return h.confirmLogout(w, r, req)
		}
		if s != nil {
			es.UserID = s.UserID
			h.Sessions.End(w, r)
			if err := h.Storage.RevokeSession(r.Context(), s.ID); err != nil {
				return web.Unavailable(err)
			}
		}
		redirect, err := h.Storage.TerminateSessionFromRequest(ctx, es)
		if err != nil {
			return web.Unavailable(err) // its audit event was not written
		}
		if _, err := url.Parse(redirect); err != nil || redirect == "" {
			redirect = h.Web.Path("/signed-out")
		}
		http.Redirect(w, r, redirect, http.StatusFound)
		return nil
	})
}

// confirmLogout asks the browser's user before signing out.
func (h *Handler) confirmLogout(w http.ResponseWriter, r *http.Request, req *oidc.EndSessionRequest) error {
	params := map[string]string{}
	for k, v := range map[string]string{
		"client_id": req.ClientID, "post_logout_redirect_uri": req.PostLogoutRedirectURI,
		"state": req.State, "ui_locales": strings.Join(localeStrings(req.UILocales), " "),
	} {
		if v != "" {
			params[k] = v
		}
	}
	lang := h.Web.Lang(w, r, localeStrings(req.UILocales), "")
	return h.Web.Templates.LogoutConfirm(w, http.StatusOK, templates.LogoutConfirmPage{
		Base: h.Web.Base(w, r, lang), Action: h.Web.Path("/end_session"), Params: params,
		Cancel: h.Web.Path("/account"),
	})
}

func localeStrings(l oidc.Locales) []string {
	out := make([]string, 0, len(l))
	for _, t := range l {
		out = append(out, t.String())
	}
	return out
}
