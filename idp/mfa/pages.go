package mfa

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// Handler serves the enrollment and challenge pages. It reports what the
// user proved to the flow, which decides the next step.
type Handler struct {
	Flow      *flow.Flow
	Web       *web.Kit
	Store     store.Store
	Sealer    *seal.Sealer
	Regulator *regulate.Regulator
	TOTP      TOTP
	SMS       SMS
	WebAuthn  WebAuthn
	Recovery  Recovery
	// Issuer is the name shown in authenticator apps ("Sésame").
	Issuer     string
	SupportURL string
	Logger     *slog.Logger
	Now        func() time.Time
	Audit      func(ctx context.Context, e store.AuditEvent) error
	// Notify wakes the outbox worker after an email was queued.
	Notify func()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// factors are those offered at the challenge, in order.
func (h *Handler) factors() []Factor { return []Factor{h.WebAuthn, h.TOTP, h.SMS, h.Recovery} }

func (h *Handler) factor(method string) Factor {
	for _, f := range h.factors() {
		if f.Method() == method {
			return f
		}
	}
	return nil
}

// Routes mounts the pages.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("GET /mfa/setup", h.Web.Handle(h.setup))
	mux.Handle("GET /mfa/totp", h.Web.Handle(h.totpSetup))
	mux.Handle("GET /mfa/totp/print", h.Web.Handle(h.totpPrint))
	mux.Handle("GET /mfa/totp/confirm", h.Web.Handle(h.totpConfirmPage))
	mux.Handle("POST /mfa/totp/confirm", h.Web.Handle(h.totpConfirm))
	mux.Handle("GET /mfa/sms", h.Web.Handle(h.smsSetup))
	mux.Handle("POST /mfa/sms", h.Web.Handle(h.smsSend))
	mux.Handle("GET /mfa/sms/confirm", h.Web.Handle(h.smsConfirmPage))
	mux.Handle("POST /mfa/sms/confirm", h.Web.Handle(h.smsConfirm))
	mux.Handle("POST /mfa/sms/resend", h.Web.Handle(h.smsResend))
	mux.Handle("POST /mfa/sms/send", h.Web.Handle(h.smsChallengeSend))
	mux.Handle("GET /mfa/webauthn", h.Web.Handle(h.webauthnSetup))
	mux.Handle("POST /mfa/webauthn", h.Web.Handle(h.webauthnRegister))
	mux.Handle("GET /mfa/challenge", h.Web.Handle(h.challengePage))
	mux.Handle("POST /mfa/challenge", h.Web.Handle(h.challenge))
	mux.Handle("POST /mfa/recovery/regenerate", h.Web.Handle(h.regenerateInFlow))
	mux.Handle("POST /mfa/continue", h.Web.Handle(h.continueFlow))
	mux.Handle("POST /mfa/add-method/dismiss", h.Web.Handle(h.dismissAddMethod))
}

// ---- the method choice ----

func (h *Handler) setup(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepEnroll, flow.StepVerified)
	if err != nil {
		return err
	}
	page := templates.MFASetupPage{
		Base:       h.Web.Base(w, r, st.Lang),
		TOTPURL:    h.Flow.URL("/mfa/totp", st.A),
		Continuing: st.Step() == flow.StepVerified,
	}
	// "Add a second method" during a sign-in offers what the user lacks:
	// SMS after the app, the app after SMS, or a passkey. The Security
	// page's "add a method" also offers another app (a tablet…).
	if page.Continuing && !st.A.Flow.AddMethod {
		if ok, err := h.TOTP.Enrolled(r.Context(), st.User); err != nil {
			return web.Unavailable(err)
		} else if ok {
			page.TOTPURL = ""
		}
	}
	// SMS is offered while the user has no number (support changes it).
	if ok, err := h.hasPhone(r, st.User); err != nil {
		return web.Unavailable(err)
	} else if !ok {
		page.SMSURL = h.Flow.URL("/mfa/sms", st.A)
	}
	if h.WebAuthn.On() {
		page.WebAuthnURL = h.Flow.URL("/mfa/webauthn", st.A)
	}
	if page.Continuing && !st.NeedsPasskey() {
		// The factor is verified: the user may go on without adding.
		page.SkipAction = h.Flow.URL("/mfa/continue", st.A)
	}
	if st.NeedsPasskey() {
		// The application asks for a passkey: nothing else will do.
		page.TOTPURL, page.SMSURL = "", ""
		page.Notice = "notice.passkey_required"
	}
	return h.Web.Templates.MFASetup(w, http.StatusOK, page)
}

// ---- the challenge ----

func (h *Handler) challengePage(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Flow.Load(w, r, flow.StepChallenge)
	if err != nil {
		return err
	}
	return h.renderChallenge(w, r, st, http.StatusOK, r.URL.Query().Get("method"), "")
}

