package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/teststore"
)

var t0 = time.Unix(1700000000, 0).UTC()

const (
	testUser = "relay-user"
	testPass = "relay-secret"
)

// welcome is an email with accents everywhere and a link and a code that
// must never reach a log.
var welcome = Email{
	To:      "Élise Tremblay <elise@example.org>",
	Subject: "Bienvenue sur Sésame — activez votre compte",
	Text:    "Bonjour Élise,\n\nActivez votre compte : https://idp.example/activate?t=SECRET-LINK\nCode : 493027\n",
	HTML:    "<p>Bonjour Élise,</p><p><a href=\"https://idp.example/activate?t=SECRET-LINK\">Activer</a> — code 493027</p>",
	Lang:    "fr-CA",
}

// --- stores -----------------------------------------------------------------

// eachStore runs f on a migrated SQLite store, and on PostgreSQL when
// SESAME_TEST_POSTGRES_URL is set.
func eachStore(t *testing.T, f func(t *testing.T, s store.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, teststore.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, teststore.Postgres(t)) })
}

// --- clock ------------------------------------------------------------------

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// --- SMTP server --------------------------------------------------------------

// testCert is a self-signed certificate for 127.0.0.1, and a pool trusting it.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sesame test relay"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// relay is a real SMTP server (emersion/go-smtp) on 127.0.0.1:0.
type relay struct {
	port int
	pool *x509.CertPool

	// Hooks, set before use: the n-th RCPT or DATA (from 1) answers their
	// error.
	rcptErr func(n int) error
	dataErr func(n int) error

	mu        sync.Mutex
	mails     []received
	auths     int // AUTH attempts
	rcpts     int
	datas     int
	delivered chan struct{}
}

type relayOpts struct {
	tls          string // starttls | implicit | none
	auth         bool   // require PLAIN with testUser/testPass
	insecureAuth bool   // offer AUTH without TLS
}

func startRelay(t *testing.T, o relayOpts) *relay {
	t.Helper()
	cert, pool := testCert()
	r := &relay{pool: pool, delivered: make(chan struct{}, 16)}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &relaySession{r: r, c: c, auth: o.auth}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = o.insecureAuth
	srv.ErrorLog = log.New(io.Discard, "", 0)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	switch o.tls {
	case TLSStartTLS:
		srv.TLSConfig = tc
	case TLSImplicit:
		l = tls.NewListener(l, tc)
	}
	r.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *relay) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.mails...)
}

func (r *relay) counts() (auths, rcpts, datas int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auths, r.rcpts, r.datas
}

// config is a sender configuration for r.
func (r *relay) config(mode string, auth bool) SMTPConfig {
	c := SMTPConfig{
		Host: "127.0.0.1", Port: r.port, TLS: mode,
		From:      "Sésame <no-reply@sesame.example>",
		HelloName: "idp.test",
		Timeout:   10 * time.Second,
		TLSConfig: &tls.Config{RootCAs: r.pool},
	}
	if auth {
		c.Username, c.Password = testUser, testPass
	}
	return c
}

