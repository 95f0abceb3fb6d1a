package mfa

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/login"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/templates"
)

// MaxFailures wrong codes void a challenge: back to the password.
const MaxFailures = 5

// Flow steps after the password.
const (
	stepEnroll        = "enroll"         // no verified factor: enrollment is forced
	stepChallenge     = "challenge"      // a factor must be verified
	stepVerified      = "verified"       // a factor was verified in this flow
	stepRecoveryEmpty = "recovery_empty" // the last recovery code was used: new codes first
)

// Factor is a kind of second factor that verifies codes. SMS and passkeys
// plug in here later.
type Factor interface {
	// Type is the credential type (totp, sms…), also the form's method.
	Type() store.CredentialType
	// AMR is the RFC 8176 value the factor adds (otp, sms, hwk…).
	AMR() string
	// Verify checks code against the user's verified credentials of this
	// type and consumes it (a code is accepted once): ErrCodeInvalid
	// otherwise. It returns the credential used.
	Verify(ctx context.Context, u store.User, code string, now time.Time) (store.Credential, error)
}

// TOTP verifies authenticator-app codes; a time step is accepted once per
// credential, atomically in the durable store.
type TOTP struct {
	Store  store.Store
	Sealer *seal.Sealer
}

func (TOTP) Type() store.CredentialType { return store.CredTOTP }
func (TOTP) AMR() string                { return "otp" }

func (f TOTP) Verify(ctx context.Context, u store.User, code string, now time.Time) (store.Credential, error) {
	creds, err := f.Store.ListCredentials(ctx, u.ID, store.CredTOTP)
	if err != nil {
		return store.Credential{}, err
	}
	for _, c := range creds {
		if c.VerifiedAt.IsZero() {
			continue
		}
		secret, err := users.OpenSecret(f.Sealer, c)
		if err != nil {
			return store.Credential{}, fmt.Errorf("open totp secret of %s: %w", c.ID, err)
		}
		step, ok := MatchTOTP(secret, code, now)
		if !ok {
			continue
		}
		// Compare-and-set: of two submissions of one code, one wins.
		if err := f.Store.AdvanceTOTPStep(ctx, c.ID, step, now); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return store.Credential{}, ErrCodeInvalid
			}
			return store.Credential{}, err
		}
		c.TOTPLastStep, c.LastUsedAt = step, now
		return c, nil
	}
	return store.Credential{}, ErrCodeInvalid
}

// Handler serves the second-factor pages and is the gate between the
// password and the authorization code (login.SecondFactor).
type Handler struct {
	Store     store.Store
	Storage   *oidcstore.Storage
	Login     *login.Handler
	Sealer    *seal.Sealer
	Templates *templates.Engine
	Regulator *regulate.Regulator
	// Ephemeral counts wrong codes per flow (not in the flow record, which
	// concurrent requests would overwrite).
	Ephemeral ephemeral.Store
	Factors   []Factor
	// Issuer is the name shown in authenticator apps ("Sésame").
	Issuer     string
	SupportURL string
	Logger     *slog.Logger
	Now        func() time.Time
	Audit      func(ctx context.Context, e store.AuditEvent)
	// Notify wakes the outbox worker after an email was queued.
	Notify func()
}

var _ login.SecondFactor = (*Handler)(nil)

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Handler) path(p string) string { return h.Login.Prefix + p }

func (h *Handler) flowURL(p string, a *oidcstore.AuthRequest, extra ...string) string {
	q := url.Values{"flow": {a.ID}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return h.path(p) + "?" + q.Encode()
}

// Routes mounts the pages.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /mfa/setup", h.setup)
	mux.HandleFunc("GET /mfa/totp", h.totpSetup)
	mux.HandleFunc("GET /mfa/totp/print", h.totpPrint)
	mux.HandleFunc("GET /mfa/totp/confirm", h.totpConfirmPage)
	mux.HandleFunc("POST /mfa/totp/confirm", h.totpConfirm)
	mux.HandleFunc("GET /mfa/challenge", h.challengePage)
	mux.HandleFunc("POST /mfa/challenge", h.challenge)
	mux.HandleFunc("POST /mfa/recovery/regenerate", h.regenerateInFlow)
	mux.HandleFunc("POST /mfa/continue", h.continueFlow)
}

