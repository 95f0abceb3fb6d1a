package idp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// The browser tests drive a real Chromium (SESAME_TEST_CHROMIUM) through
// the demo relying party at /demo, as a person would.

// browserTimeout bounds each browser test, browser start included.
const browserTimeout = 60 * time.Second

// newChromium starts a headless Chromium with a fresh profile and returns
// the context of its first tab. Everything stops when the test ends or
// after browserTimeout.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	return newChromiumFor(t, browserTimeout)
}

// newChromiumFor is newChromium for a test of many pages, bounded by
// timeout.
func newChromiumFor(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	profile := t.TempDir() // removed after the browser has exited (cleanups run last-in first-out)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true), // small /dev/shm in containers
		// An English-speaking browser: the pages after the password must
		// follow the user's locale (fr-CA) instead.
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	)
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		tcancel()
		acancel() // waits for the browser to exit
		cancel()
	})
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	// On failure, keep what the first tab showed (CI artifacts only).
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("SESAME_TEST_ARTIFACTS") == "" {
			return
		}
		sctx, scancel := context.WithTimeout(tab, 5*time.Second)
		defer scancel()
		if png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
			saveArtifact(t, artifactDir(t), "failure.png", png)
		}
	})
	return tab
}

// newTab opens a second tab in the browser of ctx (same profile, same
// cookies). It is opened here, with no step timeout: chromedp ties a tab to
// the context of its first action.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return tab
}

// stepTimeout bounds one do or get, so that a failure names its step.
const stepTimeout = 15 * time.Second

// do runs steps in the tab or fails the test with what.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v (at %s)", what, err, location(ctx))
	}
}

// get runs one action that returns a value, or fails the test with what.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v (at %s)", what, err, location(ctx))
	}
	return v
}

// clickLoad clicks the element of the CSS selector sel and waits for the
// page that the click loads (after any redirects), so that the next query
// runs on the new document.
func clickLoad(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))(ctx, tg)
		return err
	})
}

// location is the tab's URL, for failure messages; the tab may be gone.
func location(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown URL"
	}
	return u
}

// artifactDir is where a test keeps its screenshots and PDFs:
// $SESAME_TEST_ARTIFACTS/<test name> when set (CI uploads it), else a
// temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SESAME_TEST_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func saveArtifact(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", p)
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	saveArtifact(t, dir, name, get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))) // 100: PNG
}

