package login

import (
	"errors"
	"net/http"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

func (h *Handler) showActivate(w http.ResponseWriter, r *http.Request) error {
	lang := h.Web.Lang(w, r, nil, "")
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 128 {
		return errActivationInvalid(lang)
	}
	return h.renderActivate(w, r, lang, http.StatusOK, token, "")
}

func errActivationInvalid(lang string) error {
	return &web.PublicError{Status: http.StatusBadRequest, Lang: lang, Title: "error.activation.title", Key: "error.activation_invalid"}
}

func (h *Handler) renderActivate(w http.ResponseWriter, r *http.Request, lang string, status int, token, errKey string) error {
	b := h.Web.Base(w, r, lang)
	b.Error = errKey
	// Never let the token leak through the Referer of anything on the page.
	w.Header().Set("Referrer-Policy", "no-referrer")
	return h.Web.Templates.Activate(w, status, templates.ActivatePage{
		Base: b, Action: h.Web.Path("/activate"), Token: token, MinLength: users.MinPasswordLen,
	})
}

// postActivate checks the password first (a refused password keeps the
// link usable), then consumes the link, sets the password and activates
// the account in one transaction.
func (h *Handler) postActivate(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	lang := h.Web.Lang(w, r, nil, "")
	token := r.PostFormValue("token")
	pw, confirm := r.PostFormValue("password"), r.PostFormValue("password_confirm")
	if token == "" || len(token) > 128 {
		return errActivationInvalid(lang)
	}
	if pw != confirm {
		return h.renderActivate(w, r, lang, http.StatusBadRequest, token, "error.password_mismatch")
	}
	// The username is only known once the token is consumed; the policy's
	// username check runs inside the transaction.
	if err := users.CheckPasswordPolicy(pw, ""); err != nil {
		return h.renderActivate(w, r, lang, http.StatusBadRequest, token, policyKey(err))
	}
	phc, err := h.Passwords.Hash(pw)
	if err != nil {
		return web.Unavailable(err)
	}
	var u store.User
	var policyErr error
	err = h.Store.InTx(r.Context(), func(tx store.Tx) error {
		t, err := tx.ConsumeActionToken(r.Context(), oidcstore.HashToken(token), users.ActivationKind, h.now())
		if err != nil {
			return err
		}
		if u, err = tx.GetUser(r.Context(), t.UserID); err != nil {
			return err
		}
		if policyErr = users.CheckPasswordPolicy(pw, u.Username); policyErr != nil {
			return policyErr // rolls back: the link stays usable
		}
		if u.Status != store.StatusPendingActivation && u.Status != store.StatusActive {
			return store.ErrNotFound
		}
		if err := tx.SetPassword(r.Context(), u.ID, phc, h.now()); err != nil {
			return err
		}
		u.Status = store.StatusActive
		u.UpdatedAt = h.now()
		if err := tx.UpdateUser(r.Context(), u); err != nil {
			return err
		}
		return tx.AppendAuditEvent(r.Context(), h.Flow.Event(r, store.AuditEvent{Type: "account.activated", ActorID: u.ID, UserID: u.ID}))
	})
	switch {
	case policyErr != nil:
		return h.renderActivate(w, r, lang, http.StatusBadRequest, token, policyKey(policyErr))
	case errors.Is(err, store.ErrNotFound):
		return errActivationInvalid(lang)
	case err != nil:
		return web.Unavailable(err)
	}
	h.Logger.Info("account activated", "user_id", u.ID)
	// On to signing in, on Sésame's own account page.
	http.Redirect(w, r, h.Web.Path("/account"), http.StatusSeeOther)
	return nil
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