// verifiedFactors are the user's usable second factors.
func (h *Handler) verifiedFactors(ctx context.Context, userID string) ([]store.Credential, error) {
	creds, err := h.Store.ListCredentials(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(creds, func(c store.Credential) bool {
		return c.Type == store.CredPassword || c.VerifiedAt.IsZero()
	}), nil
}

// Begin is the gate, called once the password is right.
func (h *Handler) Begin(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User) {
	factors, err := h.verifiedFactors(r.Context(), u.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case len(factors) > 0:
		a.Flow.Step = stepChallenge
	case h.now().Before(u.MFAGraceUntil):
		// An administrator granted this account a dated grace period.
		h.Audit(r.Context(), store.AuditEvent{At: h.now(), Type: "mfa.grace_used", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
			Details: map[string]string{"until": u.MFAGraceUntil.Format(time.RFC3339)}})
		h.Login.Finish(w, r, a, u, []string{"pwd"}, "")
		return
	default:
		a.Flow.Step = stepEnroll
	}
	if !h.save(w, r, a) {
		return
	}
	if a.Flow.Step == stepChallenge {
		http.Redirect(w, r, h.flowURL("/mfa/challenge", a), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, h.flowURL("/mfa/setup", a), http.StatusSeeOther)
}

func (h *Handler) save(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest) bool {
	if err := h.Storage.SaveAuthRequest(r.Context(), a); err != nil {
		h.Login.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return false
	}
	return true
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.Logger.Error("second factor", "err", err, "request_id", w.Header().Get("X-Request-Id"))
	h.Login.ErrorPage(w, r, http.StatusServiceUnavailable, "", "error.generic.title", "error.generic.message")
}

// load returns the flow of this browser, past the password, at one of the
// allowed steps, with its user; otherwise it answers with an error page.
func (h *Handler) load(w http.ResponseWriter, r *http.Request, steps ...string) (*oidcstore.AuthRequest, store.User, string, bool) {
	a, err := h.Storage.AuthRequest(r.Context(), r.FormValue("flow"))
	if err != nil || a.Flow.UserID == "" || a.Flow.Done || a.Flow.Browser == "" || a.Flow.Browser != h.Login.Sessions.BrowserHash(r) {
		h.Login.ErrorPage(w, r, http.StatusBadRequest, "", "error.expired.title", "error.expired.message")
		return nil, store.User{}, "", false
	}
	if !slices.Contains(steps, a.Flow.Step) {
		h.Login.ErrorPage(w, r, http.StatusForbidden, "", "error.forbidden.title", "error.forbidden.message")
		return nil, store.User{}, "", false
	}
	if _, err := h.Ephemeral.Get(r.Context(), voidKey(a)); err == nil {
		h.Login.ShowLogin(w, r, a, http.StatusUnauthorized, "error.challenge_void")
		return nil, store.User{}, "", false
	}
	u, err := h.Store.GetUser(r.Context(), a.Flow.UserID)
	if err != nil || u.Status != store.StatusActive {
		h.Login.ErrorPage(w, r, http.StatusForbidden, "", "error.account_disabled.title", "error.account_disabled.message")
		return nil, store.User{}, "", false
	}
	return a, u, h.Login.Lang(w, r, a.UILocales, u.Locale), true
}

// ---- enrollment ----

func (h *Handler) setup(w http.ResponseWriter, r *http.Request) {
	a, _, lang, ok := h.load(w, r, stepEnroll, stepVerified)
	if !ok {
		return
	}
	_ = h.Templates.MFASetup(w, http.StatusOK, templates.MFASetupPage{
		Base:       h.Login.Base(w, r, lang),
		TOTPURL:    h.flowURL("/mfa/totp", a),
		Continuing: a.Flow.Step == stepVerified,
	})
}

// pending returns the flow's pending authenticator key and recovery codes,
// creating them on first use. Recovery codes come with the first method
// only; adding a method keeps the set the user has.
//
// Once a key is confirmed ("enrolled"), it stays for the print sheet until
// the flow ends; a new set-up (fresh) then starts from a new key.
func (h *Handler) pending(r *http.Request, a *oidcstore.AuthRequest, fresh bool) ([]byte, []string, error) {
	if a.Flow.Pending == nil || (fresh && a.Flow.Pending["enrolled"] != "") {
		a.Flow.Pending = map[string]string{}
	}
	if a.Flow.Pending["totp"] == "" {
		a.Flow.Pending["totp"] = users.EncodeSecret(users.NewTOTPSecret())
		if a.Flow.Step == stepEnroll {
			a.Flow.Pending["recovery"] = strings.Join(NewRecoveryCodes(), " ")
		}
		if err := h.Storage.SaveAuthRequest(r.Context(), a); err != nil {
			return nil, nil, err
		}
	}
	secret, err := users.ParseSecret(a.Flow.Pending["totp"])
	if err != nil {
		return nil, nil, err
	}
	return secret, strings.Fields(a.Flow.Pending["recovery"]), nil
}

// pendingQR is pending plus the QR code of the new key.
func (h *Handler) pendingQR(r *http.Request, a *oidcstore.AuthRequest, u store.User, fresh bool) ([]byte, []string, template.URL, error) {
	secret, codes, err := h.pending(r, a, fresh)
	if err != nil {
		return nil, nil, "", err
	}
	qr, err := QRDataURI(OTPAuthURL(h.Issuer, u.Username, secret))
	return secret, codes, qr, err
}

func (h *Handler) totpSetup(w http.ResponseWriter, r *http.Request) {
	a, u, lang, ok := h.load(w, r, stepEnroll, stepVerified)
	if !ok {
		return
	}
	secret, _, qr, err := h.pendingQR(r, a, u, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	b32 := users.EncodeSecret(secret)
	_ = h.Templates.TOTPSetup(w, http.StatusOK, templates.TOTPSetupPage{
		Base:         h.Login.Base(w, r, lang),
		QRDataURI:    qr,
		Secret:       b32,
		SecretGroups: GroupSecret(b32),
		PrintURL:     h.flowURL("/mfa/totp/print", a),
		ConfirmURL:   h.flowURL("/mfa/totp/confirm", a),
		Apps:         true,
	})
}

func (h *Handler) totpPrint(w http.ResponseWriter, r *http.Request) {
	a, u, lang, ok := h.load(w, r, stepEnroll, stepVerified)
	if !ok {
		return
	}
	if a.Flow.Pending["totp"] == "" {
		http.Redirect(w, r, h.flowURL("/mfa/totp", a), http.StatusSeeOther)
		return
	}
	secret, codes, qr, err := h.pendingQR(r, a, u, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	_ = h.Templates.TOTPPrint(w, http.StatusOK, templates.TOTPPrintPage{
		Base:          h.Login.Base(w, r, lang),
		QRDataURI:     qr,
		SecretGroups:  GroupSecret(users.EncodeSecret(secret)),
		RecoveryCodes: codes,
		Username:      u.Username,
		Issuer:        h.Issuer,
		Date:          h.now().In(montreal).Format("2006-01-02"),
	})
}

func (h *Handler) totpConfirmPage(w http.ResponseWriter, r *http.Request) {
	a, _, lang, ok := h.load(w, r, stepEnroll, stepVerified)
	if !ok {
		return
	}
	if a.Flow.Pending["totp"] == "" || a.Flow.Pending["enrolled"] != "" {
		http.Redirect(w, r, h.flowURL("/mfa/totp", a), http.StatusSeeOther)
		return
	}
	h.renderConfirm(w, r, a, lang, http.StatusOK, "", "")
}

func (h *Handler) renderConfirm(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, lang string, status int, device, errKey string) {
	b := h.Login.Base(w, r, lang)
	b.Error = errKey
	_ = h.Templates.TOTPConfirm(w, status, templates.TOTPConfirmPage{
		Base: b, Action: h.flowURL("/mfa/totp/confirm", a), DeviceName: device,
	})
}

// totpConfirm checks the first code of the new authenticator and, in one
// transaction, stores it (verified), the recovery codes, the audit event and
// the confirmation email.
func (h *Handler) totpConfirm(w http.ResponseWriter, r *http.Request) {
	if !h.Login.CheckPost(w, r) {
		return
	}
	a, u, lang, ok := h.load(w, r, stepEnroll, stepVerified)
	if !ok {
		return
	}
	if a.Flow.Pending["totp"] == "" || a.Flow.Pending["enrolled"] != "" {
		http.Redirect(w, r, h.flowURL("/mfa/totp", a), http.StatusSeeOther)
		return
	}
	device := strings.TrimSpace(r.PostFormValue("device_name"))
	if !h.attempt(w, r, a, u) {
		return
	}
	secret, codes, err := h.pending(r, a, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	step, match := MatchTOTP(secret, r.PostFormValue("code"), h.now())
	if !match {
		h.wrongCode(w, r, a, u, "totp_enroll", func() {
			h.renderConfirm(w, r, a, lang, http.StatusUnprocessableEntity, device, "error.code_invalid")
		})
		return
	}
	if device == "" || utf8.RuneCountInString(device) > 64 {
		h.renderConfirm(w, r, a, lang, http.StatusUnprocessableEntity, "", "error.device_name_required")
		return
	}
	// One confirmation per pending key, also when the form is sent twice
	// at once.
	once := "totpconfirm:" + a.ID + ":" + a.Flow.Pending["totp"][:8]
	if err := h.Ephemeral.PutNew(r.Context(), once, []byte{1}, oidcstore.AuthRequestTTL); err != nil {
		if errors.Is(err, ephemeral.ErrExists) {
			h.Login.ErrorPage(w, r, http.StatusConflict, lang, "error.expired.title", "error.expired.message")
			return
		}
		h.fail(w, r, err)
		return
	}
	now := h.now()
	cred := users.NewTOTPCredential(h.Sealer, u.ID, device, secret, now, now)
	cred.TOTPLastStep, cred.LastUsedAt = step, now
	err = h.Store.InTx(r.Context(), func(tx store.Tx) error {
		if a.Flow.Step == stepEnroll {
			// Enrollment at sign-in is only for an account with no factor.
			existing, err := tx.ListCredentials(r.Context(), u.ID, "")
			if err != nil {
				return err
			}
			if slices.ContainsFunc(existing, func(c store.Credential) bool { return c.Type != store.CredPassword && !c.VerifiedAt.IsZero() }) {
				return errAlreadyEnrolled
			}
		}
		if err := tx.CreateCredential(r.Context(), cred); err != nil {
			return err
		}
		if len(codes) > 0 {
			hashes := make([]string, len(codes))
			for i, c := range codes {
				hashes[i] = HashRecoveryCode(u.ID, c)
			}
			if err := tx.ReplaceRecoveryCodes(r.Context(), u.ID, hashes, now); err != nil {
				return err
			}
		}
		if err := tx.AppendAuditEvent(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.enrolled", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
			Details: map[string]string{"method": "totp", "credential_id": cred.ID}})); err != nil {
			return err
		}
		return h.email(r.Context(), tx, u, "method_added:"+cred.ID, "method_added", templates.MethodAddedEmail{
			GivenName: u.GivenName, MethodName: h.Templates.T(emailLang(u), "method.totp"), DeviceName: device,
			When: formatWhen(now, emailLang(u)), SupportURL: h.SupportURL,
		})
	})
	if err != nil {
		_ = h.Ephemeral.Delete(r.Context(), once)
	}
	if errors.Is(err, errAlreadyEnrolled) {
		h.Login.ErrorPage(w, r, http.StatusForbidden, lang, "error.forbidden.title", "error.forbidden.message")
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.poke()
	h.verified(r, a, u, "otp")
	a.Flow.Step = stepVerified
	a.Flow.Pending["enrolled"] = cred.ID // kept for the print sheet
	if !h.save(w, r, a) {
		return
	}
	b := h.Login.Base(w, r, lang)
	b.Notice, b.NoticeArgs = "notice.method_added", []any{device}
	page := templates.RecoveryCodesPage{
		Base:           b,
		Codes:          codes,
		ContinueAction: h.flowURL("/mfa/continue", a),
		AddMethodURL:   h.flowURL("/mfa/setup", a),
	}
	if len(codes) > 0 {
		page.PrintURL = h.flowURL("/mfa/totp/print", a)
	}
	_ = h.Templates.RecoveryCodes(w, http.StatusOK, page)
}

var errAlreadyEnrolled = errors.New("mfa: account already has a second factor")

// ---- challenge ----

func (h *Handler) challengePage(w http.ResponseWriter, r *http.Request) {
	a, u, lang, ok := h.load(w, r, stepChallenge)
	if !ok {
		return
	}
	h.renderChallenge(w, r, a, u, lang, http.StatusOK, r.URL.Query().Get("method"), "")
}

func (h *Handler) renderChallenge(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, lang string, status int, method, errKey string) {
	factors, err := h.verifiedFactors(r.Context(), u.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var methods []string
	for _, c := range factors {
		methods = appendUnique(methods, string(c.Type))
	}
	remaining := h.remainingRecovery(r.Context(), u.ID)
	if remaining > 0 {
		methods = append(methods, "recovery")
	}
	if !slices.Contains(methods, method) && len(methods) > 0 {
		method = methods[0]
	}
	var links []templates.MethodLink
	for _, m := range methods {
		if m != method {
			links = append(links, templates.MethodLink{Method: m, URL: h.flowURL("/mfa/challenge", a, "method", m)})
		}
	}
	b := h.Login.Base(w, r, lang)
	b.Error = errKey
	action := h.flowURL("/mfa/challenge", a)
	if r.FormValue("then") == "add" {
		// "Add a second method": verify a code first, then set it up.
		action = h.flowURL("/mfa/challenge", a, "then", "add")
	}
	_ = h.Templates.MFAChallenge(w, status, templates.MFAChallengePage{
		Base:              b,
		Action:            action,
		Method:            method,
		Methods:           links,
		AddMethodURL:      h.flowURL("/mfa/challenge", a, "then", "add", "method", method),
		RemainingRecovery: remaining,
	})
}

func (h *Handler) remainingRecovery(ctx context.Context, userID string) int {
	codes, err := h.Store.ListRecoveryCodes(ctx, userID)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range codes {
		if c.UsedAt.IsZero() {
			n++
		}
	}
	return n
}

// attempt applies the per-account and per-address limits on codes.
func (h *Handler) attempt(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User) bool {
	ok, err := h.Regulator.Attempt(r.Context(), regulate.Code, u.ID, h.Login.Networks.ClientIP(r).String())
	if err != nil {
		h.fail(w, r, err)
		return false
	}
	if !ok {
		h.Audit(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.throttled", UserID: u.ID, ClientID: a.ClientID}))
		h.Login.ErrorPage(w, r, http.StatusTooManyRequests, "", "error.throttled.title", "error.throttled")
		return false
	}
	return true
}

// wrongCode counts a failure; the fifth voids the challenge and sends the
// user back to the password step. Otherwise render shows the page again.
func (h *Handler) wrongCode(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, method string, render func()) {
	n, err := h.Ephemeral.Incr(r.Context(), failuresKey(a), oidcstore.AuthRequestTTL)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.Audit(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.failed", UserID: u.ID, ClientID: a.ClientID,
		Details: map[string]string{"method": method, "failures": fmt.Sprint(n)}}))
	if n < MaxFailures {
		render()
		return
	}
	if n == MaxFailures {
		h.Audit(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.challenge_voided", UserID: u.ID, ClientID: a.ClientID}))
	}
	// The challenge is void: this round of the flow accepts no code any
	// more, the user must give the password again. (A marker rather than a
	// rewrite of the flow, which concurrent requests could overwrite.)
	if err := h.Ephemeral.Put(r.Context(), voidKey(a), []byte{1}, oidcstore.AuthRequestTTL); err != nil {
		h.fail(w, r, err)
		return
	}
	h.Login.ShowLogin(w, r, a, http.StatusUnauthorized, "error.challenge_void")
}

func failuresKey(a *oidcstore.AuthRequest) string {
	return fmt.Sprintf("mfafail:%s:%d", a.ID, a.Flow.Round)
}

func voidKey(a *oidcstore.AuthRequest) string {
	return fmt.Sprintf("mfavoid:%s:%d", a.ID, a.Flow.Round)
}

func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) {
	if !h.Login.CheckPost(w, r) {
		return
	}
	a, u, lang, ok := h.load(w, r, stepChallenge)
	if !ok {
		return
	}
	method := r.PostFormValue("method")
	code := r.PostFormValue("code")
	if !h.attempt(w, r, a, u) {
		return
	}
	if method == "recovery" || LooksLikeRecoveryCode(code) {
		h.useRecovery(w, r, a, u, lang, code)
		return
	}
	for _, f := range h.Factors {
		if string(f.Type()) != method {
			continue
		}
		cred, err := f.Verify(r.Context(), u, code, h.now())
		if errors.Is(err, ErrCodeInvalid) {
			h.wrongCode(w, r, a, u, method, func() {
				h.renderChallenge(w, r, a, u, lang, http.StatusUnprocessableEntity, method, "error.code_invalid")
			})
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.Audit(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.verified", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
			Details: map[string]string{"method": method, "credential_id": cred.ID}}))
		h.verified(r, a, u, f.AMR())
		if r.FormValue("then") == "add" {
			a.Flow.Step = stepVerified
			if h.save(w, r, a) {
				http.Redirect(w, r, h.flowURL("/mfa/setup", a), http.StatusSeeOther)
			}
			return
		}
		h.finish(w, r, a, u)
		return
	}
	h.renderChallenge(w, r, a, u, lang, http.StatusBadRequest, "", "error.code_invalid")
}

// useRecovery consumes a recovery code (atomically: each works once, also
// under concurrent submissions), emails the user and tells how many remain.
func (h *Handler) useRecovery(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, lang, code string) {
	now := h.now()
	var remaining int
	err := h.Store.InTx(r.Context(), func(tx store.Tx) error {
		if err := tx.ConsumeRecoveryCode(r.Context(), u.ID, HashRecoveryCode(u.ID, code), now); err != nil {
			return err
		}
		codes, err := tx.ListRecoveryCodes(r.Context(), u.ID)
		if err != nil {
			return err
		}
		for _, c := range codes {
			if c.UsedAt.IsZero() {
				remaining++
			}
		}
		if err := tx.AppendAuditEvent(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.recovery_used", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
			Details: map[string]string{"remaining": fmt.Sprint(remaining)}})); err != nil {
			return err
		}
		return h.email(r.Context(), tx, u, "recovery_used:"+uuid.NewString(), "recovery_code_used", templates.RecoveryCodeUsedEmail{
			GivenName: u.GivenName, When: formatWhen(now, emailLang(u)), Remaining: remaining, SupportURL: h.SupportURL,
		})
	})
	if errors.Is(err, store.ErrNotFound) {
		h.wrongCode(w, r, a, u, "recovery", func() {
			h.renderChallenge(w, r, a, u, lang, http.StatusUnprocessableEntity, "recovery", "error.recovery_invalid")
		})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.poke()
	h.verified(r, a, u, "otp")
	a.Flow.Step = stepVerified
	if remaining == 0 {
		a.Flow.Step = stepRecoveryEmpty
	}
	if !h.save(w, r, a) {
		return
	}
	page := templates.RecoveryUsedPage{
		Base:             h.Login.Base(w, r, lang),
		Remaining:        remaining,
		RegenerateAction: h.flowURL("/mfa/recovery/regenerate", a),
	}
	if remaining > 0 {
		page.ContinueAction = h.flowURL("/mfa/continue", a)
	}
	_ = h.Templates.RecoveryUsed(w, http.StatusOK, page)
}

// regenerateInFlow replaces the recovery codes right after a second factor
// was verified in this flow (and is required when none remain).
func (h *Handler) regenerateInFlow(w http.ResponseWriter, r *http.Request) {
	if !h.Login.CheckPost(w, r) {
		return
	}
	a, u, lang, ok := h.load(w, r, stepVerified, stepRecoveryEmpty)
	if !ok {
		return
	}
	codes, err := h.Regenerate(r, u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	a.Flow.Step = stepVerified
	if !h.save(w, r, a) {
		return
	}
	_ = h.Templates.RecoveryCodes(w, http.StatusOK, templates.RecoveryCodesPage{
		Base:           h.Login.Base(w, r, lang),
		Codes:          codes,
		ContinueAction: h.flowURL("/mfa/continue", a),
		Regenerated:    true,
	})
}

// Regenerate replaces the user's recovery codes (voiding the old set) and
// returns the new ones, to show once.
func (h *Handler) Regenerate(r *http.Request, u store.User) ([]string, error) {
	codes := NewRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = HashRecoveryCode(u.ID, c)
	}
	err := h.Store.InTx(r.Context(), func(tx store.Tx) error {
		if err := tx.ReplaceRecoveryCodes(r.Context(), u.ID, hashes, h.now()); err != nil {
			return err
		}
		return tx.AppendAuditEvent(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.recovery_regenerated", ActorID: u.ID, UserID: u.ID}))
	})
	return codes, err
}

func (h *Handler) continueFlow(w http.ResponseWriter, r *http.Request) {
	if !h.Login.CheckPost(w, r) {
		return
	}
	a, u, _, ok := h.load(w, r, stepVerified)
	if !ok {
		return
	}
	h.finish(w, r, a, u)
}

// finish ends the sign-in with the factors verified in this flow.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User) {
	amr := []string{"pwd"}
	for _, f := range a.Flow.Factors {
		amr = appendUnique(amr, f)
	}
	amr = append(amr, "mfa")
	a.Flow.Pending = nil
	h.Login.Finish(w, r, a, u, amr, login.ACRMFA)
}

// ---- helpers ----

// verified records a factor verified in this flow and clears the user's
// code-attempt count.
func (h *Handler) verified(r *http.Request, a *oidcstore.AuthRequest, u store.User, amr string) {
	h.Regulator.Reset(r.Context(), regulate.Code, u.ID)
	a.Flow.Factors = appendUnique(a.Flow.Factors, amr)
}

func (h *Handler) event(r *http.Request, e store.AuditEvent) store.AuditEvent {
	e.ID = uuid.NewString()
	e.At = h.now()
	e.IP = h.Login.Networks.ClientIP(r).String()
	return e
}

// email queues a templated email to u in tx.
func (h *Handler) email(ctx context.Context, tx store.Tx, u store.User, key, name string, data any) error {
	if u.Email == "" {
		return nil
	}
	lang := emailLang(u)
	subject, text, html, err := h.Templates.Email(lang, name, data)
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

func emailLang(u store.User) string {
	if strings.HasPrefix(u.Locale, "en") {
		return "en"
	}
	return "fr"
}

var montreal = func() *time.Location {
	if loc, err := time.LoadLocation("America/Montreal"); err == nil {
		return loc
	}
	return time.FixedZone("EST", -5*3600)
}()

func formatWhen(t time.Time, lang string) string {
	t = t.In(montreal)
	if lang == "en" {
		return t.Format("January 2, 2006 at 3:04 pm MST")
	}
	return t.Format("2006-01-02 à 15 h 04 (MST)")
}

func appendUnique(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
