package mfa

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// The registration of a passkey or security key from the method choice
// (first enrollment or "add a method"): a name (input#webauthn-name), then
// button#webauthn-register, whose script posts the browser's answer with
// the name. The key is stored once the answer verifies, with the recovery
// codes of a first method, the audit event and the confirmation email.

func (h *Handler) webauthnSetup(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	return h.renderWebAuthnEnroll(w, r, st, http.StatusOK, "", "")
}

func (h *Handler) renderWebAuthnEnroll(w http.ResponseWriter, r *http.Request, st *flow.State, status int, name, errKey string) error {
	if !h.WebAuthn.On() {
		return &web.PublicError{Status: http.StatusNotFound, Lang: st.Lang, Title: "error.forbidden.title", Key: "error.forbidden.message"}
	}
	opts, err := h.WebAuthn.BeginRegistration(r.Context(), st.User, h.now())
	if err != nil {
		return web.Unavailable(err)
	}
	b := h.Web.Base(w, r, st.Lang)
	b.Error = errKey
	if st.NeedsPasskey() {
		b.Notice = "notice.passkey_required"
	}
	return h.Web.Templates.WebAuthnEnroll(w, status, templates.WebAuthnEnrollPage{
		Base: b, Action: h.Flow.URL("/mfa/webauthn", st.A), Options: string(opts), Name: name,
	})
}

func (h *Handler) webauthnRegister(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if !validDevice(name) {
		return h.renderWebAuthnEnroll(w, r, st, http.StatusUnprocessableEntity, "", "error.device_name_required")
	}
	if err := h.attempt(r, st); err != nil {
		return err
	}
	if err := h.Flow.Attempt(w, r, st); err != nil {
		return err
	}
	u := st.User
	now := h.now()
	cred, err := h.WebAuthn.FinishRegistration(r.Context(), u, r.PostFormValue("credential"), name, now)
	if errors.Is(err, ErrCodeInvalid) {
		if err := h.failed(w, r, st, "webauthn_enroll"); err != nil {
			return err
		}
		return h.renderWebAuthnEnroll(w, r, st, http.StatusUnprocessableEntity, name, "error.webauthn_invalid")
	}
	if err != nil {
		return web.Unavailable(err)
	}
	enrolling := st.Step() == flow.StepEnroll
	var codes []string
	if enrolling {
		if codes = strings.Fields(st.A.Flow.Pending[pendingRecovery]); len(codes) == 0 {
			codes = users.NewRecoveryCodes()
		}
	}
	method := h.WebAuthn.MethodOf(cred)
	kind := "method.webauthn"
	if method == flow.SWK {
		kind = "method.passkey"
	}
	err = h.storeMethod(r, st, newMethod{cred: cred, codes: codes,
		details: map[string]string{"method": "webauthn", "amr": string(method)}, name: kind, device: name})
	switch {
	case errors.Is(err, users.ErrAlreadyEnrolled):
		return errAlreadyEnrolled(st)
	case err != nil:
		return web.Unavailable(err)
	}
	h.poke()
	if err := h.Flow.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
		delete(fl.Pending, pendingRecovery) // stored with this method
		return nil
	}); err != nil {
		return err
	}
	if err := h.succeeded(w, r, st); err != nil {
		return err
	}
	if err := h.Flow.Verified(r, st, method, flow.StepVerified); err != nil {
		return err
	}
	addURL, err := h.addMethodLink(r, st)
	if err != nil {
		return web.Unavailable(err)
	}
	b := h.Web.Base(w, r, st.Lang)
	b.Notice, b.NoticeArgs = "notice.method_added", []any{name}
	return h.Web.Templates.RecoveryCodes(w, http.StatusOK, templates.RecoveryCodesPage{
		Base:           b,
		Codes:          codes,
		ContinueAction: h.Flow.URL("/mfa/continue", st.A),
		AddMethodURL:   addURL,
		Added:          "webauthn",
	})
}