func (r *relay) sender(t *testing.T, mode string, auth bool) *SMTPSender {
	t.Helper()
	s, err := NewSMTPSender(r.config(mode, auth))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type relaySession struct {
	r    *relay
	c    *gosmtp.Conn
	auth bool // required
	user string
	from string
	to   []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		s.r.mu.Lock()
		s.r.auths++
		s.r.mu.Unlock()
		if username != testUser || password != testPass {
			return gosmtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.auth && s.user == "" {
		return gosmtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.r.mu.Lock()
	s.r.rcpts++
	n := s.r.rcpts
	s.r.mu.Unlock()
	if s.r.rcptErr != nil {
		if err := s.r.rcptErr(n); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.datas++
	n := s.r.datas
	s.r.mu.Unlock()
	if s.r.dataErr != nil {
		if err := s.r.dataErr(n); err != nil {
			return err
		}
	}
	_, isTLS := s.c.TLSConnectionState()
	s.r.mu.Lock()
	s.r.mails = append(s.r.mails, received{from: s.from, to: s.to, data: b, tls: isTLS, user: s.user})
	s.r.mu.Unlock()
	s.r.delivered <- struct{}{}
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// --- helpers ------------------------------------------------------------------

func enqueueWelcome(t *testing.T, s store.Store, key string) {
	t.Helper()
	err := s.InTx(t.Context(), func(tx store.Tx) error {
		return EnqueueEmail(t.Context(), tx, key, welcome, t0)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func runOnce(t *testing.T, w *Worker) int {
	t.Helper()
	n, err := w.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func message(t *testing.T, s store.Store, key string) store.OutboxMessage {
	t.Helper()
	m, err := s.GetOutboxMessage(t.Context(), outboxID(key))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// counter reads sesame_outbox_messages_total{kind,outcome} from reg.
func counter(t *testing.T, reg *prometheus.Registry, kind, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sesame_outbox_messages_total" {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "kind" && l.GetValue() != kind) || (l.GetName() == "outcome" && l.GetValue() != outcome) {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// --- tests --------------------------------------------------------------------

// An email enqueued in a transaction that rolls back is never sent; one
// that commits is sent once, as a proper MIME message.
func TestEnqueueCommitAndRollback(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		r := startRelay(t, relayOpts{tls: TLSStartTLS, auth: true})
		reg := prometheus.NewRegistry()
		w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: r.sender(t, TLSStartTLS, true)},
			Now: (&clock{t: t0}).Now, Registerer: reg}

		errRollback := errors.New("rollback")
		err := s.InTx(t.Context(), func(tx store.Tx) error {
			if err := EnqueueEmail(t.Context(), tx, "activation-email:rolled-back", welcome, t0); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v", err)
		}
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("claimed %d messages after a rollback", n)
		}

		enqueueWelcome(t, s, "activation-email:u1")
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("claimed %d messages, want 1", n)
		}
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("claimed %d messages after sending, want 0", n)
		}
		mails := r.received()
		if len(mails) != 1 {
			t.Fatalf("relay got %d emails, want 1", len(mails))
		}
		got := mails[0]
		if !got.tls || got.user != testUser {
			t.Errorf("delivered with tls=%v user=%q, want TLS and %q", got.tls, got.user, testUser)
		}
		if got.from != "no-reply@sesame.example" || len(got.to) != 1 || got.to[0] != "elise@example.org" {
			t.Errorf("envelope from %q to %q", got.from, got.to)
		}
		checkWelcome(t, got.data, "<activation-email%3Au1@sesame>")

		m := message(t, s, "activation-email:u1")
		if m.SentAt.IsZero() || m.Attempts != 1 {
			t.Errorf("outbox row: sent at %v, %d attempts; want sent after 1", m.SentAt, m.Attempts)
		}
		if v := counter(t, reg, KindEmail, outcomeSent); v != 1 {
			t.Errorf("sent counter = %v, want 1", v)
		}
	})
}

// checkWelcome parses data as the welcome email.
func checkWelcome(t *testing.T, data []byte, wantMsgID string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, data)
	}
	h := msg.Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != welcome.Subject {
		t.Errorf("Subject %q decodes to %q (%v), want %q", h.Get("Subject"), subject, err, welcome.Subject)
	}
	if strings.ContainsFunc(h.Get("Subject"), func(r rune) bool { return r > 127 }) {
		t.Errorf("raw Subject %q is not ASCII (RFC 2047)", h.Get("Subject"))
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Sésame" || from[0].Address != "no-reply@sesame.example" {
		t.Errorf("From %q → %v (%v)", h.Get("From"), from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Élise Tremblay" || to[0].Address != "elise@example.org" {
		t.Errorf("To %q → %v (%v)", h.Get("To"), to, err)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	for k, want := range map[string]string{
		"Message-ID":       wantMsgID,
		"Auto-Submitted":   "auto-generated",
		"MIME-Version":     "1.0",
		"Content-Language": "fr-CA",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for _, want := range []struct{ typ, body string }{
		{"text/plain", welcome.Text}, {"text/html", welcome.HTML},
	} {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("%s part: %v", want.typ, err)
		}
		pt, pp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if pt != want.typ || pp["charset"] != "utf-8" || p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("part headers %v, want %s; charset=utf-8, quoted-printable", p.Header, want.typ)
		}
		raw, _ := io.ReadAll(p)
		for _, line := range strings.Split(string(raw), "\r\n") {
			if len(line) > 76 || strings.ContainsFunc(line, func(r rune) bool { return r > 127 }) {
				t.Errorf("%s body line %q: longer than 76 or not ASCII", want.typ, line)
			}
		}
		body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != want.body {
			t.Errorf("%s body = %q, want %q", want.typ, got, want.body)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more than two parts (%v)", err)
	}
}

// A second enqueue under the same key, in another transaction or the same
// one, queues nothing and is no error; the transaction goes on.
func TestEnqueueDuplicateKey(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		r := startRelay(t, relayOpts{tls: TLSStartTLS})
		w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: r.sender(t, TLSStartTLS, false)},
			Now: (&clock{t: t0}).Now}

		enqueueWelcome(t, s, "reset:u1")
		err := s.InTx(t.Context(), func(tx store.Tx) error {
			if err := EnqueueEmail(t.Context(), tx, "reset:u1", welcome, t0); err != nil {
				return err
			}
			if err := EnqueueEmail(t.Context(), tx, "reset:u1", welcome, t0); err != nil {
				return err
			}
			if err := EnqueueSMS(t.Context(), tx, "reset:u1", SMS{To: "+15145550100", Body: "x"}, t0); err != nil {
				return err
			}
			// The transaction is still usable after the duplicates.
			return EnqueueEmail(t.Context(), tx, "reset:u2", welcome, t0)
		})
		if err != nil {
			t.Fatalf("duplicates in a transaction: %v", err)
		}
		if n := runOnce(t, w); n != 2 {
			t.Fatalf("claimed %d messages, want 2 (u1 once, u2)", n)
		}
		if got := len(r.received()); got != 2 {
			t.Fatalf("relay got %d emails, want 2", got)
		}
		if m := message(t, s, "reset:u1"); m.Kind != KindEmail {
			t.Errorf("reset:u1 is a %q message, want the first (email)", m.Kind)
		}
	})
}

// crashingSender stops its worker (cancels the worker's context) at the
// first attempt, before delegating: the message is claimed but not sent,
// and nothing is recorded after the claim, as if the process had died.
type crashingSender struct {
	stop  context.CancelFunc
	next  Sender
	calls int
}

func (c *crashingSender) Send(ctx context.Context, m store.OutboxMessage) error {
	c.calls++
	c.stop()
	return c.next.Send(ctx, m)
}

// A worker that dies between the claim and the send leaves the message to
// the next worker once the lease has run out: exactly one email arrives.
func TestCrashBeforeSend(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		r := startRelay(t, relayOpts{tls: TLSStartTLS, auth: true})
		smtpSender := r.sender(t, TLSStartTLS, true)
		clk := &clock{t: t0}
		const lease = time.Minute

		enqueueWelcome(t, s, "activation-email:crash")

		ctx, stop := context.WithCancel(t.Context())
		crash := &crashingSender{stop: stop, next: smtpSender}
		first := &Worker{Store: s, Senders: map[string]Sender{KindEmail: crash}, Now: clk.Now,
			Lease: lease, PollEvery: time.Hour}
		first.Run(ctx) // returns once stopped
		if crash.calls != 1 {
			t.Fatalf("first worker attempted %d sends, want 1", crash.calls)
		}
		if got := len(r.received()); got != 0 {
			t.Fatalf("relay got %d emails from the dead worker", got)
		}
		m := message(t, s, "activation-email:crash")
		if !m.SentAt.IsZero() || m.Attempts != 1 || m.LastError != "" || !m.NextAttemptAt.Equal(t0.Add(lease)) {
			t.Fatalf("after the crash: %+v; want claimed once, leased until %v, nothing else", m, t0.Add(lease))
		}

		second := &Worker{Store: s, Senders: map[string]Sender{KindEmail: smtpSender}, Now: clk.Now, Lease: lease}
		clk.Set(t0.Add(lease - time.Second))
		if n := runOnce(t, second); n != 0 {
			t.Fatalf("second worker claimed %d messages during the lease", n)
		}
		clk.Set(t0.Add(lease))
		if n := runOnce(t, second); n != 1 {
			t.Fatalf("second worker claimed %d messages after the lease, want 1", n)
		}
		clk.Set(t0.Add(24 * time.Hour))
		if n := runOnce(t, second); n != 0 {
			t.Fatalf("claimed %d messages once sent", n)
		}
		mails := r.received()
		if len(mails) != 1 {
			t.Fatalf("relay got %d emails, want exactly 1", len(mails))
		}
		checkWelcome(t, mails[0].data, "<activation-email%3Acrash@sesame>")
		if m := message(t, s, "activation-email:crash"); m.SentAt.IsZero() || m.Attempts != 2 {
			t.Errorf("after the second worker: sent at %v, %d attempts; want sent, 2", m.SentAt, m.Attempts)
		}
	})
}

// 451 twice, then accepted: one email after three attempts, each retry only
// once its backoff has passed.
func TestRetryTransientFailure(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		r := startRelay(t, relayOpts{tls: TLSStartTLS, auth: true})
		r.dataErr = func(n int) error {
			if n <= 2 {
				return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
			return nil
		}
		clk := &clock{t: t0}
		reg := prometheus.NewRegistry()
		w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: r.sender(t, TLSStartTLS, true)},
			Now: clk.Now, Registerer: reg}
		enqueueWelcome(t, s, "activation-email:retry")

		now := t0
		for attempt, wait := range []time.Duration{30 * time.Second, time.Minute} {
			if n := runOnce(t, w); n != 1 {
				t.Fatalf("attempt %d: claimed %d messages", attempt+1, n)
			}
			m := message(t, s, "activation-email:retry")
			if m.Attempts != attempt+1 || !m.SentAt.IsZero() || !strings.Contains(m.LastError, "451") {
				t.Fatalf("after attempt %d: %d attempts, sent at %v, last error %q", attempt+1, m.Attempts, m.SentAt, m.LastError)
			}
			// Backoff: between half and all of wait, jitter included.
			if m.NextAttemptAt.Before(now.Add(wait/2)) || m.NextAttemptAt.After(now.Add(wait)) {
				t.Fatalf("after attempt %d: next attempt at +%v, want within [%v, %v]",
					attempt+1, m.NextAttemptAt.Sub(now), wait/2, wait)
			}
			clk.Set(now.Add(wait/2 - time.Second))
			if n := runOnce(t, w); n != 0 {
				t.Fatalf("after attempt %d: retried before the backoff", attempt+1)
			}
			now = now.Add(wait)
			clk.Set(now)
		}
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("third attempt: claimed %d messages", n)
		}
		m := message(t, s, "activation-email:retry")
		if m.Attempts != 3 || m.SentAt.IsZero() {
			t.Fatalf("after the third attempt: %d attempts, sent at %v; want 3, sent", m.Attempts, m.SentAt)
		}
		if got := len(r.received()); got != 1 {
			t.Fatalf("relay got %d emails, want 1", got)
		}
		if _, _, datas := r.counts(); datas != 3 {
			t.Errorf("relay saw %d DATA, want 3", datas)
		}
		if f, sent := counter(t, reg, KindEmail, outcomeFailed), counter(t, reg, KindEmail, outcomeSent); f != 2 || sent != 1 {
			t.Errorf("counters failed=%v sent=%v, want 2 and 1", f, sent)
		}
	})
}

