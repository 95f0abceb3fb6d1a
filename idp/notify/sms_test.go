package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// gateway is a fake SMS provider on a real HTTP server: it records every
// request and answers with status(n) for the n-th one (201 by default).
type gateway struct {
	*httptest.Server
	mu       sync.Mutex
	requests []gwRequest
	status   func(n int) int
	hold     func(n int, r *http.Request) // runs before answering
}

type gwRequest struct {
	path, user, pass, contentType, signature string
	body                                     []byte
	form                                     url.Values
}

func startGateway(t *testing.T) *gateway {
	g := &gateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := gwRequest{path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
			signature: r.Header.Get(SignatureHeader), body: body}
		rec.user, rec.pass, _ = r.BasicAuth()
		rec.form, _ = url.ParseQuery(string(body))
		g.mu.Lock()
		g.requests = append(g.requests, rec)
		n, status, hold := len(g.requests), g.status, g.hold
		g.mu.Unlock()
		if hold != nil {
			hold(n, r)
		}
		code := http.StatusCreated
		if status != nil {
			code = status(n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code >= 400 {
			_, _ = io.WriteString(w, `{"code": 21211, "message": "The 'To' number +15148721234 is not valid"}`)
			return
		}
		_, _ = io.WriteString(w, `{"sid": "SM123", "status": "queued"}`)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) got() []gwRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gwRequest(nil), g.requests...)
}

var code = SMS{To: "+15148721234", Body: "Sésame : 123456 est votre code de validation.\n\n@idp.example #123456"}

func enqueueSMS(t *testing.T, s store.Store, key string, m SMS) {
	t.Helper()
	enqueueSMSAt(t, s, key, m, t0)
}

func enqueueSMSAt(t *testing.T, s store.Store, key string, m SMS, at time.Time) {
	t.Helper()
	err := s.InTx(t.Context(), func(tx store.Tx) error { return EnqueueSMS(t.Context(), tx, key, m, at) })
	if err != nil {
		t.Fatal(err)
	}
}

func twilio(g *gateway) *TwilioSender {
	return &TwilioSender{URL: g.URL, AccountSID: "AC0123456789", AuthToken: "tw-token", From: "+15145550000", Client: g.Client()}
}

// The request is Twilio's documented form: POST to the account's
// Messages.json, basic auth SID:token, form To, From, Body.
func TestTwilioSender(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		g := startGateway(t)
		enqueueSMS(t, s, "sms-code:twilio", code)
		w := &Worker{Store: s, Senders: map[string]Sender{KindSMS: twilio(g)}, Now: func() time.Time { return t0 }}
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("claimed %d", n)
		}
		reqs := g.got()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		r := reqs[0]
		if r.path != "/2010-04-01/Accounts/AC0123456789/Messages.json" {
			t.Errorf("path %q", r.path)
		}
		if r.user != "AC0123456789" || r.pass != "tw-token" {
			t.Errorf("basic auth %q:%q", r.user, r.pass)
		}
		if r.contentType != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", r.contentType)
		}
		want := url.Values{"To": {code.To}, "From": {"+15145550000"}, "Body": {code.Body}}
		if r.form.Encode() != want.Encode() {
			t.Errorf("form %v, want %v", r.form, want)
		}
		if m := message(t, s, "sms-code:twilio"); m.SentAt.IsZero() {
			t.Errorf("not marked sent: %+v", m)
		}
	})
}

// A messaging service id goes in MessagingServiceSid instead of From.
func TestTwilioMessagingService(t *testing.T) {
	g := startGateway(t)
	tw := twilio(g)
	tw.From = "MG0123"
	if err := tw.Send(t.Context(), smsMessage(t, "k", code)); err != nil {
		t.Fatal(err)
	}
	if f := g.got()[0].form; f.Get("MessagingServiceSid") != "MG0123" || f.Has("From") {
		t.Errorf("form %v", f)
	}
}

