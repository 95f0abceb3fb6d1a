package mfa

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// The enrollment of an authenticator app: the key and QR code, the print
// sheet, the first code. The pending key lives in the flow (sealed with
// it) until confirmed.

// Keys of the flow's pending state.
const (
	pendingTOTP     = "totp"     // the new key, base32
	pendingRecovery = "recovery" // the first set of recovery codes, with the first method only
	pendingEnrolled = "enrolled" // the credential the key became (kept for the print sheet)
)

// pending returns the flow's pending key and recovery codes, creating them
// on first use. Recovery codes come with the first method only; adding a
// method keeps the set the user has. Once a key is confirmed it stays for
// the print sheet until the flow ends; a new set-up (fresh) then starts
// from a new key.
func (h *Handler) pending(r *http.Request, st *flow.State, fresh bool) ([]byte, []string, error) {
	p := st.A.Flow.Pending
	if p[pendingTOTP] == "" || (fresh && p[pendingEnrolled] != "") {
		err := h.Flow.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
			if fl.Pending[pendingTOTP] != "" && !(fresh && fl.Pending[pendingEnrolled] != "") {
				return nil // another request made it first
			}
			fl.Pending = map[string]string{pendingTOTP: users.EncodeSecret(users.NewTOTPSecret())}
			if flow.Step(fl.Step) == flow.StepEnroll {
				fl.Pending[pendingRecovery] = strings.Join(users.NewRecoveryCodes(), " ")
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		p = st.A.Flow.Pending
	}
	secret, err := users.ParseSecret(p[pendingTOTP])
	if err != nil {
		return nil, nil, err
	}
	return secret, strings.Fields(p[pendingRecovery]), nil
}

// pendingQR is pending plus the QR code of the new key.
func (h *Handler) pendingQR(r *http.Request, st *flow.State, fresh bool) ([]byte, []string, template.URL, error) {
	secret, codes, err := h.pending(r, st, fresh)
	if err != nil {
		return nil, nil, "", err
	}
	qr, err := QRDataURI(OTPAuthURL(h.Issuer, st.User.Username, secret))
	return secret, codes, qr, err
}

func (h *Handler) totpSetup(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	secret, _, qr, err := h.pendingQR(r, st, true)
	if err != nil {
		return err
	}
	b32 := users.EncodeSecret(secret)
	return h.Web.Templates.TOTPSetup(w, http.StatusOK, templates.TOTPSetupPage{
		Base:         h.Web.Base(w, r, st.Lang),
		QRDataURI:    qr,
		Secret:       b32,
		SecretGroups: GroupSecret(b32),
		PrintURL:     h.Flow.URL("/mfa/totp/print", st.A),
		ConfirmURL:   h.Flow.URL("/mfa/totp/confirm", st.A),
		Apps:         true,
	})
}

func (h *Handler) totpPrint(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	if st.A.Flow.Pending[pendingTOTP] == "" {
		http.Redirect(w, r, h.Flow.URL("/mfa/totp", st.A), http.StatusSeeOther)
		return nil
	}
	secret, codes, qr, err := h.pendingQR(r, st, false)
	if err != nil {
		return err
	}
	return h.Web.Templates.TOTPPrint(w, http.StatusOK, templates.TOTPPrintPage{
		Base:          h.Web.Base(w, r, st.Lang),
		QRDataURI:     qr,
		SecretGroups:  GroupSecret(users.EncodeSecret(secret)),
		RecoveryCodes: codes,
		Username:      st.User.Username,
		Issuer:        h.Issuer,
		Date:          templates.InQuebec(h.now()).Format("2006-01-02"),
	})
}

func (h *Handler) totpConfirmPage(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	if p := st.A.Flow.Pending; p[pendingTOTP] == "" || p[pendingEnrolled] != "" {
		http.Redirect(w, r, h.Flow.URL("/mfa/totp", st.A), http.StatusSeeOther)
		return nil
	}
	return h.renderConfirm(w, r, st, http.StatusOK, "", "")
}

func (h *Handler) renderConfirm(w http.ResponseWriter, r *http.Request, st *flow.State, status int, device, errKey string) error {
	b := h.Web.Base(w, r, st.Lang)
	b.Error = errKey
	return h.Web.Templates.TOTPConfirm(w, status, templates.TOTPConfirmPage{
		Base: b, Action: h.Flow.URL("/mfa/totp/confirm", st.A), DeviceName: device,
	})
}

var errKeyTaken = errors.New("mfa: the pending key was confirmed by another request")

// totpConfirm checks the first code of the new authenticator and, in one
// transaction, stores it (verified), the recovery codes, the audit event and
// the confirmation email.
func (h *Handler) totpConfirm(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	key := st.A.Flow.Pending[pendingTOTP]
	if key == "" || st.A.Flow.Pending[pendingEnrolled] != "" {
		http.Redirect(w, r, h.Flow.URL("/mfa/totp", st.A), http.StatusSeeOther)
		return nil
	}
	device := strings.TrimSpace(r.PostFormValue("device_name"))
	if err := h.attempt(r, st); err != nil {
		return err
	}
	if err := h.Flow.Attempt(w, r, st); err != nil {
		return err
	}
	secret, codes, err := h.pending(r, st, false)
	if err != nil {
		return err
	}
	u := st.User
	step, match := MatchTOTP(secret, r.PostFormValue("code"), h.now())
	if !match {
		if err := h.failed(w, r, st, "totp_enroll"); err != nil {
			return err
		}
		return h.renderConfirm(w, r, st, http.StatusUnprocessableEntity, device, "error.code_invalid")
	}
	if device == "" || utf8.RuneCountInString(device) > 64 || !utf8.ValidString(device) || strings.ContainsFunc(device, isControl) {
		return h.renderConfirm(w, r, st, http.StatusUnprocessableEntity, "", "error.device_name_required")
	}
	now := h.now()
	cred := users.NewTOTPCredential(h.Sealer, u.ID, device, secret, now, now)
	cred.TOTPLastStep, cred.LastUsedAt = step, now
	// Claim the pending key in the flow: one confirmation per key, also
	// when the form is sent twice at once.
	err = h.Flow.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
		if fl.Pending[pendingTOTP] != key || fl.Pending[pendingEnrolled] != "" {
			return errKeyTaken
		}
		fl.Pending[pendingEnrolled] = cred.ID
		return nil
	})
	if errors.Is(err, errKeyTaken) {
		return &web.PublicError{Status: http.StatusConflict, Lang: st.Lang, Title: "error.expired.title", Key: "error.expired.message"}
	}
	if err != nil {
		return err
	}
	err = h.storeMethod(r, st, newMethod{cred: cred, codes: codes, details: map[string]string{"method": "totp"},
		name: "method.totp", device: device})
	if err != nil {
		// The key was not stored: it may be confirmed again.
		_ = h.Flow.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
			if fl.Pending[pendingEnrolled] == cred.ID {
				delete(fl.Pending, pendingEnrolled)
			}
			return nil
		})
	}
	if errors.Is(err, users.ErrAlreadyEnrolled) {
		return errAlreadyEnrolled(st)
	}
	if err != nil {
		return web.Unavailable(err)
	}
	h.poke()
	if err := h.succeeded(w, r, st); err != nil {
		return err
	}
	if err := h.Flow.Verified(r, st, flow.OTP, flow.StepVerified); err != nil {
		return err
	}
	addURL, err := h.addMethodLink(r, st)
	if err != nil {
		return web.Unavailable(err)
	}
	b := h.Web.Base(w, r, st.Lang)
	b.Notice, b.NoticeArgs = "notice.method_added", []any{device}
	page := templates.RecoveryCodesPage{
		Base:           b,
		Codes:          codes,
		ContinueAction: h.Flow.URL("/mfa/continue", st.A),
		AddMethodURL:   addURL,
	}
	if len(codes) > 0 {
		page.PrintURL = h.Flow.URL("/mfa/totp/print", st.A)
	}
	return h.Web.Templates.RecoveryCodes(w, http.StatusOK, page)
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }
