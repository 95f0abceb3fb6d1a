package provisioning

import (
	"errors"
	"io"
	"log"
	stdmime "mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
)

// relay is a real SMTP server on 127.0.0.1:0 that keeps what it receives.
type relay struct {
	port int
	mu   sync.Mutex
	mail []relayMail
	// refuse, when set, makes RCPT fail for this address.
	refuse string
}

type relayMail struct {
	to      []string
	subject string
	body    string
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *relay) received() []relayMail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayMail(nil), r.mail...)
}

type relaySession struct {
	r  *relay
	to []string
}

func (s *relaySession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.r.mu.Lock()
	refuse := s.r.refuse
	s.r.mu.Unlock()
	if refuse != "" && strings.EqualFold(to, refuse) {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.to = append(s.to, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	m, err := mail.ReadMessage(rd)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(m.Body)
	subject, _ := new(mime).decode(m.Header.Get("Subject"))
	s.r.mu.Lock()
	s.r.mail = append(s.r.mail, relayMail{to: s.to, subject: subject, body: string(body)})
	s.r.mu.Unlock()
	return nil
}
func (s *relaySession) Reset()        { s.to = nil }
func (s *relaySession) Logout() error { return nil }

type mime struct{}

var mimeDecoder = new(stdmime.WordDecoder)

func (mime) decode(s string) (string, error) {
	return mimeDecoder.DecodeHeader(s)
}

// TestConfirmationAfterWelcome: through the real outbox worker and a real
// SMTP server, the requester's confirmation leaves only once the welcome
// has been accepted by the relay, and the request is then completed.
func TestConfirmationAfterWelcome(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		r := startRelay(t)
		sender, err := notify.NewSMTPSender(notify.SMTPConfig{Host: "127.0.0.1", Port: r.port, TLS: notify.TLSNone,
			From: "Sésame <no-reply@sesame.example>", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		w := &notify.Worker{Store: s, Senders: map[string]notify.Sender{notify.KindEmail: sender}, Now: f.clock.Now}
		res := f.submit(t, f.valid())
		if _, err := f.svc.Approve(ctx, admin, res.ID, nil); err != nil {
			t.Fatal(err)
		}

		// The relay refuses the new user's address for now: no
		// confirmation, the request stays approved.
		r.mu.Lock()
		r.refuse = "zoe.oneil@example.org"
		r.mu.Unlock()
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.received(); len(got) != 0 {
			t.Fatalf("received %+v while the welcome was refused", got)
		}
		if _, ok := f.email(t, doneID(res.ID)); ok {
			t.Fatal("confirmation queued although the welcome was not sent")
		}
		if req, _ := s.GetAccountRequest(ctx, res.ID); req.Status != store.RequestApproved {
			t.Fatalf("request %s", req.Status)
		}

		// The relay accepts it at the retry: welcome, then confirmation.
		r.mu.Lock()
		r.refuse = ""
		r.mu.Unlock()
		f.clock.Set(t0.Add(2 * time.Hour)) // past the backoff
		for range 3 {
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
		got := r.received()
		if len(got) != 2 {
			t.Fatalf("received %d emails, want the welcome then the confirmation: %+v", len(got), got)
		}
		if strings.Join(got[0].to, ",") != "zoe.oneil@example.org" || !strings.Contains(got[0].body, "zoe.o-neil-cote") {
			t.Fatalf("first email %+v, want the welcome to the new user only", got[0])
		}
		if strings.Join(got[1].to, ",") != f.requester.Email || !strings.Contains(got[1].subject, "reçu ses accès") ||
			!strings.Contains(got[1].body, "formation") {
			t.Fatalf("second email %+v, want the confirmation to the requester", got[1])
		}
		req, _ := s.GetAccountRequest(ctx, res.ID)
		if req.Status != store.RequestCompleted || !req.CompletedAt.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("request %s at %s, want completed", req.Status, req.CompletedAt)
		}
		// Nothing more to send.
		if n, err := w.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("RunOnce after: %d %v", n, err)
		}
		if _, err := f.svc.Approve(ctx, admin, res.ID, nil); !errors.Is(err, ErrDecided) {
			t.Fatalf("approve a completed request: %v", err)
		}
	})
}