func (h *Handler) renderChallenge(w http.ResponseWriter, r *http.Request, st *flow.State, status int, method, errKey string) error {
	// A wrong SMS code shows the code form again.
	return h.renderChallengePage(w, r, st, status, method, errKey, nil, errKey != "", "")
}

// renderChallengePage draws the challenge; sent: an SMS code was sent (the
// code form shows), notice a banner key.
func (h *Handler) renderChallengePage(w http.ResponseWriter, r *http.Request, st *flow.State, status int, method, errKey string, errArgs []any, sent bool, notice string) error {
	var methods []string
	for _, f := range h.factors() {
		ok, err := f.Enrolled(r.Context(), st.User)
		if err != nil {
			return web.Unavailable(err)
		}
		if ok {
			methods = append(methods, f.Method())
		}
	}
	if !slices.Contains(methods, method) && len(methods) > 0 {
		method = methods[0]
	}
	var links []templates.MethodLink
	for _, m := range methods {
		if m != method {
			links = append(links, templates.MethodLink{Method: m, URL: h.Flow.URL(flow.PathChallenge, st.A, "method", m)})
		}
	}
	remaining, err := h.Recovery.Remaining(r.Context(), st.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	b := h.Web.Base(w, r, st.Lang)
	b.Error, b.ErrorArgs = errKey, errArgs
	action := h.Flow.URL(flow.PathChallenge, st.A)
	send := h.Flow.URL("/mfa/sms/send", st.A)
	adding := r.FormValue("then") == "add"
	if adding {
		// "Add a second method": verify a code first, then set it up.
		action = h.Flow.URL(flow.PathChallenge, st.A, "then", "add")
		send = h.Flow.URL("/mfa/sms/send", st.A, "then", "add")
	}
	page := templates.MFAChallengePage{
		Base:              b,
		Action:            action,
		Method:            method,
		Methods:           links,
		Adding:            adding,
		RemainingRecovery: remaining,
	}
	if !adding {
		due, err := h.addMethodDue(r, st)
		if err != nil {
			return web.Unavailable(err)
		}
		if due {
			page.AddMethodURL = h.Flow.URL(flow.PathChallenge, st.A, "then", "add", "method", method)
			page.DismissAddMethodAction = h.Flow.URL("/mfa/add-method/dismiss", st.A, "method", method)
		}
	}
	if method == h.WebAuthn.Method() {
		ch, err := h.WebAuthn.Begin(r.Context(), st.User, h.now())
		if err != nil {
			return web.Unavailable(err)
		}
		page.WebAuthnOptions = string(ch.Options)
	}
	if method == h.SMS.Method() {
		c, err := h.SMS.Phone(r.Context(), st.User.ID)
		if err != nil {
			return web.Unavailable(err)
		}
		page.SendAction, page.Sent, page.Destination = send, sent, users.MaskPhone(users.CredentialPhone(c))
		if sent {
			// The gateway refused the text: say so rather than let the
			// user wait for it.
			if failed, err := h.SMS.Undelivered(r.Context(), st.User.ID, PurposeChallenge); err != nil {
				return web.Unavailable(err)
			} else if failed {
				page.Error, page.ErrorArgs = "error.sms_failed", nil
			}
		}
		if notice == "notice.sms_sent_to" {
			page.NoticeArgs = []any{page.Destination}
		}
	}
	if notice != "" {
		page.Notice = notice
	} else if st.NeedsPasskey() && method != h.WebAuthn.Method() {
		// Another method first, then a passkey to register.
		page.Notice = "notice.passkey_verify_first"
	}
	return h.Web.Templates.MFAChallenge(w, status, page)
}

// codeAttempt is the throttle's view of a code for st's user.
func (h *Handler) codeAttempt(r *http.Request, st *flow.State) regulate.Attempt {
	return regulate.Attempt{Kind: regulate.KindCode, Account: st.User.ID, IP: h.Flow.Networks.ClientIP(r), Device: h.Flow.Sessions.Device(r)}
}

// attempt applies the throttle's limits on codes (failures per account ×
// network and × device, growing waits).
func (h *Handler) attempt(r *http.Request, st *flow.State) error {
	v, err := h.Regulator.Check(r.Context(), h.codeAttempt(r, st))
	if err != nil {
		return web.Unavailable(err)
	}
	if !v.Allowed {
		if err := h.audit(r, store.AuditEvent{Type: "mfa.throttled", UserID: st.User.ID, ClientID: st.A.ClientID,
			Details: map[string]string{"reason": string(v.Reason)}}); err != nil {
			return web.Unavailable(err)
		}
		return web.Throttled(st.Lang, v.RetryAfter)
	}
	return nil
}

// failed reports a wrong code to the throttle and the flow.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, st *flow.State, method string) error {
	if err := h.Regulator.Fail(r.Context(), h.codeAttempt(r, st)); err != nil {
		return web.Unavailable(err)
	}
	return h.Flow.Failed(w, r, st, method)
}