// registerDemoClient registers the demo relying party as `sesame serve`
// does on its first start (cmd/sesame/admin.go).
func registerDemoClient(t *testing.T, env *testEnv) {
	t.Helper()
	now := time.Now().UTC()
	err := env.store.CreateClient(context.Background(), store.Client{
		ID: idp.DemoClientID, Name: "Sésame demo", Public: true, AuthMethod: "none", PKCERequired: true,
		RedirectURIs:   []string{env.issuer + "/demo/callback"},
		PostLogoutURIs: []string{env.issuer + "/demo"},
		GrantTypes:     []string{"authorization_code", "refresh_token"},
		Scopes:         []string{"openid", "profile", "email", "offline_access"},
		TokenFormat:    "opaque", IDTokenAlg: "RS256",
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// totpSetup is what the browser read on the authenticator set-up page.
type totpSetup struct {
	secret   []byte
	printURL string
}

// demoSignInToTOTPSetup opens the demo, signs in with the password of a
// user who has no second factor, is sent to enrollment, and opens the
// authenticator app set-up.
func demoSignInToTOTPSetup(t *testing.T, ctx context.Context, env *testEnv, username, password string) totpSetup {
	t.Helper()
	do(t, ctx, "open the demo",
		chromedp.Navigate(env.issuer+"/demo"),
		chromedp.WaitVisible(chromedp.ID("demo-login")),
	)
	do(t, ctx, "sign in with Sésame",
		clickLoad("#demo-login"),
		chromedp.WaitVisible(chromedp.CSS("form#login")),
	)
	do(t, ctx, "password",
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="username"]`), username),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), password),
		clickLoad(`form#login button[type="submit"]`),
		// The MFA set-up page, with its "Set up" link to the authenticator app.
		chromedp.WaitVisible(chromedp.CSS(`a[href*="/mfa/totp?"]`)),
	)
	if u := location(ctx); !strings.Contains(u, "/mfa/setup") {
		t.Fatalf("no enrollment after the password: at %s", u)
	}
	if lang := get(t, ctx, "page language", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "fr" {
		t.Errorf("MFA set-up page in %q, want fr (the user's locale fr-CA wins over the browser's en-US)", lang)
	}
	do(t, ctx, "set up the authenticator app",
		clickLoad(`a[href*="/mfa/totp?"]`),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
		chromedp.WaitVisible(chromedp.CSS("img#totp-qr")),
	)
	attr := get(t, ctx, "read the key", chromedp.AttributeValue(chromedp.ID("totp-secret"), "data-secret"))
	secret, err := users.ParseSecret(attr.Value)
	if !attr.Exists || err != nil {
		t.Fatalf("#totp-secret data-secret %q: %v", attr.Value, err)
	}
	// The key shown in groups is the same key.
	shown := get(t, ctx, "shown key", chromedp.Text(chromedp.ID("totp-secret")))
	if strings.ReplaceAll(shown, " ", "") != attr.Value {
		t.Errorf("key shown %q, data-secret %q", shown, attr.Value)
	}
	printURL := get(t, ctx, "print link", chromedp.Evaluate[string](
		`(document.querySelector('a[href*="/mfa/totp/print"]') || {}).href || ""`))
	if printURL == "" {
		t.Fatal("no Print link on the set-up page")
	}
	return totpSetup{secret: secret, printURL: printURL}
}

// confirmTOTP goes from the set-up page to the confirmation, enters a code
// of the server's current time step and the device name, and waits for the
// recovery codes. It returns them.
func confirmTOTP(t *testing.T, ctx context.Context, env *testEnv, s totpSetup, device string) []string {
	t.Helper()
	do(t, ctx, "go to the confirmation",
		clickLoad(`form[action*="/mfa/totp/confirm"] button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("form#totp-enroll")),
	)
	// The server's clock is env.now; the code is computed just before it is sent.
	code := mfa.TOTPCode(s.secret, mfa.TOTPStep(env.now()))
	do(t, ctx, "enter the code and the device name",
		chromedp.SendKeys(chromedp.CSS(`form#totp-enroll input[name="code"]`), code),
		chromedp.SendKeys(chromedp.CSS(`form#totp-enroll input[name="device_name"]`), device),
		clickLoad(`form#totp-enroll button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(".recovery-code")),
	)
	return get(t, ctx, "recovery codes", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('.recovery-code'), e => e.textContent.trim())`))
}

var recoveryCodeShape = regexp.MustCompile(`^[A-Z0-9]{4}(-[A-Z0-9]{4}){3}$`)

func TestBrowserDemoSignInForcesEnrollment(t *testing.T) {
	ctx := newChromium(t)
	env := newTestEnv(t, backends[0])
	registerDemoClient(t, env)
	u := env.passwordOnlyUser("sophie", pw) // locale fr-CA
	mails := startSMTPWorker(t, env)
	dir := artifactDir(t)
	const device = "Cellulaire de Sophie Pixel 7"

	setup := demoSignInToTOTPSetup(t, ctx, env, "sophie", pw)
	screenshot(t, ctx, dir, "totp-setup.png")

	codes := confirmTOTP(t, ctx, env, setup, device)
	if len(codes) != 5 {
		t.Fatalf("%d .recovery-code, want exactly 5: %q", len(codes), codes)
	}
	for _, c := range codes {
		if !recoveryCodeShape.MatchString(c) {
			t.Errorf("recovery code %q is not XXXX-XXXX-XXXX-XXXX", c)
		}
	}
	screenshot(t, ctx, dir, "recovery-codes.png")

	do(t, ctx, "continue to the demo",
		clickLoad(`form[action*="/mfa/continue"] button[type="submit"]`),
		chromedp.WaitVisible(chromedp.ID("demo-signed-in")),
		chromedp.WaitVisible(chromedp.ID("claims")),
	)
	screenshot(t, ctx, dir, "demo-signed-in.png")
	raw := get(t, ctx, "claims", chromedp.TextContent(chromedp.ID("claims")))
	var claims struct {
		Sub string   `json:"sub"`
		AMR []string `json:"amr"`
		Iss string   `json:"iss"`
		Aud any      `json:"aud"`
	}
	if err := json.Unmarshal([]byte(raw), &claims); err != nil {
		t.Fatalf("#claims is not JSON: %v\n%s", err, raw)
	}
	if claims.Sub != u.ID {
		t.Errorf("sub %q, want the user id %q", claims.Sub, u.ID)
	}
	if !slices.Contains(claims.AMR, "otp") || !slices.Contains(claims.AMR, "pwd") {
		t.Errorf("amr %q, want otp and pwd", claims.AMR)
	}
	if claims.Iss != env.issuer {
		t.Errorf("iss %q, want %q", claims.Iss, env.issuer)
	}

	creds, err := env.store.ListCredentials(context.Background(), u.ID, store.CredTOTP)
	if err != nil || len(creds) != 1 || creds[0].Name != device || creds[0].VerifiedAt.IsZero() {
		t.Errorf("stored authenticator: %+v, %v", creds, err)
	}

	// The confirmation email, in French, through a real SMTP exchange.
	msgs := mails.wait(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // a few more polls of the worker: no second message
	msgs = mails.all()
	if len(msgs) != 1 {
		t.Fatalf("%d messages delivered, want exactly 1", len(msgs))
	}
	m := msgs[0]
	if len(m.rcpt) != 1 || !strings.EqualFold(m.rcpt[0], u.Email) {
		t.Errorf("RCPT TO %q, want %q", m.rcpt, u.Email)
	}
	subject, text := parseEmail(t, m.data)
	t.Logf("email to %s: %q", m.rcpt, subject)
	for _, want := range []string{"méthode", "authentification"} {
		if !strings.Contains(strings.ToLower(subject), want) {
			t.Errorf("subject %q does not mention %q", subject, want)
		}
	}
	if !strings.Contains(text, device) {
		t.Errorf("body does not name the device %q:\n%s", device, text)
	}
	if !strings.Contains(text, "Application d'authentification") {
		t.Errorf("body does not name the method in French:\n%s", text)
	}
}

func TestBrowserPrintSheetPDF(t *testing.T) {
	ctx := newChromium(t)
	env := newTestEnv(t, backends[0])
	registerDemoClient(t, env)
	env.passwordOnlyUser("marc", pw)
	dir := artifactDir(t)

	setup := demoSignInToTOTPSetup(t, ctx, env, "marc", pw)

	// The Print link opens a new window; open its URL in other tabs of the
	// same browser (same cookies).
	//
	// First as a person would: print.js opens the real print dialog on load.
	// Headless Chromium never closes that dialog (no afterprint), and while
	// it is open the page refuses to be printed again ("Page is already
	// being printed"), so this tab only shows that window.print() returns
	// and leaves the page working.
	dialog := newTab(t, ctx)
	watchPrint(t, dialog, false)
	do(t, dialog, "open the print sheet (window.print() must not hang the browser)",
		chromedp.Navigate(setup.printURL),
		chromedp.WaitVisible(chromedp.CSS("img#totp-qr")),
	)
	if calls := printCallsOnLoad(t, dialog); calls != 1 {
		t.Errorf("window.print() returned %d times on load, want 1", calls)
	}
	if n := get(t, dialog, "page after window.print()", chromedp.Evaluate[int](`document.querySelectorAll('.recovery-code').length`)); n != 5 {
		t.Errorf("%d .recovery-code after window.print(), want 5", n)
	}

	// Then with window.print() counted but not run: the test saves the PDF
	// itself (Page.printToPDF is what "Save as PDF" in the dialog does).
	tab := newTab(t, ctx)
	watchPrint(t, tab, true)
	do(t, tab, "open the print sheet",
		chromedp.Navigate(setup.printURL),
		chromedp.WaitVisible(chromedp.CSS("img#totp-qr")),
	)
	if calls := printCallsOnLoad(t, tab); calls != 1 {
		t.Errorf("window.print() called %d times on load, want 1", calls)
	}
	if !get(t, tab, "print.js", chromedp.Evaluate[bool](`!!document.querySelector('script[src*="/static/print.js"]')`)) {
		t.Error("the print sheet does not load /static/print.js")
	}

	// The sheet holds the QR code (decoded) and the five codes.
	qrWidth := get(t, tab, "QR code", chromedp.Evaluate[int](
		`(() => { const i = document.querySelector('img#totp-qr'); return i.complete ? i.naturalWidth : 0; })()`))
	if qrWidth == 0 {
		t.Error("img#totp-qr is not decoded (naturalWidth 0)")
	}
	printed := get(t, tab, "printed codes", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('.recovery-code'), e => e.textContent.trim())`))
	if len(printed) != 5 {
		t.Errorf("%d .recovery-code on the print sheet, want 5: %q", len(printed), printed)
	}
	sheetKey := get(t, tab, "printed key", chromedp.Text(chromedp.CSS(".sheet-key code.secret")))
	if strings.ReplaceAll(sheetKey, " ", "") != users.EncodeSecret(setup.secret) {
		t.Errorf("printed key %q is not the key of the set-up page", sheetKey)
	}
	screenshot(t, tab, dir, "print-sheet.png")

	pdf := get(t, tab, "print to PDF", chromedp.PrintToPDF(
		chromedp.PDFPaper(chromedp.PaperLetter),
		chromedp.PDFPrintBackground(),
	))
	saveArtifact(t, dir, "print-sheet.pdf", pdf)
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
	}
	if n := len(pdfPageRE.FindAll(pdf, -1)); n != 1 {
		t.Errorf("the print sheet is %d pages on Letter, want 1", n)
	}
	if !pdfImageRE.Match(pdf) {
		t.Error("the PDF has no image XObject (the QR code)")
	}
	pdfA4 := get(t, tab, "print to PDF (A4)", chromedp.PrintToPDF(
		chromedp.PDFPaper(chromedp.PaperA4),
		chromedp.PDFPrintBackground(),
	))
	if n := len(pdfPageRE.FindAll(pdfA4, -1)); n != 1 {
		saveArtifact(t, dir, "print-sheet-a4.pdf", pdfA4)
		t.Errorf("the print sheet is %d pages on A4, want 1", n)
	}

	// The codes printed before the confirmation are the ones that work:
	// confirm in the first tab and compare.
	shown := confirmTOTP(t, ctx, env, setup, "Téléphone de Marc")
	if !slices.Equal(shown, printed) {
		t.Errorf("recovery codes after the confirmation %q differ from the printed ones %q", shown, printed)
	}
}

// watchPrint makes the pages of tab count their calls of window.print
// (window.__printCalls, once the call has returned). With neutralise, the
// call prints nothing, so the test can print the page to PDF itself.
func watchPrint(t *testing.T, tab context.Context, neutralise bool) {
	t.Helper()
	src := `(() => {
		const print = window.print.bind(window);
		window.__printCalls = 0;
		window.print = () => { const r = NEUTRALISE ? undefined : print(); window.__printCalls++; return r; };
	})();`
	src = strings.Replace(src, "NEUTRALISE", map[bool]string{true: "true", false: "false"}[neutralise], 1)
	if _, err := chromedp.Call(tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		t.Fatalf("watch window.print: %v", err)
	}
}

// printCallsOnLoad waits for print.js to call window.print once the page
// has loaded and returns how many times it did.
func printCallsOnLoad(t *testing.T, tab context.Context) int {
	t.Helper()
	return get(t, tab, "window.print() on load", chromedp.Poll[int](
		`document.readyState === "complete" && window.__printCalls > 0 ? window.__printCalls : 0`,
		chromedp.WithPollingTimeout(5*time.Second)))
}

// TestBrowserRecoveryCodesPrintSheet follows the print button of the
// recovery codes page, shown once the authenticator is confirmed: it must
// open the sheet of the enrolled key and of these codes.
func TestBrowserRecoveryCodesPrintSheet(t *testing.T) {
	ctx := newChromium(t)
	env := newTestEnv(t, backends[0])
	registerDemoClient(t, env)
	env.passwordOnlyUser("lea", pw)
	dir := artifactDir(t)

	setup := demoSignInToTOTPSetup(t, ctx, env, "lea", pw)
	codes := confirmTOTP(t, ctx, env, setup, "Cellulaire de Léa")
	href := get(t, ctx, "print link", chromedp.Evaluate[string](
		`(document.querySelector('a[href*="/mfa/totp/print"]') || {}).href || ""`))
	if href == "" {
		t.Fatal("no print button on the recovery codes page")
	}
	tab := newTab(t, ctx)
	do(t, tab, "open the print sheet", chromedp.Navigate(href), chromedp.WaitReady(chromedp.CSS("body")))
	screenshot(t, tab, dir, "print-after-confirm.png")
	if u := location(tab); !strings.Contains(u, "/mfa/totp/print") {
		t.Errorf("the print button of the recovery codes page leads to %s, not to the print sheet", u)
	}
	printed := get(t, tab, "printed codes", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('.recovery-code'), e => e.textContent.trim())`))
	if !slices.Equal(printed, codes) {
		t.Errorf("print sheet codes %q, want the codes shown %q", printed, codes)
	}
	key := get(t, tab, "printed key", chromedp.Evaluate[string](
		`(document.querySelector('.sheet-key code.secret') || {}).textContent || ""`))
	if strings.ReplaceAll(key, " ", "") != users.EncodeSecret(setup.secret) {
		t.Errorf("print sheet key %q, want the enrolled key %q", key, users.EncodeSecret(setup.secret))
	}
}

var (
	pdfPageRE  = regexp.MustCompile(`/Type\s*/Page[^s]`)
	pdfImageRE = regexp.MustCompile(`/Subtype\s*/Image\b`)
)

// smtpMessage is one message received by the test SMTP server.
type smtpMessage struct {
	from string
	rcpt []string
	data []byte
}

// mailbox collects what the test SMTP server receives.
type mailbox struct {
	mu   sync.Mutex
	msgs []smtpMessage
	got  chan struct{} // a message arrived
}

func (b *mailbox) all() []smtpMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

// wait returns the messages once there are at least n, or fails the test.
func (b *mailbox) wait(t *testing.T, n int, timeout time.Duration) []smtpMessage {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if msgs := b.all(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-b.got:
		case <-deadline:
			t.Fatalf("%d messages after %s, want %d", len(b.all()), timeout, n)
		}
	}
}

// NewSession implements smtp.Backend.
func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{box: b}, nil }

type smtpSession struct {
	box *mailbox
	cur smtpMessage
}

func (s *smtpSession) Reset()        { s.cur = smtpMessage{} }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpt = append(s.cur.rcpt, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = data
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.cur)
	s.box.mu.Unlock()
	select {
	case s.box.got <- struct{}{}:
	default:
	}
	return nil
}