func smsMessage(t *testing.T, key string, m SMS) store.OutboxMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return store.OutboxMessage{ID: outboxID(key), Kind: KindSMS, IdempotencyKey: key, Payload: b}
}

// A 5xx is retried from the outbox after a short backoff (seconds, not
// minutes: a code lives 5 minutes); the text is then sent once.
func TestSMSRetriedOn5xx(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		g := startGateway(t)
		g.status = func(n int) int {
			if n == 1 {
				return http.StatusServiceUnavailable
			}
			return http.StatusCreated
		}
		clk := &clock{t: t0}
		w := &Worker{Store: s, Senders: map[string]Sender{KindSMS: twilio(g)}, Now: clk.Now}
		enqueueSMS(t, s, "sms-code:retry", code)
		runOnce(t, w)
		m := message(t, s, "sms-code:retry")
		if !m.SentAt.IsZero() || !strings.Contains(m.LastError, "HTTP 503") {
			t.Fatalf("after a 503: %+v", m)
		}
		if d := m.NextAttemptAt.Sub(t0); d < smsBackoffBase/2 || d > smsBackoffBase {
			t.Fatalf("next attempt in %v, want within [%v, %v]", d, smsBackoffBase/2, smsBackoffBase)
		}
		if strings.Contains(m.LastError, "123456") || strings.Contains(m.LastError, code.To) {
			t.Errorf("last error %q repeats the message", m.LastError)
		}
		clk.Set(t0.Add(smsBackoffBase))
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("retry claimed %d", n)
		}
		if m := message(t, s, "sms-code:retry"); m.SentAt.IsZero() || m.Attempts != 2 {
			t.Fatalf("after the retry: %+v", m)
		}
		clk.Set(t0.Add(time.Hour))
		runOnce(t, w)
		if n := len(g.got()); n != 2 {
			t.Errorf("%d requests, want 2 (one 503, one accepted)", n)
		}
	})
}

// A 4xx is permanent: recorded on the message (without the number the
// gateway echoes), never retried. A 429 is retried.
func TestSMS4xxPermanent(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		g := startGateway(t)
		g.status = func(n int) int {
			if n == 1 {
				return http.StatusTooManyRequests
			}
			return http.StatusBadRequest
		}
		clk := &clock{t: t0}
		w := &Worker{Store: s, Senders: map[string]Sender{KindSMS: twilio(g)}, Now: clk.Now}
		enqueueSMS(t, s, "sms-code:4xx", code)
		runOnce(t, w)
		if m := message(t, s, "sms-code:4xx"); m.NextAttemptAt.Sub(t0) > time.Minute {
			t.Fatalf("429 not retried soon: %+v", m)
		}
		clk.Set(t0.Add(time.Minute))
		runOnce(t, w)
		m := message(t, s, "sms-code:4xx")
		if !m.SentAt.IsZero() || !strings.Contains(m.LastError, "permanent") || !strings.Contains(m.LastError, "HTTP 400 (twilio error 21211)") {
			t.Fatalf("after a 400: %+v", m)
		}
		if strings.Contains(m.LastError, code.To) {
			t.Errorf("last error %q repeats the number", m.LastError)
		}
		clk.Set(t0.Add(24 * time.Hour))
		if n := runOnce(t, w); n != 0 || len(g.got()) != 2 {
			t.Errorf("retried after a 4xx: claimed %d, %d requests", n, len(g.got()))
		}
	})
}

