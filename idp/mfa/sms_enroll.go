package mfa

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// The enrollment of a cell phone: the number and a device name
// (form#sms-enroll), a code sent to it, then that code (form#sms-confirm).
// The number waits in the flow (sealed with it) and is saved only once its
// code is entered. A user with a number cannot add another: support
// changes numbers.

// Keys of the flow's pending state for SMS.
const (
	pendingSMSPhone  = "sms_phone"  // E.164, a code was sent to it
	pendingSMSDevice = "sms_device" // the device name given with it
)

var errNumberSet = errors.New("mfa: the user already has an SMS number")

// hasPhone reports whether u has a verified number.
func (h *Handler) hasPhone(r *http.Request, u store.User) (bool, error) {
	return h.SMS.Enrolled(r.Context(), u)
}

func (h *Handler) numberSet(st *flow.State) error {
	return &web.PublicError{Status: http.StatusConflict, Lang: st.Lang, Title: "error.forbidden.title", Key: "error.sms_number_set"}
}

func (h *Handler) smsSetup(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	if ok, err := h.hasPhone(r, st.User); err != nil {
		return web.Unavailable(err)
	} else if ok {
		return h.numberSet(st)
	}
	return h.renderSMSEnroll(w, r, st, http.StatusOK, "", st.A.Flow.Pending[pendingSMSDevice], "", nil)
}

func (h *Handler) renderSMSEnroll(w http.ResponseWriter, r *http.Request, st *flow.State, status int, phone, device, errKey string, args []any) error {
	b := h.Web.Base(w, r, st.Lang)
	b.Error, b.ErrorArgs = errKey, args
	return h.Web.Templates.SMSEnroll(w, status, templates.SMSEnrollPage{
		Base: b, Action: h.Flow.URL("/mfa/sms", st.A), Phone: phone, DeviceName: device,
	})
}

func validDevice(device string) bool {
	return device != "" && utf8.RuneCountInString(device) <= 64 && utf8.ValidString(device) && !strings.ContainsFunc(device, isControl)
}

