package templates

import (
	"bytes"
	"fmt"
	"strings"
)

const (
	emailMethodAdded      = "method_added"
	emailRecoveryCodeUsed = "recovery_code_used"
	emailActivation       = "activation"
	emailPhoneChanged     = "phone_changed"
	emailAccountChanged   = "account_changed"
	emailRequestDone      = "account_request_done"
	emailRequestRejected  = "account_request_rejected"
	emailPasswordReset    = "password_reset"
	emailPasswordChanged  = "password_changed"
)

// AccountChangedEmail is the data of the "account_changed" email: support
// disabled, enabled or closed the account, or reset its second factors.
type AccountChangedEmail struct {
	GivenName  string
	Change     string // already translated: T(lang, "email.account_changed.disabled")…
	When       string // already formatted
	SupportURL string // optional
}

// AccountRequestDoneEmail is the data of the "account_request_done" email
// to a requester: the new user has received their access (the welcome
// email was sent).
type AccountRequestDoneEmail struct {
	RequesterName string // empty: a greeting without a name
	UserName      string // the new user's given and family name
	Username      string
	RequestID     string
	Update        bool // an existing account was updated
}

// AccountRequestRejectedEmail is the data of the "account_request_rejected"
// email to a requester.
type AccountRequestRejectedEmail struct {
	RequesterName string
	UserName      string
	RequestID     string
	Reason        string
}

// PhoneChangedEmail is the data of the "phone_changed" email: support
// changed the user's SMS number.
type PhoneChangedEmail struct {
	GivenName  string
	Phone      string // the new number, masked
	When       string // already formatted
	SupportURL string // optional
}

// MethodAddedEmail is the data of the "method_added" email.
type MethodAddedEmail struct {
	GivenName  string // empty: a greeting without a name
	MethodName string // translated, e.g. T(lang, "method.totp")
	DeviceName string
	When       string // already formatted
	SupportURL string // optional
}

// RecoveryCodeUsedEmail is the data of the "recovery_code_used" email.
type RecoveryCodeUsedEmail struct {
	GivenName  string
	When       string // already formatted
	Remaining  int
	SupportURL string // optional
}

// ActivationEmail is the data of the "activation" email: a single-use link
// to choose a password, never a password.
type ActivationEmail struct {
	GivenName string
	Username  string
	Link      string
	Expires   string // already formatted
}

// PasswordResetEmail is the data of the "password_reset" email: a
// single-use link to choose a new password after a second factor.
type PasswordResetEmail struct {
	GivenName string
	Username  string
	Link      string
	Minutes   int // how long the link works
}

// PasswordChangedEmail is the data of the "password_changed" email.
type PasswordChangedEmail struct {
	GivenName  string
	Reset      bool   // through a forgotten-password link
	When       string // already formatted
	SupportURL string // optional
}

// Email renders the email name ("method_added", "recovery_code_used",
// "activation") in lang: the subject (message email.<name>.subject), the
// plain-text body (emails/<name>.txt, text/template) and the HTML body
// (emails/<name>.html, html/template).
func (e *Engine) Email(lang, name string, data any) (subject, text, html string, err error) {
	lang = normLang(lang)
	ht, ok := e.mailHTML[name][lang]
	tt := e.mailText[name][lang]
	if !ok || tt == nil {
		return "", "", "", fmt.Errorf("templates: no email %q", name)
	}
	var tb, hb bytes.Buffer
	if err := tt.ExecuteTemplate(&tb, "layout", data); err != nil {
		return "", "", "", fmt.Errorf("templates: email %s (%s): %w", name, lang, err)
	}
	if err := ht.ExecuteTemplate(&hb, "layout", data); err != nil {
		return "", "", "", fmt.Errorf("templates: email %s (%s): %w", name, lang, err)
	}
	return e.T(lang, "email."+name+".subject"), normalizeText(tb.String()), hb.String(), nil
}

// normalizeText trims trailing spaces and collapses runs of blank lines that
// template actions leave behind, and ends with one newline.
func normalizeText(s string) string {
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := true // drop leading blank lines
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

// sampleEmail is zero data of the right type, rendered once by New.
func sampleEmail(name string) any {
	switch name {
	case emailMethodAdded:
		return MethodAddedEmail{}
	case emailRecoveryCodeUsed:
		return RecoveryCodeUsedEmail{}
	case emailActivation:
		return ActivationEmail{}
	case emailPasswordReset:
		return PasswordResetEmail{}
	case emailPasswordChanged:
		return PasswordChangedEmail{}
	case emailAccountChanged:
		return AccountChangedEmail{}
	}
	return nil
}
