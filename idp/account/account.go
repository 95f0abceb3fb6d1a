package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// ClientID is Sésame's own client: the account pages sign in through the
// same flow as any relying party.
const ClientID = "sesame-account"

// Client is the registration of the account pages' client.
func Client(issuer string, now time.Time) store.Client {
	return users.PageClient(ClientID, issuer+"/account/callback", now)
}

// Users is what the page needs of idp/users.
type Users interface {
	// RemoveSecondFactor removes a method of the user unless it is the
	// last one (users.ErrLastMethod), atomically.
	RemoveSecondFactor(ctx context.Context, userID, credentialID string, event store.AuditEvent) (store.Credential, error)
}

// Handler serves the Security page.
type Handler struct {
	Flow    *flow.Flow
	Web     *web.Kit
	Store   store.Store
	Storage *oidcstore.Storage
	Users   Users
	Issuer  string
	Logger  *slog.Logger
	Now     func() time.Time
	// Audit records events that change nothing (a step-up asked for).
	Audit func(ctx context.Context, e store.AuditEvent) error

	// Passwords verifies the current password and hashes the new one.
	Passwords users.Passwords
	// PasswordFactorWindow is how recent the second factor must be to
	// change the password (DefaultPasswordFactorWindow when zero; never
	// more than the flow's factor window).
	PasswordFactorWindow time.Duration
	// Notify wakes the outbox worker after an email was queued.
	Notify     func()
	SupportURL string
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// Routes mounts the pages.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("GET /account", h.Web.Handle(h.security))
	mux.Handle("GET /account/callback", h.Web.Handle(h.callback))
	mux.Handle("GET /account/methods/add", h.Web.Handle(h.addMethod))
	mux.Handle("POST /account/methods/remove", h.Web.Handle(h.removeMethod))
	mux.Handle("POST /account/recovery", h.Web.Handle(h.regenerate))
	mux.Handle("GET "+PathPassword, h.Web.Handle(h.showPassword))
	mux.Handle("POST "+PathPassword, h.Web.Handle(h.changePassword))
	mux.HandleFunc("POST /account", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, h.Web.Path("/account"), http.StatusSeeOther)
	})
}

// authRequest creates an auth request of the account client. Its code is
// never exchanged (the account pages use the session), but the client is
// public, so the request carries a PKCE challenge like any other; fresh
// forces the password and a second factor again.
func (h *Handler) authRequest(ctx context.Context, fresh bool) (*oidcstore.AuthRequest, error) {
	return h.authRequestTo(ctx, fresh, "")
}

// NewAuthRequest is a new auth request of the account client, for flows
// that other pages run (a forgotten password).
func (h *Handler) NewAuthRequest(ctx context.Context) (*oidcstore.AuthRequest, error) {
	return h.authRequest(ctx, false)
}

// authRequestTo is authRequest whose callback goes back to then, one of
// returnPaths' keys ("": the Security page), named in the state.
func (h *Handler) authRequestTo(ctx context.Context, fresh bool, then string) (*oidcstore.AuthRequest, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	req := &oidc.AuthRequest{
		ClientID: ClientID, RedirectURI: h.Issuer + "/account/callback",
		Scopes: []string{"openid"}, ResponseType: oidc.ResponseTypeCode,
		State:               base64.RawURLEncoding.EncodeToString(secret[:12]) + stateSuffix(then),
		CodeChallenge:       base64.RawURLEncoding.EncodeToString(sum[:]),
		CodeChallengeMethod: oidc.CodeChallengeMethodS256,
	}
	if fresh {
		req.Prompt = []string{oidc.PromptLogin}
		req.MaxAge = oidc.NewMaxAge(0)
	}
	a, err := h.Storage.CreateAuthRequest(ctx, req, "")
	if err != nil {
		return nil, web.Unavailable(err)
	}
	return a.(*oidcstore.AuthRequest), nil
}

// signIn sends the browser through the sign-in flow of the account client.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, fresh bool) error {
	return h.signInTo(w, r, fresh, "")
}

func (h *Handler) signInTo(w http.ResponseWriter, r *http.Request, fresh bool, then string) error {
	if err := h.Flow.AllowRequest(w, r); err != nil {
		return err
	}
	a, err := h.authRequestTo(r.Context(), fresh, then)
	if err != nil {
		return err
	}
	http.Redirect(w, r, h.Web.Path(flow.PathPassword+"?flow="+url.QueryEscape(a.ID)), http.StatusSeeOther)
	return nil
}

// callback burns the code (the account pages use the session, not tokens)
// and shows the Security page.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) error {
	if code := r.URL.Query().Get("code"); code != "" && len(code) < 1024 {
		if a, err := h.Storage.AuthRequestByCode(r.Context(), code); err == nil {
			_ = h.Storage.DeleteAuthRequest(r.Context(), a.GetID())
		}
	}
	target := "/account"
	if _, then, ok := strings.Cut(r.URL.Query().Get("state"), "."); ok {
		if p, known := returnPaths[then]; known {
			target = p
		}
	}
	http.Redirect(w, r, h.Web.Path(target), http.StatusSeeOther)
	return nil
}

// returnPaths are the pages a sign-in of the account client may come back
// to, by the name its state carries (never a URL: no open redirect).
var returnPaths = map[string]string{"password": PathPassword}

func stateSuffix(then string) string {
	if _, ok := returnPaths[then]; ok {
		return "." + then
	}
	return ""
}

