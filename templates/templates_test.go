package templates

import (
	"encoding/json"
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// A 1×1 PNG: enough for an img src.
const testQR = template.URL("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")

var testCodes = []string{"k7dq-2mfp", "x9ra-4tve", "c3hn-8wsb", "p6ju-5gyl", "m2zt-7ked"}

func newEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func base(lang string) Base {
	return Base{
		Lang:     lang,
		CSRF:     "csrf-123",
		LangURLs: map[string]string{"fr": "/p?flow=x&lang=fr", "en": "/p?flow=x&lang=en"},
	}
}

// A page case: how to render it, and what it must contain.
type pageCase struct {
	name   string
	render func(e *Engine, w http.ResponseWriter, b Base) error
	// selectors that must match at least once: "tag#id", "tag.class",
	// "tag[name=x]", "#id", ".class", or combinations like "form#login".
	want []string
	// inside is "form selector" → names of the inputs it must hold.
	inside map[string][]string
}

func pageCases() []pageCase {
	return []pageCase{
		{
			name: "login",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				b.Error = "error.credentials"
				return e.Login(w, 200, LoginPage{Base: b, Action: "/login", Flow: "f1", Username: "sophie", ClientName: "DME Clinique"})
			},
			want:   []string{"form#login", "input#username[autocomplete=username]", "input#password[autocomplete=current-password]", "div.error[role=alert]"},
			inside: map[string][]string{"form#login": {"username", "password", "flow", "csrf_token"}},
		},
		{
			name: "error",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.Error(w, 400, ErrorPage{Base: b, Title: "error.bad_request.title", Message: "error.bad_request.message", RequestID: "req-42"})
			},
			want: []string{".error", ".reference"},
		},
		{
			name: "signed_out",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.SignedOut(w, 200, SignedOutPage{Base: b})
			},
			want: []string{"h1"},
		},
		{
			name: "activate",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				b.Error = "error.password_mismatch"
				return e.Activate(w, 200, ActivatePage{Base: b, Action: "/activate", Token: "tok", Username: "sophie", MinLength: 8})
			},
			want: []string{"form#activate", "input#password[autocomplete=new-password]", "input#password_confirm[autocomplete=new-password]", "input[autocomplete=username]", "div.error[role=alert]"},
			inside: map[string][]string{
				"form#activate": {"password", "password_confirm", "token", "csrf_token"},
			},
		},
		{
			name: "mfa_setup",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.MFASetup(w, 200, MFASetupPage{Base: b, TOTPURL: "/mfa/totp", SMSURL: "/mfa/sms", WebAuthnURL: "/mfa/webauthn"})
			},
			want: []string{"a[href=/mfa/totp]", "a[href=/mfa/sms]", "a[href=/mfa/webauthn]", ".method-card.recommended"},
		},
		{
			name: "totp_setup",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.TOTPSetup(w, 200, TOTPSetupPage{Base: b, QRDataURI: testQR, Secret: "JBSWY3DPEHPK3PXPJBSWY3DP",
					SecretGroups: []string{"JBSW", "Y3DP", "EHPK", "3PXP", "JBSW", "Y3DP"},
					PrintURL:     "/mfa/totp/print?flow=f1", ConfirmURL: "/mfa/totp/confirm?flow=f1", Apps: true})
			},
			want: []string{"img#totp-qr", "code#totp-secret[data-secret=JBSWY3DPEHPK3PXPJBSWY3DP]",
				"a.button[href=/mfa/totp/print?flow=f1][target=_blank][rel=noopener]", "form[method=get][action=/mfa/totp/confirm?flow=f1]"},
			inside: map[string][]string{"form[method=get]": {"flow"}},
		},
		{
			name: "totp_confirm",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				b.Error = "error.code_invalid"
				return e.TOTPConfirm(w, 200, TOTPConfirmPage{Base: b, Action: "/mfa/totp/confirm", DeviceName: "Pixel"})
			},
			want: []string{"form#totp-enroll[method=post]", "input#code[autocomplete=one-time-code][inputmode=numeric]", "input#device_name", "div.error[role=alert]"},
			inside: map[string][]string{
				"form#totp-enroll": {"code", "device_name", "csrf_token"},
			},
		},
		{
			name: "sms_enroll",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				b.Error = "error.phone.us"
				return e.SMSEnroll(w, 422, SMSEnrollPage{Base: b, Action: "/mfa/sms", Phone: "212 736-5000", DeviceName: "Pixel"})
			},
			want: []string{"form#sms-enroll[method=post]", "input#phone[type=tel]", "input#device_name", "div.error[role=alert]"},
			inside: map[string][]string{
				"form#sms-enroll": {"phone", "device_name", "csrf_token"},
			},
		},
		{
			name: "sms_confirm",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.SMSConfirm(w, 200, SMSConfirmPage{Base: b, Action: "/mfa/sms/confirm", ResendAction: "/mfa/sms/resend",
					Destination: "+1 •••-•••-1234", ChangeURL: "/mfa/sms"})
			},
			want: []string{"form#sms-confirm[method=post]", "input#code[autocomplete=one-time-code][inputmode=numeric]", "form#sms-resend[method=post]"},
			inside: map[string][]string{
				"form#sms-confirm": {"code", "csrf_token"},
			},
		},
		{
			name: "totp_print",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.TOTPPrint(w, 200, TOTPPrintPage{Base: b, QRDataURI: testQR, SecretGroups: []string{"JBSW", "Y3DP"},
					RecoveryCodes: testCodes, Username: "sophie", Issuer: "Sésame", Date: "2025-11-22"})
			},
			want: []string{"img#totp-qr", "li.recovery-code", "button#print[type=button]", "script[defer]"},
		},
		{
			name: "recovery_codes",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.RecoveryCodes(w, 200, RecoveryCodesPage{Base: b, Codes: testCodes, PrintURL: "/print",
					ContinueAction: "/mfa/continue", AddMethodURL: "/mfa/setup?add=1"})
			},
			want:   []string{"li.recovery-code", "a[href=/print]", "a[href=/mfa/setup?add=1]", "form[action=/mfa/continue][method=post]", ".success"},
			inside: map[string][]string{"form[action=/mfa/continue]": {"csrf_token"}},
		},
		{
			name: "mfa_challenge",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				b.Error = "error.code_invalid"
				return e.MFAChallenge(w, 200, MFAChallengePage{Base: b, Action: "/mfa", Method: "totp",
					Methods:      []MethodLink{{"sms", "/mfa?m=sms"}, {"recovery", "/mfa?m=recovery"}, {"webauthn", "/mfa?m=webauthn"}},
					AddMethodURL: "/mfa/add"})
			},
			want: []string{"form#mfa[method=post]", "input[name=method][value=totp]", "input#code[autocomplete=one-time-code][inputmode=numeric]",
				"a[href=/mfa?m=sms]", "a[href=/mfa?m=recovery]", "a[href=/mfa/add]", "div.error[role=alert]"},
			inside: map[string][]string{"form#mfa": {"method", "code", "csrf_token"}},
		},
		{
			name: "recovery_used",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				return e.RecoveryUsed(w, 200, RecoveryUsedPage{Base: b, Remaining: 3, ContinueAction: "/continue", RegenerateAction: "/regenerate"})
			},
			want: []string{"form[action=/continue][method=post]", "form[action=/regenerate][method=post]"},
		},
		{
			name: "security",
			render: func(e *Engine, w http.ResponseWriter, b Base) error {
				b.Notice = "notice.method_removed"
				b.NoticeArgs = []any{"Ancien cellulaire"}
				return e.Security(w, 200, SecurityPage{Base: b, Username: "sophie", AddMethodURL: "/mfa/setup", RegenerateAction: "/regenerate", RemainingRecovery: 4,
					Methods: []SecurityMethod{
						{ID: "m1", Type: "totp", Name: "Pixel 7", Added: "2025-01-02", LastUsed: "2025-11-20", RemoveAction: "/security/remove"},
						{ID: "m2", Type: "sms", Name: "", Added: "2025-03-04"},
					}})
			},
			want: []string{"form[action=/security/remove][method=post]", "input[name=id][value=m1]", "a[href=/mfa/setup]", "form[action=/regenerate]", ".notice[role=status]"},
		},
	}
}

