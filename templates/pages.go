package templates

import (
	"fmt"
	"html/template"
	"net/http"
)

const (
	pageLogin          = "login"
	pageError          = "error"
	pageSignedOut      = "signed_out"
	pageActivate       = "activate"
	pageMFASetup       = "mfa_setup"
	pageTOTPSetup      = "totp_setup"
	pageTOTPConfirm    = "totp_confirm"
	pageSMSEnroll      = "sms_enroll"
	pageSMSConfirm     = "sms_confirm"
	pageWebAuthnEnroll = "webauthn_enroll"
	pageTOTPPrint      = "totp_print"
	pageRecoveryCodes  = "recovery_codes"
	pageMFAChallenge   = "mfa_challenge"
	pageRecoveryUsed   = "recovery_used"
	pageSecurity       = "security"
	pageLogoutConfirm  = "logout_confirm"
	pagePassword       = "password"
)

// Base is the data every page carries.
type Base struct {
	Lang string // "fr" | "en"; anything else renders in French
	CSRF string // value of the hidden input "csrf_token" of every POST form
	// LangURLs are the targets of the language switch, e.g.
	// {"fr": "/login?flow=x&lang=fr", "en": "/login?flow=x&lang=en"};
	// "?lang=xx" when missing.
	LangURLs map[string]string
	// Error is a message KEY (e.g. "error.code_invalid"), shown translated
	// in .error[role=alert] at the top of the form; the message key+"_hint"
	// follows it when it exists.
	Error string
	// ErrorArgs format the Error message (e.g. when to retry).
	ErrorArgs []any
	// Notice is a message KEY for a neutral banner (.notice[role=status]),
	// formatted with NoticeArgs.
	Notice     string
	NoticeArgs []any
}

// LoginPage is the password step: form#login.
type LoginPage struct {
	Base
	Action     string // form action (POST)
	Flow       string // hidden input "flow"
	Username   string // prefilled username (after a failed attempt)
	ClientName string // the application the user signs in to; optional
	ForgotURL  string // the forgotten-password page; optional
}

// ErrorPage is a dead end: a title, a message and a reference for support.
type ErrorPage struct {
	Base
	Title     string // message key; "error.generic.title" when empty
	Message   string // message key; "error.generic.message" when empty
	RequestID string // shown as the reference for support; optional
}

// SignedOutPage follows a logout.
type SignedOutPage struct {
	Base
}

// LogoutConfirmPage asks before signing out when the request cannot prove
// it comes from the application (no valid id_token_hint): form#logout.
type LogoutConfirmPage struct {
	Base
	Action string            // form action (POST)
	Params map[string]string // hidden inputs carried to the POST (client_id, post_logout_redirect_uri, state, ui_locales)
	Cancel string            // where "stay signed in" goes
}

// ActivatePage lets a new user choose a password: form#activate.
type ActivatePage struct {
	Base
	Action    string // form action (POST)
	Token     string // hidden input "token"; empty hides the form (with Error "error.activation_invalid")
	Username  string // shown read-only, and given to password managers
	MinLength int    // minimum length told to the user; 8 when zero
}

// MFASetupPage is the method picker of the first enrollment, or of "add a
// second method" (Continuing).
type MFASetupPage struct {
	Base
	TOTPURL     string // "Set up" link of the authenticator app
	SMSURL      string // empty: SMS not offered
	WebAuthnURL string // empty: security keys not offered
	// Continuing is true when the user already has a method and is adding
	// another one: the page then says "add a method" rather than "MFA is
	// mandatory, choose your first method".
	Continuing bool
	// SkipAction, when set, is the POST of "continue without adding" (a
	// flow whose factor is verified already).
	SkipAction string
}

// TOTPSetupPage shows the QR code and key of a new authenticator, the print
// link and the way to the confirmation.
type TOTPSetupPage struct {
	Base
	QRDataURI    template.URL // data:image/png;base64,… of the otpauth:// URI
	Secret       string       // base32 key, in data-secret
	SecretGroups []string     // the key in groups (e.g. of 4) for typing
	PrintURL     string       // the print page, opened in a new window
	ConfirmURL   string       // next page (GET); its query is kept
	Apps         bool         // name recommended apps (Google, Microsoft Authenticator, Authy)
}

// TOTPConfirmPage asks for a first code and a device name: form#totp-enroll.
type TOTPConfirmPage struct {
	Base
	Action     string // form action (POST)
	DeviceName string // prefilled device name (after an error)
}

// SMSEnrollPage asks for a cell phone number and a device name:
// form#sms-enroll.
type SMSEnrollPage struct {
	Base
	Action     string // form action (POST): sends the code
	Phone      string // prefilled after an error
	DeviceName string
}

// SMSConfirmPage asks for the code sent to the new number: form#sms-confirm,
// and form#sms-resend ("send a new code").
type SMSConfirmPage struct {
	Base
	Action       string // POST: the code
	ResendAction string // POST: a new code
	Destination  string // the masked number
	ChangeURL    string // back to the number (another number)
}