// succeeded reports a right code to the throttle (this account × network
// and device only) and remembers the device.
func (h *Handler) succeeded(w http.ResponseWriter, r *http.Request, st *flow.State) error {
	att := h.codeAttempt(r, st)
	att.Device = h.Flow.Sessions.RememberDevice(w, r)
	if err := h.Regulator.Succeed(r.Context(), att); err != nil {
		return web.Unavailable(err)
	}
	return nil
}

func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepChallenge)
	if err != nil {
		return err
	}
	method := r.PostFormValue("method")
	code := r.PostFormValue("code")
	if method == "recovery" || users.LooksLikeRecoveryCode(code) {
		method = h.Recovery.Method()
	}
	f := h.factor(method)
	if f == nil {
		return h.renderChallenge(w, r, st, http.StatusBadRequest, "", "error.code_invalid")
	}
	if err := h.attempt(r, st); err != nil {
		return err
	}
	if err := h.Flow.Attempt(w, r, st); err != nil {
		return err
	}
	if f.Method() == h.Recovery.Method() {
		return h.useRecovery(w, r, st, code)
	}
	cred, err := f.Verify(r.Context(), st.User, code, h.now())
	if errors.Is(err, ErrSignCount) {
		// A cloned key, or a broken one: refused, and the security team
		// sees it.
		if err := h.audit(r, store.AuditEvent{Type: "mfa.webauthn_sign_count", ActorID: st.User.ID, UserID: st.User.ID, ClientID: st.A.ClientID,
			Details: map[string]string{"credential_id": cred.ID}}); err != nil {
			return web.Unavailable(err)
		}
	}
	if errors.Is(err, ErrCodeInvalid) {
		if err := h.failed(w, r, st, method); err != nil {
			return err
		}
		key := "error.code_invalid"
		switch {
		case f.Method() == h.WebAuthn.Method():
			key = "error.webauthn_invalid"
		case errors.Is(err, ErrCodeExpired):
			key = "error.code_expired"
		}
		return h.renderChallenge(w, r, st, http.StatusUnprocessableEntity, method, key)
	}
	if err != nil {
		return web.Unavailable(err)
	}
	if err := h.audit(r, store.AuditEvent{Type: "mfa.verified", ActorID: st.User.ID, UserID: st.User.ID, ClientID: st.A.ClientID,
		Details: map[string]string{"method": method, "credential_id": cred.ID}}); err != nil {
		return web.Unavailable(err)
	}
	if err := h.succeeded(w, r, st); err != nil {
		return err
	}
	amr := f.AMR()
	if wf, ok := f.(WebAuthn); ok {
		amr = wf.MethodOf(cred) // hwk, or swk for a synced passkey
	}
	if r.FormValue("then") != "add" {
		return h.Flow.Complete(w, r, st, amr)
	}
	// "Add a second method": the factor verified, on to the method choice.
	if err := h.Flow.Verified(r, st, amr, flow.StepVerified); err != nil {
		return err
	}
	http.Redirect(w, r, h.Flow.URL(flow.PathSetup, st.A), http.StatusSeeOther)
	return nil
}

// smsChallengeSend sends a sign-in code to the user's number: on this POST
// only (form#sms-send), never on a GET, so that link prefetchers send no
// texts.
func (h *Handler) smsChallengeSend(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepChallenge)
	if err != nil {
		return err
	}
	method := h.SMS.Method()
	if ok, err := h.hasPhone(r, st.User); err != nil {
		return web.Unavailable(err)
	} else if !ok {
		return h.renderChallenge(w, r, st, http.StatusBadRequest, "", "")
	}
	if _, err := h.SMS.Begin(r.Context(), st.User, h.now()); err != nil {
		if pe := h.sendRefused(st, err); pe != nil {
			// Too soon: the code already sent still works.
			var se *SendError
			sent := errors.As(err, &se) && se.Reason == SendTooSoon
			w.Header().Set("Retry-After", strconv.Itoa(int(pe.Retry.Seconds()+0.999)))
			return h.renderChallengePage(w, r, st, pe.Status, method, pe.Key, pe.Args, sent, "")
		}
		return web.Unavailable(err)
	}
	if err := h.audit(r, store.AuditEvent{Type: "mfa.sms_sent", ActorID: st.User.ID, UserID: st.User.ID, ClientID: st.A.ClientID,
		Details: map[string]string{"purpose": PurposeChallenge}}); err != nil {
		return web.Unavailable(err)
	}
	return h.renderChallengePage(w, r, st, http.StatusOK, method, "", nil, true, "notice.sms_sent_to")
}