func TestNew(t *testing.T) {
	e := newEngine(t)
	for _, name := range pageNames {
		for _, lang := range languages {
			if e.pages[name][lang] == nil {
				t.Errorf("page %s (%s) not parsed", name, lang)
			}
		}
	}
}

func TestPages(t *testing.T) {
	e := newEngine(t)
	keys := allKeys(t)
	for _, pc := range pageCases() {
		for _, lang := range languages {
			t.Run(pc.name+"/"+lang, func(t *testing.T) {
				rec := httptest.NewRecorder()
				if err := pc.render(e, rec, base(lang)); err != nil {
					t.Fatalf("render: %v", err)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type = %q", ct)
				}
				if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q", cc)
				}
				body := rec.Body.String()
				doc := parseDoc(body)

				if !doc.has(`html[lang=` + lang + `]`) {
					t.Errorf("no <html lang=%q>", lang)
				}
				for _, sel := range pc.want {
					if !doc.has(sel) {
						t.Errorf("missing %s", sel)
					}
				}
				for formSel, names := range pc.inside {
					form, ok := doc.first(formSel)
					if !ok {
						t.Errorf("missing %s", formSel)
						continue
					}
					for _, n := range names {
						if !doc.within(form, "[name="+n+"]") {
							t.Errorf("%s has no input %q", formSel, n)
						}
					}
				}
				checkCommon(t, doc, body, lang, keys)
			})
		}
	}
}