// The webhook posts {"to","body","idempotency_key"} signed with HMAC-SHA256
// of the body; the signature verifies with the secret and not without.
func TestWebhookSignature(t *testing.T) {
	g := startGateway(t)
	wh := &WebhookSender{URL: g.URL + "/hook", Secret: "hook-secret", Client: g.Client()}
	if err := wh.Send(t.Context(), smsMessage(t, "sms-code:hook", code)); err != nil {
		t.Fatal(err)
	}
	r := g.got()[0]
	if r.path != "/hook" || r.contentType != "application/json" {
		t.Errorf("path %q, content type %q", r.path, r.contentType)
	}
	var got map[string]string
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got["to"] != code.To || got["body"] != code.Body || got["idempotency_key"] != "sms-code:hook" || len(got) != 3 {
		t.Errorf("body %v", got)
	}
	// What a receiver does: HMAC-SHA256 of the bytes read, hex.
	if r.signature != Sign("hook-secret", r.body) || len(r.signature) != 64 {
		t.Errorf("signature %q", r.signature)
	}
	if !VerifySignature("hook-secret", r.body, r.signature) {
		t.Error("signature does not verify")
	}
	if VerifySignature("other-secret", r.body, r.signature) || VerifySignature("hook-secret", append(r.body, ' '), r.signature) {
		t.Error("signature verifies with another secret or body")
	}
}

// A worker stopped in the middle of a request leaves the text to the next
// one after the lease: the retried request carries the same idempotency
// key, so the gateway (which drops keys it has seen, as the webhook
// contract asks) delivers every text exactly once; the text not yet
// attempted is sent once; and a text whose code expired meanwhile is
// given up rather than sent late.
func TestSMSRestartMidDelivery(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		g := startGateway(t)
		arrived := make(chan struct{})
		g.hold = func(n int, r *http.Request) {
			if n == 1 {
				close(arrived)
				<-r.Context().Done() // the worker dies before the answer
			}
		}
		clk := &clock{t: t0}
		const lease = time.Minute
		wh := &WebhookSender{URL: g.URL, Secret: "k", Client: g.Client()}
		// Claimed in this order (oldest first).
		enqueueSMSAt(t, s, "sms:1", code, t0.Add(-3*time.Second))
		enqueueSMSAt(t, s, "sms:2", SMS{To: "+14186912000", Body: "two"}, t0.Add(-2*time.Second))
		enqueueSMSAt(t, s, "sms:3", SMS{To: "+14186912000", Body: "three", ExpiresAt: t0.Add(30 * time.Second)}, t0.Add(-time.Second))

		ctx, stop := context.WithCancel(t.Context())
		go func() { <-arrived; stop() }()
		first := &Worker{Store: s, Senders: map[string]Sender{KindSMS: wh}, Now: clk.Now, Lease: lease, Batch: 1, PollEvery: time.Hour}
		first.Run(ctx)
		if m := message(t, s, "sms:1"); !m.SentAt.IsZero() || m.LastError != "" {
			t.Fatalf("interrupted message recorded: %+v", m)
		}

		second := &Worker{Store: s, Senders: map[string]Sender{KindSMS: wh}, Now: clk.Now, Lease: lease}
		clk.Set(t0.Add(lease))
		runOnce(t, second)
		clk.Set(t0.Add(time.Hour))
		runOnce(t, second)

		delivered := map[string]int{} // what the gateway sends on, by key
		requests := map[string]int{}
		for _, r := range g.got() {
			var b struct {
				IdempotencyKey string `json:"idempotency_key"`
			}
			_ = json.Unmarshal(r.body, &b)
			requests[b.IdempotencyKey]++
			delivered[b.IdempotencyKey] = 1
		}
		if requests["sms:1"] != 2 || requests["sms:2"] != 1 || requests["sms:3"] != 0 {
			t.Errorf("requests by key %v; want sms:1 twice (same key), sms:2 once, sms:3 never", requests)
		}
		if len(delivered) != 2 {
			t.Errorf("delivered %v", delivered)
		}
		for _, k := range []string{"sms:1", "sms:2"} {
			if m := message(t, s, k); m.SentAt.IsZero() {
				t.Errorf("%s not sent: %+v", k, m)
			}
		}
		if m := message(t, s, "sms:3"); !m.SentAt.IsZero() || !strings.Contains(m.LastError, "expired") {
			t.Errorf("expired text: %+v", m)
		}
	})
}