// errSignedIn: the handler has sent the browser to sign in.
var errSignedIn = errors.New("account: sign-in started")

// signedIn returns the signed-in user, or starts a sign-in.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) (*session.Session, store.User, error) {
	s, u, err := h.Flow.SignedIn(r)
	if errors.Is(err, flow.ErrSignInNeeded) {
		if err := h.signIn(w, r, false); err != nil {
			return nil, store.User{}, err
		}
		return nil, store.User{}, errSignedIn
	}
	return s, u, err
}

// sensitive returns the user when a second factor was verified within the
// factor window; otherwise it asks for the password and a factor again.
func (h *Handler) sensitive(w http.ResponseWriter, r *http.Request) (*session.Session, store.User, error) {
	if r.Method == http.MethodPost {
		if err := h.Web.CheckPost(w, r); err != nil {
			return nil, store.User{}, err
		}
	}
	s, u, err := h.signedIn(w, r)
	if err != nil {
		return nil, store.User{}, err
	}
	if !h.Flow.Recent(s) {
		if h.Audit != nil {
			if err := h.Audit(r.Context(), h.Flow.Event(r, store.AuditEvent{Type: "session.step_up", ActorID: u.ID, UserID: u.ID,
				ClientID: ClientID, Details: map[string]string{"reason": "factor_window"}})); err != nil {
				return nil, store.User{}, web.Unavailable(err)
			}
		}
		if err := h.signIn(w, r, true); err != nil {
			return nil, store.User{}, err
		}
		return nil, store.User{}, errSignedIn
	}
	return s, u, nil
}

// handled turns errSignedIn into "answered".
func handled(err error) error {
	if errors.Is(err, errSignedIn) {
		return nil
	}
	return err
}

func (h *Handler) security(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.signedIn(w, r)
	if err != nil {
		return handled(err)
	}
	return h.render(w, r, u, "", nil)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, u store.User, notice string, args []any) error {
	lang := h.Web.Lang(w, r, nil, u.Locale)
	factors, err := users.SecondFactors(r.Context(), h.Store, u.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	var methods []templates.SecurityMethod
	for _, c := range factors {
		m := templates.SecurityMethod{ID: c.ID, Type: string(c.Type), Name: c.Name, Added: formatDay(c.CreatedAt)}
		if p := users.CredentialPhone(c); p != "" {
			m.Phone = users.MaskPhone(p) // changed by support only
		}
		if !c.LastUsedAt.IsZero() {
			m.LastUsed = formatDay(c.LastUsedAt)
		}
		if len(factors) > 1 { // never the last one
			m.RemoveAction = h.Web.Path("/account/methods/remove")
		}
		methods = append(methods, m)
	}
	codes, err := h.Store.ListRecoveryCodes(r.Context(), u.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	remaining := 0
	for _, c := range codes {
		if c.UsedAt.IsZero() {
			remaining++
		}
	}
	b := h.Web.Base(w, r, lang)
	b.Notice, b.NoticeArgs = notice, args
	return h.Web.Templates.Security(w, http.StatusOK, templates.SecurityPage{
		Base:              b,
		Username:          u.Username,
		Methods:           methods,
		AddMethodURL:      h.Web.Path("/account/methods/add"),
		RegenerateAction:  h.Web.Path("/account/recovery"),
		RemainingRecovery: remaining,
		PasswordURL:       h.Web.Path(PathPassword),
	})
}

func formatDay(t time.Time) string { return templates.InQuebec(t).Format("2006-01-02 15:04") }

// addMethod starts an enrollment for a signed-in user with a recent second
// factor: a flow of the account client that adds a method.
func (h *Handler) addMethod(w http.ResponseWriter, r *http.Request) error {
	s, u, err := h.sensitive(w, r)
	if err != nil {
		return handled(err)
	}
	a, err := h.authRequest(r.Context(), false)
	if err != nil {
		return err
	}
	return h.Flow.AddMethod(w, r, a, s, u)
}

func (h *Handler) removeMethod(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.sensitive(w, r)
	if err != nil {
		return handled(err)
	}
	id := r.PostFormValue("id")
	removed, err := h.Users.RemoveSecondFactor(r.Context(), u.ID, id,
		h.Flow.Event(r, store.AuditEvent{Type: "mfa.removed", ActorID: u.ID, UserID: u.ID}))
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, users.ErrLastMethod):
		return &web.PublicError{Status: http.StatusBadRequest, Title: "error.forbidden.title", Key: "error.forbidden.message"}
	case err != nil:
		return web.Unavailable(err)
	}
	return h.render(w, r, u, "notice.method_removed", []any{removed.Name})
}

func (h *Handler) regenerate(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.sensitive(w, r)
	if err != nil {
		return handled(err)
	}
	codes, err := users.RegenerateRecoveryCodes(r.Context(), h.Store, u.ID, h.now(),
		h.Flow.Event(r, store.AuditEvent{Type: "mfa.recovery_regenerated", ActorID: u.ID, UserID: u.ID}))
	if err != nil {
		return web.Unavailable(err)
	}
	return h.Web.Templates.RecoveryCodes(w, http.StatusOK, templates.RecoveryCodesPage{
		Base:           h.Web.Base(w, r, h.Web.Lang(w, r, nil, u.Locale)),
		Codes:          codes,
		ContinueAction: h.Web.Path("/account"),
		Regenerated:    true,
	})
}