// addMethodDue reports whether "add a second method" is offered to st's
// user: fewer than two methods, and not dismissed in the last 30 days.
func (h *Handler) addMethodDue(r *http.Request, st *flow.State) (bool, error) {
	return users.AddMethodDue(r.Context(), h.Store, st.User.ID, h.now())
}

// addMethodLink is the success page's "add a second method" link after an
// enrollment, empty once the user has two methods.
func (h *Handler) addMethodLink(r *http.Request, st *flow.State) (string, error) {
	due, err := h.addMethodDue(r, st)
	if err != nil || !due {
		return "", err
	}
	return h.Flow.URL(flow.PathSetup, st.A), nil
}

// dismissAddMethod hides "add a second method" for 30 days (kept with the
// user, an audit event), then shows the challenge again.
func (h *Handler) dismissAddMethod(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepChallenge)
	if err != nil {
		return err
	}
	err = users.DismissAddMethod(r.Context(), h.Store, h.Flow.Event(r, store.AuditEvent{UserID: st.User.ID, ClientID: st.A.ClientID}))
	if err != nil {
		return web.Unavailable(err)
	}
	method := r.FormValue("method")
	if h.factor(method) == nil {
		method = ""
	}
	return h.renderChallengePage(w, r, st, http.StatusOK, method, "", nil, false, "notice.add_method_dismissed")
}

func (h *Handler) continueFlow(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepVerified)
	if err != nil {
		return err
	}
	return h.Flow.Continue(w, r, st)
}

// ---- helpers ----

// newMethod is a method being stored at the end of its enrollment.
type newMethod struct {
	cred store.Credential
	// codes are the first recovery codes (with a first method only).
	codes []string
	// details of the mfa.enrolled event ("method", …); the credential id
	// is added.
	details map[string]string
	// name is the method's message key in the email ("method.totp"…), and
	// device the name the user gave it.
	name, device string
	// check, when set, is a further rule checked under the user's lock.
	check func(tx store.Tx) error
}

// errAlreadyEnrolled is the answer to a first enrollment of an account that
// has a second factor by now.
func errAlreadyEnrolled(st *flow.State) error {
	return &web.PublicError{Status: http.StatusForbidden, Lang: st.Lang, Title: "error.forbidden.title", Key: "error.forbidden.message"}
}

// storeMethod stores m in one transaction, under the user's lock: a first
// enrollment only for an account with no factor (of concurrent ones, one
// wins), the credential, the first recovery codes, the audit event and the
// confirmation email.
func (h *Handler) storeMethod(r *http.Request, st *flow.State, m newMethod) error {
	ctx := r.Context()
	u := st.User
	now := h.now()
	return h.Store.InTx(ctx, func(tx store.Tx) error {
		if st.Step() == flow.StepEnroll {
			if err := users.EnsureNoSecondFactor(ctx, tx, u.ID); err != nil {
				return err
			}
		} else if err := tx.LockUser(ctx, u.ID); err != nil {
			return err
		}
		if m.check != nil {
			if err := m.check(tx); err != nil {
				return err
			}
		}
		if err := tx.CreateCredential(ctx, m.cred); err != nil {
			return err
		}
		if len(m.codes) > 0 {
			if err := tx.ReplaceRecoveryCodes(ctx, u.ID, users.HashRecoveryCodes(u.ID, m.codes), now); err != nil {
				return err
			}
		}
		details := map[string]string{"credential_id": m.cred.ID}
		for k, v := range m.details {
			details[k] = v
		}
		if err := tx.AppendAuditEvent(ctx, h.Flow.Event(r, store.AuditEvent{Type: "mfa.enrolled", ActorID: u.ID, UserID: u.ID,
			ClientID: st.A.ClientID, Details: details})); err != nil {
			return err
		}
		return h.email(ctx, tx, u, "method_added:"+m.cred.ID, "method_added", templates.MethodAddedEmail{
			GivenName: u.GivenName, MethodName: h.Web.Templates.T(templates.UserLang(u.Locale), m.name), DeviceName: m.device,
			When: templates.FormatWhen(now, templates.UserLang(u.Locale)), SupportURL: h.SupportURL,
		})
	})
}

// audit records e; an error fails the action it records.
func (h *Handler) audit(r *http.Request, e store.AuditEvent) error {
	if h.Audit != nil {
		return h.Audit(r.Context(), h.Flow.Event(r, e))
	}
	return nil
}

// email queues a templated email to u in tx.
func (h *Handler) email(ctx context.Context, tx store.Tx, u store.User, key, name string, data any) error {
	if u.Email == "" {
		return nil
	}
	lang := templates.UserLang(u.Locale)
	subject, text, html, err := h.Web.Templates.Email(lang, name, data)
	if err != nil {
		return err
	}
	return notify.EnqueueEmail(ctx, tx, key, notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: lang}, h.now())
}

func (h *Handler) poke() {
	if h.Notify != nil {
		h.Notify()
	}
}
