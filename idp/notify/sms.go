package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// The SMS gateways (DESIGN §5 Configuration, sms.*). Both answer as the
// worker expects: nil on a 2xx, a retried error on a 5xx, a 408, a 429 or a
// network failure, ErrPermanent on any other 4xx (a number the gateway
// refuses, bad credentials: retrying cannot help and the failure is
// recorded on the message). Neither logs nor returns the body of a message,
// which carries a code.

// DefaultTwilioURL is the Twilio API base, sms.url's default.
const DefaultTwilioURL = "https://api.twilio.com"

// smsTimeout bounds one request to a gateway when the caller's context has
// no earlier deadline: a text is worth sending only while its code lives.
const smsTimeout = 15 * time.Second

// TwilioSender sends SMS through a Twilio-compatible Messages API:
// POST {URL}/2010-04-01/Accounts/{AccountSID}/Messages.json, basic auth
// AccountSID:AuthToken, form To, From (or MessagingServiceSid when From is
// a messaging service id, "MG…"), Body.
type TwilioSender struct {
	URL        string // API base; DefaultTwilioURL when empty
	AccountSID string
	AuthToken  string
	From       string
	Client     *http.Client // http.DefaultClient when nil
}

var _ Sender = (*TwilioSender)(nil)

// Send posts the message of m.
func (s *TwilioSender) Send(ctx context.Context, m store.OutboxMessage) error {
	sms, err := decodeSMS(m)
	if err != nil {
		return err
	}
	base := strings.TrimRight(s.URL, "/")
	if base == "" {
		base = DefaultTwilioURL
	}
	form := url.Values{"To": {sms.To}, "Body": {sms.Body}}
	if strings.HasPrefix(s.From, "MG") {
		form.Set("MessagingServiceSid", s.From)
	} else {
		form.Set("From", s.From)
	}
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(s.AccountSID) + "/Messages.json"
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Permanent(fmt.Errorf("twilio: %w", err))
	}
	req.SetBasicAuth(s.AccountSID, s.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return do(s.Client, req, "twilio", twilioError)
}

// twilioError names Twilio's error code from an error answer (its message
// may repeat the number; it is left out).
func twilioError(body []byte) string {
	var e struct {
		Code int `json:"code"`
	}
	if json.Unmarshal(body, &e) == nil && e.Code != 0 {
		return fmt.Sprintf("twilio error %d", e.Code)
	}
	return ""
}

// WebhookSender posts each SMS as JSON {"to", "body", "idempotency_key"}
// to URL, for a gateway of one's own. X-Sesame-Signature carries the
// lowercase hex HMAC-SHA256 of the exact request body under Secret
// (sms.auth_token): the receiver recomputes it over the bytes it read and
// compares in constant time. The idempotency key lets it drop a message it
// already sent (delivery is at least once: see the package documentation).
type WebhookSender struct {
	URL    string
	Secret string
	Client *http.Client // http.DefaultClient when nil
}

var _ Sender = (*WebhookSender)(nil)

// SignatureHeader is the webhook's signature header.
const SignatureHeader = "X-Sesame-Signature"

// Sign is the X-Sesame-Signature of body under secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether sig is body's signature under secret, in
// constant time; for receivers and tests.
func VerifySignature(secret string, body []byte, sig string) bool {
	want := Sign(secret, body)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(strings.TrimSpace(sig))))
}

// Send posts the message of m.
func (s *WebhookSender) Send(ctx context.Context, m store.OutboxMessage) error {
	sms, err := decodeSMS(m)
	if err != nil {
		return err
	}
	body, err := json.Marshal(struct {
		To             string `json:"to"`
		Body           string `json:"body"`
		IdempotencyKey string `json:"idempotency_key"`
	}{sms.To, sms.Body, m.IdempotencyKey})
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(s.Secret, body))
	return do(s.Client, req, "webhook", nil)
}

func decodeSMS(m store.OutboxMessage) (SMS, error) {
	var sms SMS
	if err := json.Unmarshal(m.Payload, &sms); err != nil {
		return SMS{}, Permanent(fmt.Errorf("decode sms payload: %w", err))
	}
	if err := sms.validate(); err != nil {
		return SMS{}, Permanent(fmt.Errorf("sms payload: %w", err))
	}
	return sms, nil
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < smsTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, smsTimeout)
}

// do sends req and maps the answer: 2xx nil; 408, 429, 5xx and transport
// errors retried; other statuses permanent. detail, when set, reads a safe
// detail from an error body.
func do(c *http.Client, req *http.Request, name string, detail func([]byte) string) error {
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		// The URL has no secret (the token goes in a header), but the
		// error may carry it whole: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("%s: HTTP %d", name, resp.StatusCode)
	if detail != nil {
		if d := detail(b); d != "" {
			msg += " (" + d + ")"
		}
	}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return errors.New(msg)
	default:
		return Permanent(errors.New(msg))
	}
}