// WebAuthnEnrollPage registers a passkey or security key: input#webauthn-name
// and button#webauthn-register in form#webauthn-enroll; webauthn.js calls
// navigator.credentials.create with Options and posts the answer in the
// hidden input "credential".
type WebAuthnEnrollPage struct {
	Base
	Action  string // form action (POST)
	Options string // creation options, JSON (data-options)
	Name    string // prefilled key name (after an error)
}

// TOTPPrintPage is the sheet to print or save as PDF: QR code, key and
// recovery codes, on one page.
type TOTPPrintPage struct {
	Base
	QRDataURI     template.URL
	SecretGroups  []string
	RecoveryCodes []string
	Username      string
	Issuer        string // e.g. "Sésame" or the issuer host
	Date          string // already formatted
}

// RecoveryCodesPage shows new recovery codes once.
type RecoveryCodesPage struct {
	Base
	Codes          []string
	PrintURL       string // empty: no print link
	ContinueAction string // POST: continue to the application
	AddMethodURL   string // empty: no "add a second method" link
	Regenerated    bool   // codes regenerated (not a first enrollment)
	// Added is the method just set up: "sms" and "webauthn" have their own
	// success message (the app's otherwise).
	Added string
}

// MethodLink is another method the user can switch to on the challenge.
type MethodLink struct {
	Method string // "totp" | "sms" | "recovery" | "webauthn"
	URL    string
}

// MFAChallengePage asks for a second factor: form#mfa.
type MFAChallengePage struct {
	Base
	Action       string       // form action (POST)
	Method       string       // "totp" | "recovery" | "sms"; hidden input "method"
	Methods      []MethodLink // the other methods
	AddMethodURL string       // empty: no "add a second method" link (a#add-method)
	// DismissAddMethodAction is the POST of form#add-method-dismiss ("not
	// now": hidden for 30 days).
	DismissAddMethodAction string
	// Adding: the user asked to add a method; a code of an existing one
	// comes first.
	Adding            bool
	RemainingRecovery int // shown with Method "recovery"
	// SendAction is the POST of form#sms-send (Method "sms"); Sent: a code
	// was sent (to Destination, masked), form#mfa is shown.
	SendAction  string
	Sent        bool
	Destination string
	// WebAuthnOptions are the request options of Method "webauthn" (JSON,
	// data-options of button#webauthn-signin).
	WebAuthnOptions string
}

// RecoveryUsedPage follows a sign-in with a recovery code.
type RecoveryUsedPage struct {
	Base
	Remaining        int
	ContinueAction   string // POST; not shown when Remaining == 0
	RegenerateAction string // POST
}

// SecurityMethod is one enrolled method on the security page.
type SecurityMethod struct {
	ID           string
	Type         string // "totp" | "sms" | "webauthn"
	Name         string // device name
	Added        string // already formatted
	LastUsed     string // already formatted; empty: never
	RemoveAction string // POST with hidden "id"; empty: cannot be removed (last one)
	Phone        string // the masked number of an SMS method
}

// SecurityPage lists the user's methods and recovery codes.
type SecurityPage struct {
	Base
	Username          string
	Methods           []SecurityMethod
	AddMethodURL      string
	RegenerateAction  string // POST
	RemainingRecovery int
	PasswordURL       string // the password change (a#change-password); optional
}

// Login renders the password step.
func (e *Engine) Login(w http.ResponseWriter, status int, p LoginPage) error {
	return e.render(w, status, pageLogin, &p.Base, &p)
}

// Error renders an error page.
func (e *Engine) Error(w http.ResponseWriter, status int, p ErrorPage) error {
	return e.render(w, status, pageError, &p.Base, &p)
}

// SignedOut renders the page shown after a logout.
func (e *Engine) SignedOut(w http.ResponseWriter, status int, p SignedOutPage) error {
	return e.render(w, status, pageSignedOut, &p.Base, &p)
}

// Activate renders the choice of a first password.
func (e *Engine) Activate(w http.ResponseWriter, status int, p ActivatePage) error {
	return e.render(w, status, pageActivate, &p.Base, &p)
}

// MFASetup renders the method picker.
func (e *Engine) MFASetup(w http.ResponseWriter, status int, p MFASetupPage) error {
	return e.render(w, status, pageMFASetup, &p.Base, &p)
}

// TOTPSetup renders the QR code and key of a new authenticator.
func (e *Engine) TOTPSetup(w http.ResponseWriter, status int, p TOTPSetupPage) error {
	return e.render(w, status, pageTOTPSetup, &p.Base, &p)
}

// TOTPConfirm renders the first-code confirmation of an authenticator.
func (e *Engine) TOTPConfirm(w http.ResponseWriter, status int, p TOTPConfirmPage) error {
	return e.render(w, status, pageTOTPConfirm, &p.Base, &p)
}

// SMSEnroll renders the phone-number form of a new SMS method.
func (e *Engine) SMSEnroll(w http.ResponseWriter, status int, p SMSEnrollPage) error {
	return e.render(w, status, pageSMSEnroll, &p.Base, &p)
}

