package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// The forgotten password (DESIGN §5: form#password-forgot,
// form#password-reset-link, form#password-reset).
//
// The answer to a request is the same page whether an account matches or
// not, and it comes after the same time budget (ResetBudget) in both
// cases: the work done for a real account (a token, an email in the
// outbox) hides inside it. The emailed link works once, for ResetTTL, and
// only until a newer one is sent; it is used by a POST (link scanners open
// GETs) and leads to a second factor through the flow, then to the new
// password, which signs every session out.

// ResetKind names forgotten-password tokens in the store.
const ResetKind = users.PasswordResetKind

// ResetTTL is how long a forgotten-password link works.
const ResetTTL = 30 * time.Minute

// DefaultResetBudget is how long the answer to a forgotten-password
// request takes at least, whether the account exists or not.
const DefaultResetBudget = 300 * time.Millisecond

// Reset quotas (the defaults of Handler.ResetPerAccount and
// ResetPerNetwork): emails per account name, and requests per network.
var (
	ResetPerAccount = regulate.Quota{Name: "pwreset-a", Limit: 3, Window: 15 * time.Minute}
	ResetPerNetwork = regulate.Quota{Name: "pwreset-n", Limit: 20, Window: time.Hour}
)

func or(q, def regulate.Quota) regulate.Quota {
	if q == (regulate.Quota{}) {
		return def
	}
	return q
}

func (h *Handler) resetBudget() time.Duration {
	if h.ResetBudget > 0 {
		return h.ResetBudget
	}
	return DefaultResetBudget
}