// smsSend checks the number and the device name, sends the code (only on
// this POST), keeps the number in the flow and goes to the code form.
func (h *Handler) smsSend(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	if ok, err := h.hasPhone(r, st.User); err != nil {
		return web.Unavailable(err)
	} else if ok {
		return h.numberSet(st)
	}
	raw := r.PostFormValue("phone")
	device := strings.TrimSpace(r.PostFormValue("device_name"))
	shown := raw
	if !utf8.ValidString(shown) || utf8.RuneCountInString(shown) > 40 || strings.ContainsFunc(shown, isControl) {
		shown = ""
	}
	if !validDevice(device) {
		device = ""
	}
	phone, err := users.ParseCanadianMobile(raw)
	var ie *users.InputError
	if errors.As(err, &ie) {
		return h.renderSMSEnroll(w, r, st, http.StatusUnprocessableEntity, shown, device, ie.Key, nil)
	}
	if err != nil {
		return web.Unavailable(err)
	}
	if device == "" {
		return h.renderSMSEnroll(w, r, st, http.StatusUnprocessableEntity, shown, "", "error.device_name_required", nil)
	}
	if _, err := h.SMS.Send(r.Context(), st.User, PurposeEnroll, phone, "", h.now()); err != nil {
		if pe := h.sendRefused(st, err); pe != nil {
			return h.renderSMSEnroll(w, r, st, pe.Status, shown, device, pe.Key, pe.Args)
		}
		return web.Unavailable(err)
	}
	err = h.Flow.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
		if fl.Pending == nil {
			fl.Pending = map[string]string{}
		}
		fl.Pending[pendingSMSPhone], fl.Pending[pendingSMSDevice] = phone, device
		if flow.Step(fl.Step) == flow.StepEnroll && fl.Pending[pendingRecovery] == "" {
			// The first method brings the recovery codes.
			fl.Pending[pendingRecovery] = strings.Join(users.NewRecoveryCodes(), " ")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := h.audit(r, store.AuditEvent{Type: "mfa.sms_sent", ActorID: st.User.ID, UserID: st.User.ID, ClientID: st.A.ClientID,
		Details: map[string]string{"purpose": PurposeEnroll}}); err != nil {
		return web.Unavailable(err)
	}
	http.Redirect(w, r, h.Flow.URL("/mfa/sms/confirm", st.A), http.StatusSeeOther)
	return nil
}

// sendRefused is the page's answer to a refused send (nil: not a refusal).
func (h *Handler) sendRefused(st *flow.State, err error) *web.PublicError {
	var se *SendError
	if !errors.As(err, &se) {
		return nil
	}
	key := "error.sms_limit"
	switch se.Reason {
	case SendTooSoon:
		key = "error.sms_wait"
	case SendGlobalLimit:
		key = "error.sms_busy"
	}
	return &web.PublicError{Status: http.StatusTooManyRequests, Lang: st.Lang, Key: key,
		Args: []any{web.FormatWait(st.Lang, se.Wait)}, Retry: se.Wait}
}

func (h *Handler) smsConfirmPage(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	if st.A.Flow.Pending[pendingSMSPhone] == "" {
		http.Redirect(w, r, h.Flow.URL("/mfa/sms", st.A), http.StatusSeeOther)
		return nil
	}
	return h.renderSMSConfirm(w, r, st, http.StatusOK, "", nil)
}

func (h *Handler) renderSMSConfirm(w http.ResponseWriter, r *http.Request, st *flow.State, status int, errKey string, args []any) error {
	b := h.Web.Base(w, r, st.Lang)
	b.Error, b.ErrorArgs = errKey, args
	if failed, err := h.SMS.Undelivered(r.Context(), st.User.ID, PurposeEnroll); err != nil {
		return web.Unavailable(err)
	} else if failed {
		b.Error, b.ErrorArgs = "error.sms_failed", nil
	}
	return h.Web.Templates.SMSConfirm(w, status, templates.SMSConfirmPage{
		Base:         b,
		Action:       h.Flow.URL("/mfa/sms/confirm", st.A),
		ResendAction: h.Flow.URL("/mfa/sms/resend", st.A),
		Destination:  users.MaskPhone(st.A.Flow.Pending[pendingSMSPhone]),
		ChangeURL:    h.Flow.URL("/mfa/sms", st.A),
	})
}

// smsResend sends a new code to the pending number (after 30 s, within
// the limits).
func (h *Handler) smsResend(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	phone := st.A.Flow.Pending[pendingSMSPhone]
	if phone == "" {
		http.Redirect(w, r, h.Flow.URL("/mfa/sms", st.A), http.StatusSeeOther)
		return nil
	}
	if _, err := h.SMS.Send(r.Context(), st.User, PurposeEnroll, phone, "", h.now()); err != nil {
		if pe := h.sendRefused(st, err); pe != nil {
			return h.renderSMSConfirm(w, r, st, pe.Status, pe.Key, pe.Args)
		}
		return web.Unavailable(err)
	}
	b := h.Web.Base(w, r, st.Lang)
	b.Notice, b.NoticeArgs = "notice.sms_sent_to", []any{users.MaskPhone(phone)}
	return h.Web.Templates.SMSConfirm(w, http.StatusOK, templates.SMSConfirmPage{
		Base: b, Action: h.Flow.URL("/mfa/sms/confirm", st.A), ResendAction: h.Flow.URL("/mfa/sms/resend", st.A),
		Destination: users.MaskPhone(phone), ChangeURL: h.Flow.URL("/mfa/sms", st.A),
	})
}

// smsConfirm checks the code sent to the new number and, in one
// transaction, saves the number (verified), the recovery codes of a first
// method, the audit event and the confirmation email.
func (h *Handler) smsConfirm(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	p := st.A.Flow.Pending
	phone, device := p[pendingSMSPhone], p[pendingSMSDevice]
	if phone == "" {
		http.Redirect(w, r, h.Flow.URL("/mfa/sms", st.A), http.StatusSeeOther)
		return nil
	}
	if err := h.attempt(r, st); err != nil {
		return err
	}
	if err := h.Flow.Attempt(w, r, st); err != nil {
		return err
	}
	u := st.User
	now := h.now()
	// Check consumes the code: of two submissions, one goes on.
	if _, err := h.SMS.Check(r.Context(), u.ID, PurposeEnroll, phone, r.PostFormValue("code"), now); err != nil {
		if !errors.Is(err, ErrCodeInvalid) {
			return web.Unavailable(err)
		}
		if err := h.failed(w, r, st, "sms_enroll"); err != nil {
			return err
		}
		key := "error.code_invalid"
		if errors.Is(err, ErrCodeExpired) {
			key = "error.code_expired"
		}
		return h.renderSMSConfirm(w, r, st, http.StatusUnprocessableEntity, key, nil)
	}
	codes := strings.Fields(p[pendingRecovery])
	enrolling := st.Step() == flow.StepEnroll
	if !enrolling {
		codes = nil // adding a method keeps the user's codes
	}
	cred := users.NewSMSCredential(u.ID, device, phone, now, now)
	err = h.storeMethod(r, st, newMethod{cred: cred, codes: codes, details: map[string]string{"method": "sms"},
		name: "method.sms", device: device,
		check: func(tx store.Tx) error {
			// One number per account: support changes it.
			existing, err := tx.ListCredentials(r.Context(), u.ID, store.CredSMS)
			if err != nil {
				return err
			}
			for _, c := range existing {
				if !c.VerifiedAt.IsZero() {
					return errNumberSet
				}
			}
			return nil
		}})
	switch {
	case errors.Is(err, users.ErrAlreadyEnrolled):
		return errAlreadyEnrolled(st)
	case errors.Is(err, errNumberSet):
		return h.numberSet(st)
	case err != nil:
		return web.Unavailable(err)
	}
	h.poke()
	if err := h.Flow.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
		delete(fl.Pending, pendingSMSPhone)
		delete(fl.Pending, pendingSMSDevice)
		delete(fl.Pending, pendingRecovery) // stored with this method
		return nil
	}); err != nil {
		return err
	}
	if err := h.succeeded(w, r, st); err != nil {
		return err
	}
	if err := h.Flow.Verified(r, st, flow.SMS, flow.StepVerified); err != nil {
		return err
	}
	addURL, err := h.addMethodLink(r, st)
	if err != nil {
		return web.Unavailable(err)
	}
	b := h.Web.Base(w, r, st.Lang)
	b.Notice, b.NoticeArgs = "notice.method_added", []any{device}
	return h.Web.Templates.RecoveryCodes(w, http.StatusOK, templates.RecoveryCodesPage{
		Base:           b,
		Codes:          codes,
		ContinueAction: h.Flow.URL("/mfa/continue", st.A),
		AddMethodURL:   addURL,
		Added:          "sms",
	})
}