// A 550 is permanent: the message is given up at once, never retried.
func TestPermanentFailure(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		r := startRelay(t, relayOpts{tls: TLSStartTLS, auth: true})
		r.rcptErr = func(int) error {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		clk := &clock{t: t0}
		reg := prometheus.NewRegistry()
		w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: r.sender(t, TLSStartTLS, true)},
			Now: clk.Now, Registerer: reg}
		enqueueWelcome(t, s, "activation-email:bounce")

		if n := runOnce(t, w); n != 1 {
			t.Fatalf("claimed %d messages", n)
		}
		m := message(t, s, "activation-email:bounce")
		if m.NextAttemptAt.Before(t0.AddDate(99, 0, 0)) || !strings.Contains(m.LastError, "550") ||
			!strings.Contains(m.LastError, "permanent") {
			t.Fatalf("after a 550: next attempt %v, last error %q; want parked, permanent 550", m.NextAttemptAt, m.LastError)
		}
		clk.Set(t0.AddDate(1, 0, 0))
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("retried a permanent failure")
		}
		if _, rcpts, _ := r.counts(); rcpts != 1 {
			t.Errorf("relay saw %d RCPT, want 1", rcpts)
		}
		if v := counter(t, reg, KindEmail, outcomeGaveUp); v != 1 {
			t.Errorf("given_up counter = %v, want 1", v)
		}
	})
}

