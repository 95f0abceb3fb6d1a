package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// SMTP transport security modes (SMTPConfig.TLS).
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, required
	TLSImplicit = "implicit" // TLS from the first byte (port 465)
	TLSNone     = "none"     // no TLS at all: loopback relays only
)

// SMTPConfig is the mail relay.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string // PLAIN authentication when set
	Password string
	// TLS is starttls (the default when empty), implicit or none. With
	// starttls, a relay that does not offer STARTTLS gets nothing. Credentials
	// travel only over TLS, unless TLS is none.
	TLS  string
	From string // "Sésame <no-reply@example.org>"
	// HelloName is the name sent with EHLO; "localhost" when empty.
	HelloName string
	// Timeout bounds one delivery, from dialing to the end of DATA; 30 s when
	// zero. The caller's context deadline applies too.
	Timeout time.Duration
	// TLSConfig, when set, is cloned for the connection (tests set RootCAs);
	// its ServerName defaults to Host.
	TLSConfig *tls.Config
}

// SMTPSender delivers "email" outbox messages through an SMTP relay with
// net/smtp: one connection per message.
type SMTPSender struct {
	cfg  SMTPConfig
	from *mail.Address
	tls  *tls.Config
}

var _ Sender = (*SMTPSender)(nil)

// NewSMTPSender checks cfg and returns a sender.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, errors.New("smtp: empty host"))
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp: port %d out of range", cfg.Port))
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("smtp: tls %q must be starttls, implicit or none", cfg.TLS))
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("smtp: from %q: %w", cfg.From, err))
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if strings.ContainsAny(cfg.HelloName, " \r\n") {
		errs = append(errs, errors.New("smtp: hello name contains a space or line break"))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return &SMTPSender{cfg: cfg, from: from, tls: tc}, nil
}

// Send delivers the email of m. A malformed payload and a 5xx reply to RCPT
// or DATA are permanent; everything else (network, 4xx, a relay that
// refuses our greeting, TLS or credentials: a configuration matter) is
// retried.
func (s *SMTPSender) Send(ctx context.Context, m store.OutboxMessage) error {
	if m.Kind != KindEmail {
		return Permanent(fmt.Errorf("smtp: cannot send a %q message", m.Kind))
	}
	var e Email
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		return Permanent(fmt.Errorf("smtp: decode email payload: %w", err))
	}
	if err := e.validate(); err != nil {
		return Permanent(fmt.Errorf("smtp: %w", err))
	}
	to, _ := parseRecipient(e.To) // validated
	key := m.IdempotencyKey
	if key == "" {
		key = m.ID
	}
	msg, err := composeEmail(s.from, to, e, MessageID(key), time.Now())
	if err != nil {
		return Permanent(fmt.Errorf("smtp: compose: %w", err))
	}
	return s.deliver(ctx, to.Address, msg)
}

func (s *SMTPSender) deliver(ctx context.Context, rcpt string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	defer func() {
		// I/O cut short by the deadline or a cancellation reads as a
		// timeout; say why. The connection's deadline may fire a moment
		// before the context's.
		if err == nil || errors.Is(err, ErrPermanent) {
			return
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		} else if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			err = fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
		}
	}()

	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	dialer := &net.Dialer{}
	var conn net.Conn
	if s.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: s.tls}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp: connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancellation unblocks whatever read or write is under way.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fmt.Errorf("smtp: ehlo: %w", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("smtp: the relay does not offer STARTTLS; nothing sent in clear (tls: starttls)")
		}
		if err := c.StartTLS(s.tls); err != nil {
			return fmt.Errorf("smtp: starttls: %w", err)
		}
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("smtp: the relay does not offer AUTH")
		}
		auth := plainAuth{username: s.cfg.Username, password: s.cfg.Password, cleartextOK: s.cfg.TLS == TLSNone}
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp: mail from: %w", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return replyError("rcpt to", err)
	}
	w, err := c.Data()
	if err != nil {
		return replyError("data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: data: %w", err)
	}
	if err := w.Close(); err != nil {
		return replyError("data", err)
	}
	// The relay has the message: a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// replyError makes a 5xx reply to RCPT or DATA permanent: the relay will
// not take this recipient or this message. 530 and 535 (authentication)
// stay retryable: they are about the configuration.
func replyError(step string, err error) error {
	err = fmt.Errorf("smtp: %s: %w", step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 && te.Code != 530 && te.Code != 535 {
		return Permanent(err)
	}
	return err
}

// plainAuth is PLAIN (RFC 4616) that refuses to send credentials over a
// connection without TLS unless cleartextOK (tls: none). net/smtp's own
// PlainAuth lets them through to localhost.
type plainAuth struct {
	username, password string
	cleartextOK        bool
}

func (a plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.cleartextOK {
		return "", nil, errors.New("refusing to send credentials over a connection without TLS")
	}
	if !slices.Contains(server.Auth, "PLAIN") {
		return "", nil, errors.New("the relay does not offer AUTH PLAIN")
	}
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected challenge after AUTH PLAIN")
	}
	return nil, nil
}

// MessageID is the Message-ID of the email of an idempotency key:
// <key@sesame>, the bytes of key outside RFC 5322 atext written %XX, so
// that a receiving side can drop a second delivery.
func MessageID(key string) string {
	var b strings.Builder
	b.WriteByte('<')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if isAtext(c) && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteString("@sesame>")
	return b.String()
}

func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// composeEmail renders e as an RFC 5322 message: UTF-8, quoted-printable
// bodies, an RFC 2047 subject, multipart/alternative when e has both a text
// and an HTML body.
func composeEmail(from, to *mail.Address, e Email, msgID string, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", fold(from.String()))
	header("To", fold(to.String()))
	header("Subject", fold(mime.QEncoding.Encode("utf-8", e.Subject)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	header("X-Auto-Response-Suppress", "All")
	if e.Lang != "" {
		header("Content-Language", e.Lang)
	}

	const (
		textType = "text/plain; charset=utf-8"
		htmlType = "text/html; charset=utf-8"
	)
	switch {
	case e.HTML == "":
		header("Content-Type", textType)
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		err := writeQP(&b, e.Text)
		return b.Bytes(), err
	case e.Text == "":
		header("Content-Type", htmlType)
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		err := writeQP(&b, e.HTML)
		return b.Bytes(), err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ typ, content string }{{textType, e.Text}, {htmlType, e.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, p.content); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// fold puts each RFC 2047 encoded-word after the first, and the address
// after an encoded name, on a continuation line, so that a long encoded
// subject or name stays within the line limit. Unfolding gives the same
// value back.
var folder = strings.NewReplacer("?= =?", "?=\r\n =?", "?= <", "?=\r\n <")

func fold(v string) string { return folder.Replace(v) }

// writeQP writes s quoted-printable, line breaks as CRLF.
func writeQP(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, s); err != nil {
		return err
	}
	return qp.Close()
}