// checkCommon holds what every page must do.
func checkCommon(t *testing.T, doc *document, body, lang string, keys []string) {
	t.Helper()
	text := doc.text()
	// No message key shown instead of its message (T returns unknown
	// keys as they are).
	for _, k := range keys {
		if strings.Contains(text, k) {
			t.Errorf("message key %q shown as text", k)
		}
	}
	if k := keyLike.FindString(text); k != "" {
		t.Errorf("unknown message key %q shown as text", k)
	}
	if strings.Contains(body, "%!") {
		t.Errorf("fmt error in output")
	}
	if strings.Contains(body, "ZgotmplZ") {
		t.Errorf("html/template rejected a value (ZgotmplZ)")
	}
	// Strict CSP: no inline style or script.
	if regexp.MustCompile(`(?i)\sstyle\s*=`).MatchString(body) {
		t.Errorf("style attribute found")
	}
	if regexp.MustCompile(`(?i)<style[\s>]`).MatchString(body) {
		t.Errorf("<style> element found")
	}
	if regexp.MustCompile(`(?i)\son[a-z]+\s*=`).MatchString(body) {
		t.Errorf("inline event handler found")
	}
	for _, s := range doc.all("script") {
		if s.attrs["src"] == "" || !strings.HasPrefix(s.attrs["src"], "/static/") {
			t.Errorf("script without a same-origin src: %v", s.attrs)
		}
	}
	if regexp.MustCompile(`(?is)<script[^>]*>\s*[^<\s]`).MatchString(body) {
		t.Errorf("inline script content")
	}
	for _, l := range doc.all("link") {
		if href := l.attrs["href"]; !strings.HasPrefix(href, "/static/") {
			t.Errorf("link to %q, not under /static/", href)
		}
	}
	if !doc.has(`link[rel=stylesheet]`) {
		t.Errorf("no stylesheet")
	}
	// Every POST form carries the CSRF token; GET forms never do (it
	// would end up in URLs and logs).
	for _, f := range doc.all("form") {
		method := strings.ToLower(f.attrs["method"])
		hasCSRF := doc.within(f, `input[type=hidden][name=csrf_token][value=csrf-123]`)
		switch method {
		case "post":
			if !hasCSRF {
				t.Errorf("POST form %v has no csrf_token", f.attrs)
			}
		case "get":
			if doc.within(f, `[name=csrf_token]`) {
				t.Errorf("GET form %v carries csrf_token", f.attrs)
			}
		default:
			t.Errorf("form %v without an explicit method", f.attrs)
		}
	}
	// Every visible input has a label tied to it.
	for _, in := range doc.all("input") {
		if in.attrs["type"] == "hidden" {
			continue
		}
		id := in.attrs["id"]
		if id == "" || !doc.has(`label[for=`+id+`]`) {
			t.Errorf("input %v has no label", in.attrs)
		}
	}
	// Images have alt text (empty for decoration).
	for _, img := range doc.all("img") {
		if _, ok := img.attrs["alt"]; !ok {
			t.Errorf("img %v has no alt", img.attrs)
		}
	}
	// The language switch offers the other language.
	other := "en"
	if lang == "en" {
		other = "fr"
	}
	if !doc.has(`nav.lang-switch`) || !doc.has(`a[hreflang=`+other+`][href=/p?flow=x&lang=`+other+`]`) {
		t.Errorf("no language switch to %s", other)
	}
	if !strings.Contains(text, "Sésame") {
		t.Errorf("no Sésame wordmark")
	}
	if strings.Contains(strings.ToLower(body), "omnimed") {
		t.Errorf("page mentions Omnimed")
	}
}