// WebAuthnEnroll renders the registration of a passkey or security key.
func (e *Engine) WebAuthnEnroll(w http.ResponseWriter, status int, p WebAuthnEnrollPage) error {
	return e.render(w, status, pageWebAuthnEnroll, &p.Base, &p)
}

// SMSConfirm renders the code form of a new SMS method.
func (e *Engine) SMSConfirm(w http.ResponseWriter, status int, p SMSConfirmPage) error {
	return e.render(w, status, pageSMSConfirm, &p.Base, &p)
}

// TOTPPrint renders the print sheet.
func (e *Engine) TOTPPrint(w http.ResponseWriter, status int, p TOTPPrintPage) error {
	return e.render(w, status, pageTOTPPrint, &p.Base, &p)
}

// RecoveryCodes renders new recovery codes.
func (e *Engine) RecoveryCodes(w http.ResponseWriter, status int, p RecoveryCodesPage) error {
	return e.render(w, status, pageRecoveryCodes, &p.Base, &p)
}

// MFAChallenge renders the second-factor challenge.
func (e *Engine) MFAChallenge(w http.ResponseWriter, status int, p MFAChallengePage) error {
	return e.render(w, status, pageMFAChallenge, &p.Base, &p)
}

// RecoveryUsed renders the page that follows a sign-in with a recovery code.
func (e *Engine) RecoveryUsed(w http.ResponseWriter, status int, p RecoveryUsedPage) error {
	return e.render(w, status, pageRecoveryUsed, &p.Base, &p)
}

// LogoutConfirm asks before signing out.
func (e *Engine) LogoutConfirm(w http.ResponseWriter, status int, p LogoutConfirmPage) error {
	return e.render(w, status, pageLogoutConfirm, &p.Base, &p)
}

// PasswordPage is a step of a forgotten password or a password change.
// Mode picks it: "forgot" (form#password-forgot: username), "sent" (the
// same answer whether the account exists or not, #password-forgot-sent),
// "link" (the emailed link: form#password-reset-link, a POST so link
// scanners use nothing), "no_factor" (#password-no-factor: call support),
// "reset" (form#password-reset: password, password_confirm), "done"
// (#password-reset-done) and "change" (form#password-change:
// current_password, password, password_confirm).
type PasswordPage struct {
	Base
	Mode       string
	Action     string // form action (POST)
	Token      string // "link": hidden input token
	Flow       string // "reset": hidden input flow
	Username   string // "forgot": typed back; "change": for password managers
	MinLength  int
	SignInURL  string // "done"
	BackURL    string // "change": the Security page
	SupportURL string // "no_factor"; optional
}

// Password renders a forgotten-password or password-change page.
func (e *Engine) Password(w http.ResponseWriter, status int, p PasswordPage) error {
	return e.render(w, status, pagePassword, &p.Base, &p)
}

// Security renders the user's methods.
func (e *Engine) Security(w http.ResponseWriter, status int, p SecurityPage) error {
	return e.render(w, status, pageSecurity, &p.Base, &p)
}

// render executes a page into a buffer, then writes it with status (200
// when zero). b is the Base inside data, normalised first.
func (e *Engine) render(w http.ResponseWriter, status int, page string, b *Base, data any) error {
	b.Lang = normLang(b.Lang)
	buf, err := execPage(e.pages[page][b.Lang], data)
	if err != nil {
		return fmt.Errorf("templates: render %s (%s): %w", page, b.Lang, err)
	}
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", b.Lang)
	w.WriteHeader(status)
	_, err = buf.WriteTo(w)
	return err
}

// samplePage is a zero page of the right type, rendered once by New.
func samplePage(name, lang string) any {
	b := Base{Lang: lang}
	switch name {
	case pageLogin:
		return &LoginPage{Base: b}
	case pageError:
		return &ErrorPage{Base: b}
	case pageSignedOut:
		return &SignedOutPage{Base: b}
	case pageActivate:
		return &ActivatePage{Base: b}
	case pageMFASetup:
		return &MFASetupPage{Base: b}
	case pageTOTPSetup:
		return &TOTPSetupPage{Base: b}
	case pageTOTPConfirm:
		return &TOTPConfirmPage{Base: b}
	case pageTOTPPrint:
		return &TOTPPrintPage{Base: b}
	case pageSMSEnroll:
		return &SMSEnrollPage{Base: b}
	case pageSMSConfirm:
		return &SMSConfirmPage{Base: b}
	case pageWebAuthnEnroll:
		return &WebAuthnEnrollPage{Base: b}
	case pageRecoveryCodes:
		return &RecoveryCodesPage{Base: b}
	case pageMFAChallenge:
		return &MFAChallengePage{Base: b}
	case pageRecoveryUsed:
		return &RecoveryUsedPage{Base: b}
	case pageSecurity:
		return &SecurityPage{Base: b}
	case pageLogoutConfirm:
		return &LogoutConfirmPage{Base: b}
	case pagePassword:
		return &PasswordPage{Base: b}
	}
	if p := sampleRequestPage(name, b); p != nil {
		return p
	}
	return &b
}