// After MaxAttempts transient failures the worker gives up.
func TestGiveUpAfterMaxAttempts(t *testing.T) {
	s := teststore.SQLite(t)
	r := startRelay(t, relayOpts{tls: TLSStartTLS})
	r.rcptErr = func(int) error {
		return &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 4, 5}, Message: "busy"}
	}
	clk := &clock{t: t0}
	w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: r.sender(t, TLSStartTLS, false)},
		Now: clk.Now, MaxAttempts: 2}
	enqueueWelcome(t, s, "k")
	runOnce(t, w)
	clk.Set(t0.Add(time.Hour))
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("second attempt: claimed %d", n)
	}
	m := message(t, s, "k")
	if m.NextAttemptAt.Before(t0.AddDate(99, 0, 0)) || !strings.Contains(m.LastError, "gave up after 2 attempts") {
		t.Fatalf("after MaxAttempts: next attempt %v, last error %q", m.NextAttemptAt, m.LastError)
	}
}

// Credentials never travel in clear unless tls is none; bad credentials
// are retried (a configuration matter), not given up.
func TestSMTPAuthAndTLS(t *testing.T) {
	tests := []struct {
		name       string
		relay      relayOpts
		mode       string
		password   string
		wantErr    string // "" for success
		wantAuths  int
		wantTLSMsg bool
	}{
		{"starttls relay without STARTTLS", relayOpts{tls: TLSNone, auth: true, insecureAuth: true},
			TLSStartTLS, testPass, "does not offer STARTTLS", 0, false},
		{"implicit TLS", relayOpts{tls: TLSImplicit, auth: true}, TLSImplicit, testPass, "", 1, true},
		{"starttls", relayOpts{tls: TLSStartTLS, auth: true}, TLSStartTLS, testPass, "", 1, true},
		{"wrong password", relayOpts{tls: TLSStartTLS, auth: true}, TLSStartTLS, "nope", "535", 1, false},
		{"none: loopback relay, cleartext allowed", relayOpts{tls: TLSNone, auth: true, insecureAuth: true},
			TLSNone, testPass, "", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRelay(t, tt.relay)
			cfg := r.config(tt.mode, true)
			cfg.Password = tt.password
			s, err := NewSMTPSender(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(t.Context(), emailMessage(t, "k1", welcome))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Send = %v, want an error with %q", err, tt.wantErr)
			case errors.Is(err, ErrPermanent):
				t.Fatalf("Send = %v: permanent, want retryable", err)
			}
			if err != nil && strings.Contains(err.Error(), tt.password) {
				t.Errorf("error %q shows the password", err)
			}
			auths, _, _ := r.counts()
			if auths != tt.wantAuths {
				t.Errorf("relay saw %d AUTH, want %d", auths, tt.wantAuths)
			}
			mails := r.received()
			if want := tt.wantErr == ""; (len(mails) == 1) != want {
				t.Fatalf("relay got %d emails", len(mails))
			}
			if len(mails) == 1 && mails[0].tls != tt.wantTLSMsg {
				t.Errorf("delivered with tls=%v, want %v", mails[0].tls, tt.wantTLSMsg)
			}
		})
	}
}

func emailMessage(t *testing.T, key string, e Email) store.OutboxMessage {
	t.Helper()
	s := teststore.SQLite(t)
	err := s.InTx(t.Context(), func(tx store.Tx) error { return EnqueueEmail(t.Context(), tx, key, e, t0) })
	if err != nil {
		t.Fatal(err)
	}
	return message(t, s, key)
}

// A relay that never answers cannot hold a sender past its context.
func TestSMTPHonoursDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn // held open, silent: no greeting
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	s, err := NewSMTPSender(SMTPConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: TLSNone,
		From: "no-reply@sesame.example"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = s.Send(ctx, emailMessage(t, "k", welcome))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPermanent) {
		t.Fatalf("Send = %v, want a retryable deadline error", err)
	}
}