// startSMTPWorker starts an SMTP server on loopback (no TLS, no
// authentication) and an outbox worker that delivers env's email to it.
func startSMTPWorker(t *testing.T, env *testEnv) *mailbox {
	t.Helper()
	box := &mailbox{got: make(chan struct{}, 1)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	addr := l.Addr().(*net.TCPAddr)
	sender, err := notify.NewSMTPSender(notify.SMTPConfig{
		Host: "127.0.0.1", Port: addr.Port, TLS: notify.TLSNone,
		From: "Sésame <no-reply@sesame.example>", Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &notify.Worker{
		Store:     env.store,
		Senders:   map[string]notify.Sender{notify.KindEmail: sender},
		Now:       env.now,
		PollEvery: 50 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
		if err := <-served; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp server: %v", err)
		}
	})
	return box
}

// parseEmail returns the decoded subject and text of a message (the text
// part of a multipart/alternative one).
func parseEmail(t *testing.T, data []byte) (subject, text string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("bad message: %v\n%s", err, data)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", m.Header.Get("Subject"), err)
	}
	if lang := m.Header.Get("Content-Language"); !strings.HasPrefix(lang, "fr") {
		t.Errorf("Content-Language %q, want fr", lang)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		mr := multipart.NewReader(m.Body, params["boundary"])
		for {
			p, err := mr.NextPart() // decodes quoted-printable
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("multipart: %v", err)
			}
			body, _ := io.ReadAll(p)
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				text = string(body)
			}
		}
	default:
		var r io.Reader = m.Body
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(r)
		}
		body, _ := io.ReadAll(r)
		text = string(body)
	}
	if text == "" {
		t.Fatalf("no text body:\n%s", data)
	}
	return subject, text
}
