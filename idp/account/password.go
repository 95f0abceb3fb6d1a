package account

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// PathPassword is the password change (form#password-change).
const PathPassword = "/account/password"

// DefaultPasswordFactorWindow: a password change needs a second factor
// verified within five minutes.
const DefaultPasswordFactorWindow = 5 * time.Minute

func (h *Handler) passwordWindow() time.Duration {
	if h.PasswordFactorWindow > 0 {
		return h.PasswordFactorWindow
	}
	return DefaultPasswordFactorWindow
}

// freshFactor returns the signed-in user when a second factor was
// verified within the password window; otherwise it sends the browser
// through the password and a second factor again, back to the form.
func (h *Handler) freshFactor(w http.ResponseWriter, r *http.Request) (*session.Session, store.User, error) {
	if r.Method == http.MethodPost {
		if err := h.Web.CheckPost(w, r); err != nil {
			return nil, store.User{}, err
		}
	}
	s, u, err := h.Flow.SignedIn(r)
	if err == nil && h.Flow.RecentWithin(s, h.passwordWindow()) {
		return s, u, nil
	}
	if err != nil && !errors.Is(err, flow.ErrSignInNeeded) {
		return nil, store.User{}, err
	}
	if err := h.signInTo(w, r, true, "password"); err != nil {
		return nil, store.User{}, err
	}
	return nil, store.User{}, errSignedIn
}

func (h *Handler) renderPassword(w http.ResponseWriter, r *http.Request, u store.User, status int, errKey string, args ...any) error {
	b := h.Web.Base(w, r, h.Web.Lang(w, r, nil, u.Locale))
	b.Error, b.ErrorArgs = errKey, args
	return h.Web.Templates.Password(w, status, templates.PasswordPage{
		Base: b, Mode: "change", Action: h.Web.Path(PathPassword), Username: u.Username,
		MinLength: users.MinPasswordLen, BackURL: h.Web.Path("/account"),
	})
}

func (h *Handler) showPassword(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.freshFactor(w, r)
	if err != nil {
		return handled(err)
	}
	return h.renderPassword(w, r, u, http.StatusOK, "")
}

// changePassword checks the current password (throttled like the sign-in
// page's), applies the policy of activation, stores the new password with
// its audit event and email, and signs the user's other sessions out.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) error {
	s, u, err := h.freshFactor(w, r)
	if err != nil {
		return handled(err)
	}
	current := r.PostFormValue("current_password")
	pw, confirm := r.PostFormValue("password"), r.PostFormValue("password_confirm")
	if current == "" || len(current) > 1024 {
		return h.renderPassword(w, r, u, http.StatusBadRequest, "error.password_current")
	}
	att := regulate.Attempt{Kind: regulate.KindPassword, Account: store.FoldUsername(u.Username),
		IP: h.Flow.Networks.ClientIP(r), Device: h.Flow.Sessions.Device(r)}
	if v, err := h.Flow.Regulator.Check(r.Context(), att); err != nil {
		return web.Unavailable(err)
	} else if !v.Allowed {
		h.audit(r, store.AuditEvent{Type: "password.change_throttled", ActorID: u.ID, UserID: u.ID, Details: map[string]string{"reason": string(v.Reason)}})
		lang := h.Web.Lang(w, r, nil, u.Locale)
		w.Header().Set("Retry-After", strconv.Itoa(v.RetryAfterSeconds()))
		return h.renderPassword(w, r, u, http.StatusTooManyRequests, "error.throttled_wait", web.FormatWait(lang, v.RetryAfter))
	}
	creds, err := h.Store.ListCredentials(r.Context(), u.ID, store.CredPassword)
	if err != nil {
		return web.Unavailable(err)
	}
	ok := false
	if len(creds) > 0 {
		ok, _, err = h.Passwords.Verify(string(creds[0].Secret), current)
		if err != nil {
			h.Logger.Error("verify password", "user_id", u.ID, "err", err)
		}
	} else {
		h.Passwords.DummyVerify(current)
	}
	if !ok {
		if err := h.Flow.Regulator.Fail(r.Context(), att); err != nil {
			return web.Unavailable(err)
		}
		h.audit(r, store.AuditEvent{Type: "password.change_failed", ActorID: u.ID, UserID: u.ID, Details: map[string]string{"reason": "current_password"}})
		return h.renderPassword(w, r, u, http.StatusUnauthorized, "error.password_current")
	}
	if err := h.Flow.Regulator.Succeed(r.Context(), att); err != nil {
		return web.Unavailable(err)
	}
	if pw != confirm {
		return h.renderPassword(w, r, u, http.StatusBadRequest, "error.password_mismatch")
	}
	if err := users.CheckPasswordPolicy(pw, u.Username); err != nil {
		return h.renderPassword(w, r, u, http.StatusBadRequest, policyKey(err))
	}
	phc, err := h.Passwords.Hash(pw)
	if err != nil {
		return web.Unavailable(err)
	}
	if err := h.Flow.SetPassword(r, u, phc, false, h.SupportURL); err != nil {
		return web.Unavailable(err)
	}
	if h.Notify != nil {
		h.Notify()
	}
	if _, err := h.Flow.SignOutEverywhere(r.Context(), u.ID, s.ID); err != nil {
		return web.Unavailable(err)
	}
	return h.render(w, r, u, "notice.password_changed", nil)
}

func (h *Handler) audit(r *http.Request, e store.AuditEvent) {
	if h.Flow.Audit != nil {
		h.Flow.Audit(r.Context(), h.Flow.Event(r, e))
	}
}

func policyKey(err error) string {
	switch {
	case errors.Is(err, users.ErrPasswordTooShort):
		return "error.password_short"
	case errors.Is(err, users.ErrPasswordTooLong):
		return "error.password_long"
	default:
		return "error.password_common"
	}
}