func TestFrenchIsDefault(t *testing.T) {
	e := newEngine(t)
	for _, lang := range []string{"", "de", "es-MX"} {
		rec := httptest.NewRecorder()
		if err := e.Login(rec, 0, LoginPage{Base: Base{Lang: lang}, Action: "/login"}); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 200 {
			t.Errorf("status %d, want 200 for status 0", rec.Code)
		}
		doc := parseDoc(rec.Body.String())
		if !doc.has(`html[lang=fr]`) || !strings.Contains(doc.text(), "Se connecter") {
			t.Errorf("Lang %q: not French", lang)
		}
		if rec.Header().Get("Content-Language") != "fr" {
			t.Errorf("Content-Language = %q", rec.Header().Get("Content-Language"))
		}
	}
	rec := httptest.NewRecorder()
	if err := e.Login(rec, 200, LoginPage{Base: Base{Lang: "en-CA"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(parseDoc(rec.Body.String()).text(), "Sign in") {
		t.Errorf("en-CA did not render in English")
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		ui, user, accept string
		want             string
	}{
		{"", "", "", "fr"},
		{"en", "", "", "en"},
		{"en-CA fr", "", "", "en"},
		{"de en-CA fr", "fr-CA", "fr", "en"},
		{"de it", "en-CA", "", "en"},
		{"", "fr-CA", "en", "fr"},
		{"", "en-CA", "fr", "en"},
		{"", "", "en-US,en;q=0.9", "en"},
		{"", "", "de-DE, en;q=0.5, fr;q=0.8", "fr"},
		{"", "", "fr;q=0.2, en;q=0.9", "en"},
		{"", "", "fr;q=0, en;q=0.1", "en"},
		{"", "", "en;q=0", "fr"},
		{"", "", "de, es", "fr"},
		{"", "", "de, *;q=0.5", "fr"},
		{"", "", "fr;q=0, *", "en"},
		{"", "", "EN-gb", "en"},
		{"", "", "en;q=bogus, fr", "fr"},
		{"", "", " , ;q=1, en", "en"},
		{"FR_ca", "", "", "fr"},
		{"", "", "en;q=1.5, fr;q=0.5", "fr"},
	}
	for _, tt := range tests {
		if got := Negotiate(tt.ui, tt.user, tt.accept); got != tt.want {
			t.Errorf("Negotiate(%q, %q, %q) = %q, want %q", tt.ui, tt.user, tt.accept, got, tt.want)
		}
	}
}

func TestLocalesHaveSameKeys(t *testing.T) {
	var sets []map[string]string
	for _, lang := range languages {
		b, err := fs.ReadFile(embedded, "locales/"+lang+".json")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		sets = append(sets, m)
	}
	for i, m := range sets {
		for k, v := range m {
			if strings.TrimSpace(v) == "" {
				t.Errorf("%s: %q empty", languages[i], k)
			}
			for j, other := range sets {
				if _, ok := other[k]; !ok {
					t.Errorf("%q is in %s, missing in %s", k, languages[i], languages[j])
				}
			}
			if strings.Contains(strings.ToLower(v), "omnimed") {
				t.Errorf("%s: %q mentions Omnimed", languages[i], k)
			}
		}
	}
	// The keys the handlers use.
	handlerKeys := []string{
		"error.credentials", "error.throttled", "error.flow_expired", "error.csrf",
		"error.password_short", "error.password_common", "error.password_mismatch", "error.activation_invalid",
		"error.code_invalid", "error.code_invalid_hint", "error.code_expired", "error.device_name_required",
		"error.challenge_void", "error.recovery_invalid",
		"error.generic.title", "error.generic.message", "error.not_found.title", "error.not_found.message",
		"error.bad_request.title", "error.bad_request.message", "error.unknown_client.title", "error.unknown_client.message",
		"error.expired.title", "error.expired.message", "error.account_disabled.title", "error.account_disabled.message",
		"error.forbidden.title", "error.forbidden.message", "error.throttled.title",
		"notice.method_removed", "notice.method_added", "notice.sms_sent", "notice.password_set",
		"method.totp", "method.sms", "method.webauthn", "method.recovery",
	}
	for _, k := range handlerKeys {
		for i, m := range sets {
			if _, ok := m[k]; !ok {
				t.Errorf("handler key %q missing in %s", k, languages[i])
			}
		}
	}
}

func TestErrorMessagesExact(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct{ lang, msg, hint string }{
		{"fr", "Ce code n'est pas valide", "Ouvrez de nouveau l'application d'authentification"},
		{"en", "This code is not valid", "Reopen the authenticator app"},
	} {
		for _, render := range []func(http.ResponseWriter, Base) error{
			func(w http.ResponseWriter, b Base) error {
				return e.TOTPConfirm(w, 200, TOTPConfirmPage{Base: b, Action: "/x"})
			},
			func(w http.ResponseWriter, b Base) error {
				return e.MFAChallenge(w, 200, MFAChallengePage{Base: b, Action: "/x", Method: "totp"})
			},
		} {
			rec := httptest.NewRecorder()
			b := base(tc.lang)
			b.Error = "error.code_invalid"
			if err := render(rec, b); err != nil {
				t.Fatal(err)
			}
			doc := parseDoc(rec.Body.String())
			errEl, ok := doc.first(`div.error[role=alert]`)
			if !ok {
				t.Fatalf("%s: no .error", tc.lang)
			}
			got := doc.textWithin(errEl)
			if !strings.HasPrefix(got, tc.msg) || !strings.Contains(got, tc.hint) {
				t.Errorf("%s: error text %q, want %q then the hint", tc.lang, got, tc.msg)
			}
			// The raw HTML keeps the apostrophe readable for simple checks.
			if !strings.Contains(rec.Body.String(), tc.msg) {
				t.Errorf("%s: raw body lacks %q", tc.lang, tc.msg)
			}
		}
	}
	if got := newEngine(t).T("fr", "error.credentials"); got != "Nom d'utilisateur ou mot de passe invalide." {
		t.Errorf("error.credentials fr = %q", got)
	}
	if got := newEngine(t).T("en", "error.credentials"); got != "Invalid username or password." {
		t.Errorf("error.credentials en = %q", got)
	}
}

func TestT(t *testing.T) {
	e := newEngine(t)
	if got := e.T("fr", "no.such.key"); got != "no.such.key" {
		t.Errorf("unknown key = %q", got)
	}
	if got := e.T("en", "error.reference", "abc"); got != "Reference for support: abc" {
		t.Errorf("args: %q", got)
	}
	if got := e.T("xx", "login.submit"); got != "Se connecter" {
		t.Errorf("unsupported lang: %q", got)
	}
	if got := e.T("en", "login.submit"); got != "Sign in" {
		t.Errorf("en: %q", got)
	}
}

func TestTOTPPrint(t *testing.T) {
	e := newEngine(t)
	for _, lang := range languages {
		rec := httptest.NewRecorder()
		if err := e.TOTPPrint(rec, 200, TOTPPrintPage{Base: base(lang), QRDataURI: testQR, SecretGroups: []string{"JBSW", "Y3DP"},
			RecoveryCodes: testCodes, Username: "sophie", Issuer: "Sésame", Date: "2025-11-22"}); err != nil {
			t.Fatal(err)
		}
		doc := parseDoc(rec.Body.String())
		if n := len(doc.all(".recovery-code")); n != 5 {
			t.Errorf("%s: %d .recovery-code, want 5", lang, n)
		}
		qr, ok := doc.first("img#totp-qr")
		if !ok || qr.attrs["src"] != string(testQR) {
			t.Errorf("%s: #totp-qr src = %q", lang, qr.attrs["src"])
		}
		s, ok := doc.first("script")
		if !ok || !strings.HasPrefix(s.attrs["src"], "/static/print.js") {
			t.Errorf("%s: print.js not loaded", lang)
		}
		for _, c := range testCodes {
			if !strings.Contains(doc.text(), c) {
				t.Errorf("%s: code %s missing", lang, c)
			}
		}
		if !strings.Contains(doc.text(), "JBSW Y3DP") {
			t.Errorf("%s: key not grouped", lang)
		}
	}
}

func TestTOTPSetupKeepsConfirmQuery(t *testing.T) {
	e := newEngine(t)
	rec := httptest.NewRecorder()
	err := e.TOTPSetup(rec, 200, TOTPSetupPage{Base: base("fr"), QRDataURI: testQR, Secret: "ABCD", SecretGroups: []string{"ABCD"},
		ConfirmURL: "/mfa/totp/confirm?flow=a%26b&x=1"})
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(rec.Body.String())
	form, ok := doc.first("form[method=get]")
	if !ok {
		t.Fatal("no GET form")
	}
	if !doc.within(form, "input[type=hidden][name=flow][value=a&b]") || !doc.within(form, "input[type=hidden][name=x][value=1]") {
		t.Errorf("query of ConfirmURL not repeated as hidden inputs")
	}
	if doc.has("a.button[target=_blank]") {
		t.Errorf("print link shown without PrintURL")
	}
	text := doc.text()
	for _, app := range []string{"Google Authenticator", "Microsoft Authenticator", "Authy"} {
		if strings.Contains(text, app) {
			t.Errorf("%s listed with Apps false", app)
		}
	}
	if !strings.Contains(text, "N'utilisez pas l'appareil photo de votre téléphone") {
		t.Errorf("camera warning missing")
	}
	if doc.has("a[href^=http]") {
		t.Errorf("external link on the setup page")
	}
}

// SMS at the challenge: first form#sms-send (a POST), then, once sent,
// form#mfa with method=sms and the "send a new code" form; the other
// methods are links a[data-method].
func TestMFAChallengeSMS(t *testing.T) {
	e := newEngine(t)
	rec := httptest.NewRecorder()
	p := MFAChallengePage{Base: base("fr"), Action: "/mfa/challenge", Method: "sms", SendAction: "/mfa/sms/send",
		Destination: "+1 •••-•••-1234", Methods: []MethodLink{{Method: "totp", URL: "/mfa/challenge?method=totp"}}}
	if err := e.MFAChallenge(rec, 200, p); err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(rec.Body.String())
	if !doc.has("form#sms-send[method=post][action=/mfa/sms/send]") || doc.has("form#mfa") {
		t.Errorf("before sending: want form#sms-send only")
	}
	if !doc.has("a[data-method=totp]") || !strings.Contains(doc.text(), "+1 •••-•••-1234") {
		t.Errorf("no a[data-method=totp] or destination")
	}
	p.Sent = true
	rec = httptest.NewRecorder()
	if err := e.MFAChallenge(rec, 200, p); err != nil {
		t.Fatal(err)
	}
	doc = parseDoc(rec.Body.String())
	if !doc.has("form#mfa") || !doc.has("input[name=method][value=sms]") || !doc.has("form#sms-resend[action=/mfa/sms/send]") || doc.has("form#sms-send") {
		t.Errorf("once sent: want form#mfa (method sms) and form#sms-resend")
	}
}

func TestMFAChallengeMethods(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct {
		method, lang, label string
		numeric             bool
	}{
		{"totp", "fr", "Code de validation", true},
		{"totp", "en", "Validation code", true},
		{"recovery", "fr", "Code de récupération", false},
		{"recovery", "en", "Recovery code", false},
		{"sms", "fr", "Code reçu par SMS", true},
	} {
		rec := httptest.NewRecorder()
		if err := e.MFAChallenge(rec, 200, MFAChallengePage{Base: base(tc.lang), Action: "/mfa", Method: tc.method, RemainingRecovery: 2, Sent: tc.method == "sms"}); err != nil {
			t.Fatal(err)
		}
		doc := parseDoc(rec.Body.String())
		l, _ := doc.first("label[for=code]")
		if got := doc.textWithin(l); got != tc.label {
			t.Errorf("%s/%s: label %q, want %q", tc.method, tc.lang, got, tc.label)
		}
		if doc.has("input#code[inputmode=numeric]") != tc.numeric {
			t.Errorf("%s/%s: inputmode numeric = %v", tc.method, tc.lang, !tc.numeric)
		}
		if !doc.has("input[name=method][value=" + tc.method + "]") {
			t.Errorf("%s: hidden method missing", tc.method)
		}
		if tc.method == "recovery" && !strings.Contains(doc.text(), "2") {
			t.Errorf("remaining count not shown")
		}
		if tc.method == "totp" && !doc.has("p.info") {
			t.Errorf("no 'the app does not send a notification' note")
		}
	}
	// A voided challenge offers no form.
	rec := httptest.NewRecorder()
	b := base("fr")
	b.Error = "error.challenge_void"
	if err := e.MFAChallenge(rec, 200, MFAChallengePage{Base: b, Action: "/mfa", Method: "totp"}); err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(rec.Body.String())
	if doc.has("form#mfa") || !doc.has("div.error[role=alert]") {
		t.Errorf("voided challenge: want the error and no form")
	}
}

func TestRecoveryUsedPlurals(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct {
		lang      string
		remaining int
		want      string
		forms     int
	}{
		{"fr", 0, "Il ne vous reste aucun code de récupération.", 1},
		{"fr", 1, "Il vous reste 1 code de récupération.", 2},
		{"fr", 4, "Il vous reste 4 codes de récupération.", 2},
		{"en", 0, "You have no recovery codes left.", 1},
		{"en", 1, "You have 1 recovery code left.", 2},
		{"en", 2, "You have 2 recovery codes left.", 2},
	} {
		rec := httptest.NewRecorder()
		if err := e.RecoveryUsed(rec, 200, RecoveryUsedPage{Base: base(tc.lang), Remaining: tc.remaining, ContinueAction: "/continue", RegenerateAction: "/regenerate"}); err != nil {
			t.Fatal(err)
		}
		doc := parseDoc(rec.Body.String())
		if !strings.Contains(doc.text(), tc.want) {
			t.Errorf("%s/%d: want %q", tc.lang, tc.remaining, tc.want)
		}
		if n := len(doc.all("form")); n != tc.forms {
			t.Errorf("%s/%d: %d forms, want %d", tc.lang, tc.remaining, n, tc.forms)
		}
		if tc.remaining == 0 && doc.has("form[action=/continue]") {
			t.Errorf("continue offered with no code left")
		}
	}
}

func TestRecoveryCodesPage(t *testing.T) {
	e := newEngine(t)
	for _, regenerated := range []bool{false, true} {
		rec := httptest.NewRecorder()
		if err := e.RecoveryCodes(rec, 200, RecoveryCodesPage{Base: base("en"), Codes: testCodes, ContinueAction: "/c", Regenerated: regenerated}); err != nil {
			t.Fatal(err)
		}
		doc := parseDoc(rec.Body.String())
		if n := len(doc.all("li.recovery-code")); n != 5 {
			t.Errorf("%d codes", n)
		}
		for _, li := range doc.all("li.recovery-code") {
			if !doc.within(li, "code") {
				t.Errorf("recovery code not in <code>")
			}
		}
		enrolled := strings.Contains(doc.text(), "Your authenticator app is now configured! A confirmation email has been sent.")
		if enrolled == regenerated {
			t.Errorf("Regenerated=%v: enrolled message shown=%v", regenerated, enrolled)
		}
		if doc.has("a[target=_blank]") {
			t.Errorf("print link without PrintURL")
		}
	}
}

func TestActivateWithoutToken(t *testing.T) {
	e := newEngine(t)
	rec := httptest.NewRecorder()
	b := base("fr")
	b.Error = "error.activation_invalid"
	if err := e.Activate(rec, 410, ActivatePage{Base: b, Action: "/activate"}); err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(rec.Body.String())
	if rec.Code != 410 || doc.has("form") || !doc.has("div.error[role=alert]") {
		t.Errorf("expired activation: want status 410, the error and no form")
	}
	if !strings.Contains(doc.text(), "un lien plus récent vous a été envoyé") {
		t.Errorf("activation_invalid message missing")
	}
}

func TestEscaping(t *testing.T) {
	e := newEngine(t)
	rec := httptest.NewRecorder()
	evil := `"><script>alert(1)</script>`
	if err := e.Login(rec, 200, LoginPage{Base: base("fr"), Action: "javascript:alert(1)", Username: evil, ClientName: evil}); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if strings.Contains(body, "<script>alert") || strings.Contains(body, `action="javascript:`) {
		t.Errorf("unescaped input in page")
	}
}

func TestEmails(t *testing.T) {
	e := newEngine(t)
	keys := allKeys(t)
	cases := []struct {
		name string
		data any
		want []string // in the text body, both languages
	}{
		{"method_added", MethodAddedEmail{GivenName: "Zoé O'Neil & co", MethodName: "Authenticator app", DeviceName: "Pixel <7>", When: "2025-11-22 07:01", SupportURL: "https://support.example/help"},
			[]string{"Zoé O'Neil & co", "Pixel <7>", "2025-11-22 07:01", "https://support.example/help"}},
		{"recovery_code_used", RecoveryCodeUsedEmail{GivenName: "Zoé", When: "2025-11-22 07:01", Remaining: 1, SupportURL: "https://support.example/help"},
			[]string{"Zoé", "2025-11-22 07:01", "1", "https://support.example/help"}},
		{"activation", ActivationEmail{GivenName: "Zoé", Username: "zoe.oneil", Link: "https://sesame.example/activate?t=abc&u=1", Expires: "2025-11-29"},
			[]string{"zoe.oneil", "https://sesame.example/activate?t=abc&u=1", "2025-11-29"}},
	}
	notYou := map[string]string{"fr": "Si ce n'était pas vous, communiquez immédiatement avec le soutien technique.", "en": "If this was not you, contact support immediately."}
	for _, tc := range cases {
		for _, lang := range languages {
			subject, text, htm, err := e.Email(lang, tc.name, tc.data)
			if err != nil {
				t.Fatalf("%s/%s: %v", tc.name, lang, err)
			}
			if subject == "" || subject == "email."+tc.name+".subject" || strings.ContainsAny(subject, "\r\n") {
				t.Errorf("%s/%s: subject %q", tc.name, lang, subject)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s/%s: text lacks %q:\n%s", tc.name, lang, w, text)
				}
				if !strings.Contains(html.UnescapeString(htm), w) {
					t.Errorf("%s/%s: html lacks %q", tc.name, lang, w)
				}
			}
			if strings.Contains(text, "&amp;") || strings.Contains(text, "&#39;") || strings.Contains(text, "&lt;") {
				t.Errorf("%s/%s: HTML escaping in the text body", tc.name, lang)
			}
			if strings.Contains(htm, "Pixel <7>") || strings.Contains(htm, "<img") || strings.Contains(htm, "<script") {
				t.Errorf("%s/%s: unsafe html body", tc.name, lang)
			}
			if !strings.Contains(htm, `<html lang="`+lang+`">`) {
				t.Errorf("%s/%s: html body without lang", tc.name, lang)
			}
			for _, k := range keys {
				if strings.Contains(text, k) || strings.Contains(htm, k) {
					t.Errorf("%s/%s: message key %q shown", tc.name, lang, k)
				}
			}
			if k := keyLike.FindString(visibleText(htm) + text); k != "" {
				t.Errorf("%s/%s: unknown message key %q shown", tc.name, lang, k)
			}
			if tc.name != "activation" && !strings.Contains(text, notYou[lang]) {
				t.Errorf("%s/%s: no 'if this was not you' line", tc.name, lang)
			}
			if strings.Contains(strings.ToLower(text+htm), "omnimed") {
				t.Errorf("%s/%s: mentions Omnimed", tc.name, lang)
			}
		}
	}
	if _, _, _, err := e.Email("fr", "nope", nil); err == nil {
		t.Errorf("unknown email: no error")
	}
	// Activation never carries a password.
	_, text, _, _ := e.Email("en", "activation", ActivationEmail{Username: "u", Link: "https://x/a"})
	if !strings.Contains(text, "Hello,") || strings.Contains(strings.ToLower(text), "password:") {
		t.Errorf("activation email: %s", text)
	}
}

func TestOverride(t *testing.T) {
	login, err := fs.ReadFile(embedded, "pages/login.html")
	if err != nil {
		t.Fatal(err)
	}
	custom := strings.Replace(string(login), `{{define "content"}}`, `{{define "content"}}<p class="brand-marker">Clinique du Parc</p>`, 1)
	e, err := New(fstest.MapFS{
		"pages/login.html":  {Data: []byte(custom)},
		"static/sesame.css": {Data: []byte("body{color:#000}")},
		"static/brand.png":  {Data: []byte("\x89PNG\r\n\x1a\n")},
	})
	if err != nil {
		t.Fatalf("New(override): %v", err)
	}
	rec := httptest.NewRecorder()
	if err := e.Login(rec, 200, LoginPage{Base: base("fr"), Action: "/login"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.Body.String(), "Clinique du Parc") {
		t.Errorf("override page not used")
	}
	rec = httptest.NewRecorder()
	e.Static().ServeHTTP(rec, httptest.NewRequest("GET", "/static/sesame.css", nil))
	if rec.Body.String() != "body{color:#000}" {
		t.Errorf("override css not served: %q", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	e.Static().ServeHTTP(rec, httptest.NewRequest("GET", "/static/brand.png", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/png" {
		t.Errorf("added static file: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}

	// Pages of an unchanged engine are not affected.
	rec = httptest.NewRecorder()
	if err := newEngine(t).Login(rec, 200, LoginPage{Base: base("fr")}); err != nil || strings.Contains(rec.Body.String(), "Clinique du Parc") {
		t.Errorf("override leaked into the embedded engine")
	}
}

func TestNewFailsFast(t *testing.T) {
	login, _ := fs.ReadFile(embedded, "pages/login.html")
	en, _ := fs.ReadFile(embedded, "locales/en.json")
	var enMsgs map[string]string
	if err := json.Unmarshal(en, &enMsgs); err != nil {
		t.Fatal(err)
	}
	delete(enMsgs, "login.submit")
	enMissing, _ := json.Marshal(enMsgs)

	tests := []struct {
		name    string
		fsys    fs.FS
		wantErr string
	}{
		{"unknown key in a page", fstest.MapFS{"pages/login.html": {Data: []byte(strings.Replace(string(login), `{{t "login.submit"}}`, `{{t "login.nope"}}`, 1))}}, `"login.nope"`},
		{"key missing in one language", fstest.MapFS{"locales/en.json": {Data: enMissing}}, `"login.submit"`},
		{"bad template", fstest.MapFS{"pages/login.html": {Data: []byte(`{{define "content"}}{{if}}{{end}}`)}}, "login"},
		{"page without content", fstest.MapFS{"pages/login.html": {Data: []byte(`{{define "title"}}x{{end}}`)}}, "content"},
		{"bad json", fstest.MapFS{"locales/fr.json": {Data: []byte(`{`)}}, "fr.json"},
		{"unknown field", fstest.MapFS{"pages/login.html": {Data: []byte(`{{define "title"}}x{{end}}{{define "content"}}{{.Nope}}{{end}}`)}}, "Nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.fsys)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New = %v, want an error mentioning %s", err, tt.wantErr)
			}
		})
	}
	// A page or email missing from the embedded files fails too.
	for _, name := range []string{"pages/security.html", "emails/activation.txt", "locales/en.json", "pages/layout.html"} {
		if _, err := build(missingFS{fs: embedded, name: name}, nil); err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(name[strings.Index(name, "/")+1:], ".html")) {
			t.Errorf("without %s: %v", name, err)
		}
	}
}

// missingFS hides one file of fs.
type missingFS struct {
	fs   fs.FS
	name string
}

func (m missingFS) Open(name string) (fs.File, error) {
	if name == m.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return m.fs.Open(name)
}

func TestRenderErrorWritesNothing(t *testing.T) {
	login, _ := fs.ReadFile(embedded, "pages/login.html")
	// Fails only when Username is set, so New's zero-value render passes.
	broken := strings.Replace(string(login), `{{define "content"}}`, `{{define "content"}}{{if .Username}}{{static "missing.css"}}{{end}}`, 1)
	e, err := New(fstest.MapFS{"pages/login.html": {Data: []byte(broken)}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := e.Login(rec, 200, LoginPage{Base: base("fr"), Username: "x"}); err == nil {
		t.Fatal("no error")
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Errorf("half a page written: %q", rec.Body.String())
	}
}

func TestStatic(t *testing.T) {
	e := newEngine(t)
	h := e.Static()
	get := func(method, target string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for path, ctype := range map[string]string{
		"/static/sesame.css": "text/css; charset=utf-8",
		"/static/print.js":   "text/javascript; charset=utf-8",
		"/static/logo.svg":   "image/svg+xml",
		"/sesame.css":        "text/css; charset=utf-8", // behind http.StripPrefix
	} {
		rec := get("GET", path, nil)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(rec.Header().Get("Cache-Control"), "max-age=") {
			t.Errorf("%s: headers %v", path, rec.Header())
		}
	}
	// The pages link versioned URLs, cached for a year.
	u := e.staticURL["sesame.css"]
	rec := get("GET", u, nil)
	if rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("versioned: Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	if rec := get("GET", "/static/sesame.css?v=old", nil); strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("stale version cached forever")
	}
	etag := rec.Header().Get("ETag")
	if rec := get("GET", u, map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", rec.Code)
	}
	if rec := get("HEAD", "/static/print.js", nil); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d", rec.Code)
	}
	for _, p := range []string{"/static/nope.css", "/static/", "/static/../templates.go", "/static/../locales/fr.json"} {
		if rec := get("GET", p, nil); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
	if rec := get("POST", "/static/sesame.css", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	// The CSS and JS hold no inline-only constructs the CSP would block.
	js, _ := fs.ReadFile(embedded, "static/print.js")
	if !strings.Contains(string(js), "window.print()") || !strings.Contains(string(js), `getElementById("print")`) {
		t.Errorf("print.js does not print")
	}
	css, _ := fs.ReadFile(embedded, "static/sesame.css")
	if !strings.Contains(string(css), "@media print") || !strings.Contains(string(css), ":focus-visible") {
		t.Errorf("css lacks print or focus rules")
	}
}

// keyLike matches what looks like a message key in visible text.
var keyLike = regexp.MustCompile(`\b(app|layout|common|login|error|signed_out|activate|mfa_setup|totp_setup|totp_confirm|totp_print|recovery_codes|recovery_used|recovery|mfa|security|method|notice|email|sms|sms_enroll|sms_confirm)\.[a-z_.]+`)

func allKeys(t *testing.T) []string {
	t.Helper()
	b, err := fs.ReadFile(embedded, "locales/fr.json")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// A minimal HTML reader for the tests: the elements with their attributes
// and positions, enough to check selectors on the pages we generate (which
// are well-formed). golang.org/x/net/html is not a dependency of the module.

type element struct {
	tag        string
	attrs      map[string]string
	start, end int // byte range of the element, end at its closing tag (or the tag itself for void elements)
}

type document struct {
	src   string
	elems []*element
}

var (
	tagRe  = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s/>"'=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*)\s*/?>`)
	attrRe = regexp.MustCompile(`([^\s/>"'=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?`)
	voids  = map[string]bool{"input": true, "img": true, "meta": true, "link": true, "br": true, "hr": true}
)

func parseDoc(src string) *document {
	d := &document{src: src}
	var stack []*element
	for _, m := range tagRe.FindAllStringSubmatchIndex(src, -1) {
		closing := src[m[2]:m[3]] == "/"
		tag := strings.ToLower(src[m[4]:m[5]])
		if closing {
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].tag == tag {
					stack[i].end = m[1]
					stack = stack[:i]
					break
				}
			}
			continue
		}
		el := &element{tag: tag, attrs: map[string]string{}, start: m[0], end: m[1]}
		for _, a := range attrRe.FindAllStringSubmatch(src[m[6]:m[7]], -1) {
			el.attrs[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3] + a[4])
		}
		d.elems = append(d.elems, el)
		if !voids[tag] {
			stack = append(stack, el)
		}
	}
	return d
}

// matches supports tag, #id, .class (several), [attr], [attr=value] and
// [attr^=prefix].
func (el *element) matches(sel string) bool {
	selRe := regexp.MustCompile(`^([a-z0-9]*)((?:[#.][a-zA-Z0-9_-]+)*)((?:\[[^\]]+\])*)$`)
	m := selRe.FindStringSubmatch(sel)
	if m == nil {
		panic("bad selector " + sel)
	}
	if m[1] != "" && m[1] != el.tag {
		return false
	}
	for _, part := range regexp.MustCompile(`[#.][a-zA-Z0-9_-]+`).FindAllString(m[2], -1) {
		switch part[0] {
		case '#':
			if el.attrs["id"] != part[1:] {
				return false
			}
		case '.':
			found := false
			for _, c := range strings.Fields(el.attrs["class"]) {
				if c == part[1:] {
					found = true
				}
			}
			if !found {
				return false
			}
		}
	}
	for _, a := range regexp.MustCompile(`\[([^\]]+)\]`).FindAllStringSubmatch(m[3], -1) {
		name, value, hasValue := strings.Cut(a[1], "=")
		prefix := strings.HasSuffix(name, "^")
		name = strings.TrimSuffix(name, "^")
		got, ok := el.attrs[name]
		switch {
		case !ok:
			return false
		case prefix && !strings.HasPrefix(got, value):
			return false
		case !prefix && hasValue && got != value:
			return false
		}
	}
	return true
}

func (d *document) all(sel string) []*element {
	var out []*element
	for _, el := range d.elems {
		if el.matches(sel) {
			out = append(out, el)
		}
	}
	return out
}

func (d *document) first(sel string) (*element, bool) {
	all := d.all(sel)
	if len(all) == 0 {
		return &element{attrs: map[string]string{}}, false
	}
	return all[0], true
}

func (d *document) has(sel string) bool { _, ok := d.first(sel); return ok }

func (d *document) within(parent *element, sel string) bool {
	for _, el := range d.all(sel) {
		if el.start > parent.start && el.end <= parent.end {
			return true
		}
	}
	return false
}

var (
	scriptRe = regexp.MustCompile(`(?is)<(script|style|title)[^>]*>.*?</(script|style|title)>`)
	anyTagRe = regexp.MustCompile(`<[^>]*>`)
	spaceRe  = regexp.MustCompile(`\s+`)
)

func visibleText(src string) string {
	s := scriptRe.ReplaceAllString(src, " ")
	s = anyTagRe.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\u00a0", " ")
	return strings.TrimSpace(spaceRe.ReplaceAllString(s, " "))
}

func (d *document) text() string { return visibleText(d.src) }

func (d *document) textWithin(el *element) string {
	if el.end <= el.start {
		return ""
	}
	return visibleText(d.src[el.start:el.end])
}