// Run sends at once when poked, without waiting for the next poll.
func TestRunPoke(t *testing.T) {
	s := teststore.SQLite(t)
	r := startRelay(t, relayOpts{tls: TLSStartTLS})
	w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: r.sender(t, TLSStartTLS, false)},
		PollEvery: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	for _, key := range []string{"poke-1", "poke-2"} {
		err := s.InTx(t.Context(), func(tx store.Tx) error {
			return EnqueueEmail(t.Context(), tx, key, welcome, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Poke()
		select {
		case <-r.delivered:
		case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
			t.Fatalf("%s not delivered after a poke", key)
		}
	}
	if got := len(r.received()); got != 2 {
		t.Fatalf("relay got %d emails, want 2", got)
	}
}

// What would inject headers (CR, LF) or is no address is refused at
// enqueue, and nothing is queued.
func TestEnqueueRefusesBadInput(t *testing.T) {
	s := teststore.SQLite(t)
	with := func(f func(*Email)) Email { e := welcome; f(&e); return e }
	emails := map[string]Email{
		"CRLF in To":       with(func(e *Email) { e.To = "elise@example.org\r\nBcc: all@example.org" }),
		"LF in To":         with(func(e *Email) { e.To = "elise@example.org\nBcc: all@example.org" }),
		"CRLF in Subject":  with(func(e *Email) { e.Subject = "Bonjour\r\nBcc: all@example.org" }),
		"LF in Subject":    with(func(e *Email) { e.Subject = "Bonjour\nX-Evil: 1" }),
		"CR in Subject":    with(func(e *Email) { e.Subject = "Bonjour\rX-Evil: 1" }),
		"two recipients":   with(func(e *Email) { e.To = "a@example.org, b@example.org" }),
		"not an address":   with(func(e *Email) { e.To = "elise" }),
		"empty To":         with(func(e *Email) { e.To = "" }),
		"empty subject":    with(func(e *Email) { e.Subject = "" }),
		"no body":          with(func(e *Email) { e.Text, e.HTML = "", "" }),
		"header in Lang":   with(func(e *Email) { e.Lang = "fr\r\nBcc: x@example.org" }),
		"subject too long": with(func(e *Email) { e.Subject = strings.Repeat("é", 300) }),
	}
	for name, e := range emails {
		err := s.InTx(t.Context(), func(tx store.Tx) error { return EnqueueEmail(t.Context(), tx, "bad:"+name, e, t0) })
		if err == nil {
			t.Errorf("%s: enqueued", name)
		}
	}
	smses := map[string]SMS{
		"not E.164":  {To: "514-555-0100", Body: "Code 123456"},
		"empty body": {To: "+15145550100"},
	}
	for name, m := range smses {
		err := s.InTx(t.Context(), func(tx store.Tx) error { return EnqueueSMS(t.Context(), tx, "bad:"+name, m, t0) })
		if err == nil {
			t.Errorf("sms %s: enqueued", name)
		}
	}
	err := s.InTx(t.Context(), func(tx store.Tx) error { return EnqueueEmail(t.Context(), tx, "", welcome, t0) })
	if err == nil {
		t.Errorf("empty idempotency key: enqueued")
	}
	claimed, err := s.ClaimOutbox(t.Context(), t0.Add(time.Hour), time.Minute, 100)
	if err != nil || len(claimed) != 0 {
		t.Fatalf("outbox holds %d messages (%v), want none", len(claimed), err)
	}

	// The SMS and plain-text-only cases that are fine.
	err = s.InTx(t.Context(), func(tx store.Tx) error {
		if err := EnqueueSMS(t.Context(), tx, "sms-ok", SMS{To: "+15145550100", Body: "Sésame : code 123456"}, t0); err != nil {
			return err
		}
		return EnqueueEmail(t.Context(), tx, "text-only", Email{To: "elise@example.org", Subject: "Hi", Text: "x"}, t0)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A payload that got past enqueue some other way is refused at send time,
// for good.
func TestSMTPRefusesBadPayload(t *testing.T) {
	s, err := NewSMTPSender(SMTPConfig{Host: "127.0.0.1", Port: 1, From: "no-reply@sesame.example"})
	if err != nil {
		t.Fatal(err)
	}
	for name, payload := range map[string]string{
		"not JSON":      "{",
		"CRLF in To":    `{"to":"a@example.org\r\nBcc: b@example.org","subject":"s","text":"t"}`,
		"CRLF in Subj.": `{"to":"a@example.org","subject":"s\r\nBcc: b@example.org","text":"t"}`,
	} {
		err := s.Send(t.Context(), store.OutboxMessage{ID: "x", Kind: KindEmail, IdempotencyKey: "x", Payload: []byte(payload)})
		if !errors.Is(err, ErrPermanent) {
			t.Errorf("%s: Send = %v, want a permanent error", name, err)
		}
	}
}

// The log sender says that a message would be sent, never what it says.
func TestLogSenderWithholdsBody(t *testing.T) {
	var buf bytes.Buffer
	ls := LogSender{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := ls.Send(t.Context(), emailMessage(t, "activation-email:log", welcome)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(SMS{To: "+15145550100", Body: "Sésame : code 493027"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Send(t.Context(), store.OutboxMessage{ID: "s", Kind: KindSMS, IdempotencyKey: "sms:log", Payload: b}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"elise@example.org", "activation-email:log", "Sésame", "+15145550100", "sms:log"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"SECRET-LINK", "493027"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}
}

func TestMessageID(t *testing.T) {
	for key, want := range map[string]string{
		"activation-email:0190a1b2": "<activation-email%3A0190a1b2@sesame>",
		"a.b c@d%":                  "<a%2Eb%20c%40d%25@sesame>",
		"plain_key-1":               "<plain_key-1@sesame>",
	} {
		if got := MessageID(key); got != want {
			t.Errorf("MessageID(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempts, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute,
		8: time.Hour, 12: time.Hour, 1000: time.Hour,
	} {
		for range 20 {
			if got := backoff(attempts); got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempts, got, want/2, want)
			}
		}
	}
}

// A long subject full of accents is folded into short lines and decodes
// back whole.
func TestLongSubjectFolded(t *testing.T) {
	from, _ := mail.ParseAddress("Sésame <no-reply@sesame.example>")
	e := welcome
	e.Subject = strings.Repeat("é", maxSubjectBytes/2)
	e.To = strings.Repeat("É", 200) + " <elise@example.org>"
	if err := e.validate(); err != nil {
		t.Fatal(err)
	}
	to, _ := parseRecipient(e.To)
	b, err := composeEmail(from, to, e, MessageID("k"), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\r\n") {
		if len(line) > 998 { // RFC 5322 2.1.1; unfolded, the subject alone would take 1200
			t.Fatalf("line of %d bytes: %q", len(line), line)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil || got != e.Subject {
		t.Errorf("Subject decodes to %q (%v)", got, err)
	}
	if got, err := msg.Header.AddressList("To"); err != nil || len(got) != 1 || got[0].Name != strings.Repeat("É", 200) {
		t.Errorf("To decodes to %v (%v)", got, err)
	}
}

// gateSender blocks each send until released, and reports it began.
type gateSender struct {
	began   chan string
	release chan struct{}
	mu      sync.Mutex
	sent    []string
}

func (g *gateSender) Send(ctx context.Context, m store.OutboxMessage) error {
	g.began <- m.IdempotencyKey
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sent = append(g.sent, m.IdempotencyKey)
	return nil
}

// A worker drained (a graceful stop) while it sends finishes that message
// (sent and marked sent: not sent twice after the lease), then stops
// before the next one of its batch, which stays due for the next claim.
func TestRunStopsBetweenMessages(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		enqueueWelcome(t, s, "stop-1")
		enqueueWelcome(t, s, "stop-2")
		g := &gateSender{began: make(chan string, 2), release: make(chan struct{})}
		w := &Worker{Store: s, Senders: map[string]Sender{KindEmail: g}, PollEvery: time.Hour,
			Now: func() time.Time { return t0.Add(time.Minute) }}
		done := make(chan struct{})
		go func() { w.Run(t.Context()); close(done) }()
		var first string
		select {
		case first = <-g.began:
		case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
			t.Fatal("no send began")
		}
		w.Drain()
		close(g.release)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its stop")
		}
		if len(g.sent) != 1 || g.sent[0] != first {
			t.Fatalf("sent %v, want only %s", g.sent, first)
		}
		if m := message(t, s, first); m.SentAt.IsZero() {
			t.Errorf("%s was sent but is not marked sent (it would be sent again)", first)
		}
		other := "stop-2"
		if first == other {
			other = "stop-1"
		}
		if m := message(t, s, other); !m.SentAt.IsZero() {
			t.Errorf("%s sent after the stop", other)
		}
	})
}