// pad waits until budget has passed since started (a real clock, not the
// injected one: it hides work, it measures no policy).
func (h *Handler) pad(ctx context.Context, started time.Time) {
	if h.Pad != nil {
		h.Pad(ctx, started, h.resetBudget())
		return
	}
	t := time.NewTimer(h.resetBudget() - time.Since(started))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (h *Handler) renderPassword(w http.ResponseWriter, r *http.Request, lang string, status int, p templates.PasswordPage, errKey string, args ...any) error {
	p.Base = h.Web.Base(w, r, lang)
	p.Base.Error, p.Base.ErrorArgs = errKey, args
	if p.MinLength == 0 {
		p.MinLength = users.MinPasswordLen
	}
	// Never let a token leak through the Referer of anything on the page.
	w.Header().Set("Referrer-Policy", "no-referrer")
	return h.Web.Templates.Password(w, status, p)
}

func (h *Handler) showForgot(w http.ResponseWriter, r *http.Request) error {
	lang := h.Web.Lang(w, r, nil, "")
	return h.renderPassword(w, r, lang, http.StatusOK, templates.PasswordPage{Mode: "forgot", Action: h.Web.Path("/password/forgot")}, "")
}

func (h *Handler) postForgot(w http.ResponseWriter, r *http.Request) error {
	started := time.Now()
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	lang := h.Web.Lang(w, r, nil, "")
	name := strings.TrimSpace(r.PostFormValue("username"))
	form := templates.PasswordPage{Mode: "forgot", Action: h.Web.Path("/password/forgot")}
	if name == "" || users.CheckText("username", name, 254) != nil {
		return h.renderPassword(w, r, lang, http.StatusBadRequest, form, "error.bad_request.message")
	}
	form.Username = name
	account := store.FoldUsername(name)
	ip := h.Flow.Networks.ClientIP(r)
	// Counted whether the account exists or not: the refusal says nothing.
	for _, q := range []func() (regulate.Verdict, error){
		func() (regulate.Verdict, error) {
			return h.Regulator.AllowFromNetwork(r.Context(), or(h.ResetPerNetwork, ResetPerNetwork), ip)
		},
		func() (regulate.Verdict, error) {
			return h.Regulator.Allow(r.Context(), or(h.ResetPerAccount, ResetPerAccount), account)
		},
	} {
		v, err := q()
		if err != nil {
			return web.Unavailable(err)
		}
		if !v.Allowed {
			h.audit(r, store.AuditEvent{Type: "password.reset_throttled", Details: map[string]string{"username": account}})
			w.Header().Set("Retry-After", strconv.Itoa(v.RetryAfterSeconds()))
			return h.renderPassword(w, r, lang, http.StatusTooManyRequests, form, "error.throttled_wait", web.FormatWait(lang, v.RetryAfter))
		}
	}
	sent, err := h.sendReset(r, account)
	if err != nil {
		return web.Unavailable(err)
	}
	if sent > 0 && h.Notify != nil {
		h.Notify()
	}
	h.audit(r, store.AuditEvent{Type: "password.reset_requested", Details: map[string]string{"username": account, "emails": strconv.Itoa(sent)}})
	h.pad(r.Context(), started)
	return h.renderPassword(w, r, lang, http.StatusOK, templates.PasswordPage{Mode: "sent"}, "")
}

// sendReset queues a link for each active account named account (its
// username, or its email), and returns how many.
func (h *Handler) sendReset(r *http.Request, account string) (int, error) {
	ctx := r.Context()
	var found []store.User
	u, err := h.Store.GetUserByUsername(ctx, account)
	switch {
	case err == nil:
		found = append(found, u)
	case !errors.Is(err, store.ErrNotFound):
		return 0, err
	case strings.Contains(account, "@"):
		if found, err = h.Store.ListUsersByEmail(ctx, strings.TrimSpace(account)); err != nil {
			return 0, err
		}
		found = found[:min(len(found), 5)]
	}
	n := 0
	for _, u := range found {
		if u.Status != store.StatusActive || u.Email == "" {
			continue
		}
		if err := h.queueReset(r, u); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// queueReset creates a link for u and its email, with the audit event, in
// one transaction.
func (h *Handler) queueReset(r *http.Request, u store.User) error {
	ctx := r.Context()
	now := h.now()
	var b [32]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	lang := templates.UserLang(u.Locale)
	subject, text, html, err := h.Web.Templates.Email(lang, "password_reset", templates.PasswordResetEmail{
		GivenName: u.GivenName, Username: u.Username, Minutes: int(ResetTTL / time.Minute),
		Link: h.Issuer + "/password/reset?" + url.Values{"token": {token}}.Encode(),
	})
	if err != nil {
		return err
	}
	hash := oidcstore.HashToken(token)
	return h.Store.InTx(ctx, func(tx store.Tx) error {
		// Only the latest link works (under the user's lock: two requests
		// at once leave one link).
		if err := tx.LockUser(ctx, u.ID); err != nil {
			return err
		}
		if _, err := tx.ExpireActionTokens(ctx, u.ID, ResetKind, now); err != nil {
			return err
		}
		if err := tx.CreateActionToken(ctx, store.ActionToken{Hash: hash, Kind: ResetKind, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}); err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(ctx, h.Flow.Event(r, store.AuditEvent{Type: "password.reset_link_sent", ActorID: u.ID, UserID: u.ID})); err != nil {
			return err
		}
		return notify.EnqueueEmail(ctx, tx, "password_reset:"+hash, notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: lang}, now)
	})
}

func (h *Handler) errResetLink(lang string) error {
	return &web.PublicError{Status: http.StatusBadRequest, Lang: lang, Title: "password.forgot.title", Key: "error.reset_link_invalid"}
}

// showReset is the emailed link (?token=), or the new-password form of a
// flow whose second factor was verified (?flow=).
func (h *Handler) showReset(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Has("flow") {
		st, err := h.Flow.LoadReset(w, r)
		if err != nil {
			return err
		}
		return h.renderNewPassword(w, r, st, http.StatusOK, "")
	}
	lang := h.Web.Lang(w, r, nil, "")
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 128 {
		return h.errResetLink(lang)
	}
	return h.renderPassword(w, r, lang, http.StatusOK, templates.PasswordPage{Mode: "link", Action: h.Web.Path("/password/reset/start"), Token: token}, "")
}

func (h *Handler) renderNewPassword(w http.ResponseWriter, r *http.Request, st *flow.State, status int, errKey string) error {
	return h.renderPassword(w, r, st.Lang, status, templates.PasswordPage{Mode: "reset", Action: h.Web.Path(flow.PathReset), Flow: st.A.ID}, errKey)
}

// errNoFactor rolls back the use of a link whose user has no factor.
var errNoFactor = errors.New("login: no second factor")

// startReset uses the link, once, and asks for a second factor.
func (h *Handler) startReset(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	lang := h.Web.Lang(w, r, nil, "")
	token := r.PostFormValue("token")
	if token == "" || len(token) > 128 {
		return h.errResetLink(lang)
	}
	if h.NewFlow == nil {
		return web.Unavailable(errors.New("login: no NewFlow"))
	}
	var u store.User
	err := h.Store.InTx(r.Context(), func(tx store.Tx) error {
		t, err := tx.ConsumeActionToken(r.Context(), oidcstore.HashToken(token), ResetKind, h.now())
		if err != nil {
			return err
		}
		if u, err = tx.GetUser(r.Context(), t.UserID); err != nil {
			return err
		}
		if u.Status != store.StatusActive {
			return store.ErrNotFound
		}
		creds, err := tx.ListCredentials(r.Context(), u.ID, "")
		if err != nil {
			return err
		}
		for _, c := range creds {
			if c.Type != store.CredPassword && !c.VerifiedAt.IsZero() {
				return tx.AppendAuditEvent(r.Context(), h.Flow.Event(r, store.AuditEvent{Type: "password.reset_link_used", ActorID: u.ID, UserID: u.ID}))
			}
		}
		return errNoFactor // rolls back: the link is not used up
	})
	switch {
	case errors.Is(err, errNoFactor):
		return h.noFactor(w, r, u)
	case errors.Is(err, store.ErrNotFound):
		return h.errResetLink(lang)
	case err != nil:
		return web.Unavailable(err)
	}
	a, err := h.NewFlow(r.Context())
	if err != nil {
		return err
	}
	err = h.Flow.StartReset(w, r, a, u)
	if errors.Is(err, flow.ErrNoUsableFactor) {
		return h.noFactor(w, r, u)
	}
	return err
}

func (h *Handler) noFactor(w http.ResponseWriter, r *http.Request, u store.User) error {
	h.audit(r, store.AuditEvent{Type: "password.reset_no_factor", UserID: u.ID})
	lang := h.Web.Lang(w, r, nil, u.Locale)
	return h.renderPassword(w, r, lang, http.StatusConflict, templates.PasswordPage{Mode: "no_factor", SupportURL: h.SupportURL}, "")
}

// postReset sets the new password of a reset flow, once, and signs every
// session of the user out.
func (h *Handler) postReset(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.LoadReset(w, r)
	if err != nil {
		return err
	}
	pw, confirm := r.PostFormValue("password"), r.PostFormValue("password_confirm")
	if pw != confirm {
		return h.renderNewPassword(w, r, st, http.StatusBadRequest, "error.password_mismatch")
	}
	if err := users.CheckPasswordPolicy(pw, st.User.Username); err != nil {
		return h.renderNewPassword(w, r, st, http.StatusBadRequest, policyKey(err))
	}
	phc, err := h.Passwords.Hash(pw)
	if err != nil {
		return web.Unavailable(err)
	}
	if err := h.Flow.FinishReset(r.Context(), st); err != nil {
		return err
	}
	u := st.User
	if err := h.Flow.SetPassword(r, u, phc, true, h.SupportURL); err != nil {
		return web.Unavailable(err)
	}
	if h.Notify != nil {
		h.Notify()
	}
	if _, err := h.Flow.SignOutEverywhere(r.Context(), u.ID, ""); err != nil {
		return web.Unavailable(err)
	}
	h.Sessions.End(w, r)
	h.Logger.Info("password reset", "user_id", u.ID)
	return h.renderPassword(w, r, st.Lang, http.StatusOK, templates.PasswordPage{Mode: "done", SignInURL: h.Web.Path("/account")}, "")
}
