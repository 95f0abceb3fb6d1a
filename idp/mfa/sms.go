package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// SMS codes (issue 10): 6 digits from crypto/rand, valid 5 minutes, kept
// hashed in the ephemeral store; single use; five wrong entries void the
// code; a new code after 30 s; at most 3 sends per 15 minutes per user and
// per destination number, and a cap per hour for the whole deployment.
const (
	SMSCodeDigits  = 6
	SMSCodeTTL     = 5 * time.Minute
	SMSResendAfter = 30 * time.Second
	SMSMaxSends    = 3
	SMSSendWindow  = 15 * time.Minute
	SMSMaxWrong    = 5
	// DefaultSMSPerHour is the deployment's cap when MaxPerHour is zero.
	DefaultSMSPerHour = 1000
)

// Why a code is sent: a code sent for one purpose never serves another.
const (
	PurposeChallenge = "challenge" // sign-in with an enrolled phone
	PurposeEnroll    = "enroll"    // confirming a new phone
)

// ErrCodeExpired: there is no live code (never sent, expired, used, or
// voided by too many wrong entries). It is an ErrCodeInvalid.
var ErrCodeExpired = fmt.Errorf("%w: expired or voided", ErrCodeInvalid)

// ErrNoPhone: the user has no verified phone.
var ErrNoPhone = errors.New("mfa: no verified phone")

// SendError is a refused send: Reason says which limit, Wait when the next
// send may succeed.
type SendError struct {
	Reason string // SendTooSoon, SendUserLimit, SendDestinationLimit, SendGlobalLimit
	Wait   time.Duration
}

// SendError reasons.
const (
	SendTooSoon          = "too_soon"
	SendUserLimit        = "user"
	SendDestinationLimit = "destination"
	SendGlobalLimit      = "global"
)

func (e *SendError) Error() string {
	return fmt.Sprintf("mfa: sms not sent (%s limit), retry in %v", e.Reason, e.Wait)
}

// SMS is the text-message factor. Codes and counters live in the ephemeral
// store under hashed key names; texts go through the outbox.
type SMS struct {
	Store     store.Store
	Ephemeral ephemeral.Store
	// Issuer is the issuer URL: its host ends every text with the
	// origin-bound line "@host #123456" (WebOTP, iOS autofill).
	Issuer string
	// MaxPerHour caps the texts of the whole deployment per hour
	// (sms.max_per_hour); DefaultSMSPerHour when zero.
	MaxPerHour int
	// Text is the message catalogue (templates.Engine.T).
	Text func(lang, key string, args ...any) string
	// Notify wakes the outbox worker once a text is queued.
	Notify func()
}

var _ Factor = SMS{}

func (SMS) Method() string   { return string(store.CredSMS) }
func (SMS) AMR() flow.Method { return flow.SMS }

// Phone is u's verified sms credential: ErrNoPhone when there is none.
func (f SMS) Phone(ctx context.Context, userID string) (store.Credential, error) {
	creds, err := f.Store.ListCredentials(ctx, userID, store.CredSMS)
	if err != nil {
		return store.Credential{}, err
	}
	i := slices.IndexFunc(creds, func(c store.Credential) bool {
		return !c.VerifiedAt.IsZero() && users.CredentialPhone(c) != ""
	})
	if i < 0 {
		return store.Credential{}, ErrNoPhone
	}
	return creds[i], nil
}

// Enrolled: a verified phone.
func (f SMS) Enrolled(ctx context.Context, u store.User) (bool, error) {
	_, err := f.Phone(ctx, u.ID)
	if errors.Is(err, ErrNoPhone) {
		return false, nil
	}
	return err == nil, err
}

// Begin sends a sign-in code to u's phone (call it on a POST only).
func (f SMS) Begin(ctx context.Context, u store.User, now time.Time) (Challenge, error) {
	c, err := f.Phone(ctx, u.ID)
	if err != nil {
		return Challenge{}, err
	}
	return f.Send(ctx, u, PurposeChallenge, users.CredentialPhone(c), c.ID, now)
}

// Verify checks a sign-in code and returns the phone's credential.
func (f SMS) Verify(ctx context.Context, u store.User, code string, now time.Time) (store.Credential, error) {
	rec, err := f.Check(ctx, u.ID, PurposeChallenge, "", code, now)
	if err != nil {
		return store.Credential{}, err
	}
	c, err := f.Store.GetCredential(ctx, rec.Cred)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.UserID != u.ID || users.CredentialPhone(c) != rec.Phone)) {
		return store.Credential{}, ErrCodeExpired // the number changed meanwhile
	}
	if err != nil {
		return store.Credential{}, err
	}
	c.LastUsedAt = now
	if err := f.Store.UpdateCredential(ctx, c); err != nil {
		return store.Credential{}, err
	}
	return c, nil
}

// SMSCode is a live code as the ephemeral store keeps it (sealed there by
// Redis): the code itself only as a keyed hash.
type SMSCode struct {
	Salt    []byte    `json:"salt"`
	Hash    []byte    `json:"hash"` // HMAC-SHA256(salt, code)
	Phone   string    `json:"phone"`
	Cred    string    `json:"cred,omitempty"` // the credential, for a sign-in code
	SentAt  time.Time `json:"sent_at"`
	Expires time.Time `json:"expires"`
	Wrong   int       `json:"wrong"`
	Outbox  string    `json:"outbox,omitempty"` // the text's outbox message
}

func codeHash(salt []byte, code string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// hashName makes a key name that carries no user id or number.
func hashName(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

func codeKey(userID, purpose string) string { return hashName("smscode:", purpose, userID) }
func userRateKey(userID string) string      { return hashName("smsrate:u:", userID) }
func destRateKey(phone string) string       { return hashName("smsrate:d:", phone) }

// NewSMSCode returns 6 random digits.
func NewSMSCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return fmt.Sprintf("%06d", n.Int64())
}

var errTooSoon = errors.New("too soon")

// Send sends a new code for purpose to phone (E.164) in u's language, in
// place of any earlier one, after the limits: SendError when one refuses.
// credID is the enrolled phone's credential (sign-in), or empty.
func (f SMS) Send(ctx context.Context, u store.User, purpose, phone, credID string, now time.Time) (Challenge, error) {
	key := codeKey(u.ID, purpose)
	if rec, ok, err := f.load(ctx, key); err != nil {
		return Challenge{}, err
	} else if ok && now.Sub(rec.SentAt) < SMSResendAfter {
		return Challenge{}, &SendError{Reason: SendTooSoon, Wait: rec.SentAt.Add(SMSResendAfter).Sub(now)}
	}
	release, err := f.reserve(ctx, u.ID, phone, now)
	if err != nil {
		return Challenge{}, err
	}
	code := NewSMSCode()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	textKey := "sms-code:" + uuid.NewString()
	rec := SMSCode{Salt: salt, Hash: codeHash(salt, code), Phone: phone, Cred: credID, SentAt: now, Expires: now.Add(SMSCodeTTL),
		Outbox: notify.OutboxID(textKey)}
	var wait time.Duration
	err = f.Ephemeral.Update(ctx, key, SMSCodeTTL, func(old []byte) ([]byte, error) {
		var o SMSCode
		if old != nil && json.Unmarshal(old, &o) == nil && now.Sub(o.SentAt) < SMSResendAfter {
			wait = o.SentAt.Add(SMSResendAfter).Sub(now)
			return nil, errTooSoon // a concurrent send won
		}
		return json.Marshal(rec)
	})
	if err != nil {
		release()
		if errors.Is(err, errTooSoon) {
			return Challenge{}, &SendError{Reason: SendTooSoon, Wait: wait}
		}
		return Challenge{}, fmt.Errorf("store sms code: %w", err)
	}
	lang := "fr"
	if len(u.Locale) >= 2 && u.Locale[:2] == "en" {
		lang = "en"
	}
	body := f.text(lang, code)
	err = f.Store.InTx(ctx, func(tx store.Tx) error {
		return notify.EnqueueSMS(ctx, tx, textKey, notify.SMS{To: phone, Body: body, ExpiresAt: rec.Expires}, now)
	})
	if err != nil {
		_ = f.Ephemeral.Delete(ctx, key)
		release()
		return Challenge{}, fmt.Errorf("queue sms code: %w", err)
	}
	if f.Notify != nil {
		f.Notify()
	}
	return Challenge{Destination: users.MaskPhone(phone)}, nil
}

// text is the message: "Sésame : 123456 est votre code de validation."
// then the origin-bound line "@host #123456".
func (f SMS) text(lang, code string) string {
	var msg string
	if f.Text != nil {
		msg = f.Text(lang, "sms.code", code)
	}
	if msg == "" || msg == "sms.code" {
		msg = "Sésame : " + code + " est votre code de validation."
		if lang == "en" {
			msg = "Sésame: " + code + " is your validation code."
		}
	}
	host := "localhost"
	if u, err := url.Parse(f.Issuer); err == nil && u.Host != "" {
		host = u.Host
	}
	return msg + "\n\n@" + host + " #" + code
}

// Undelivered reports whether the live code for purpose could not be sent
// (the gateway refused the text, or the worker gave up): the page then says
// "could not send" rather than letting the user wait.
func (f SMS) Undelivered(ctx context.Context, userID, purpose string) (bool, error) {
	rec, ok, err := f.load(ctx, codeKey(userID, purpose))
	if err != nil || !ok || rec.Outbox == "" {
		return false, err
	}
	m, err := f.Store.GetOutboxMessage(ctx, rec.Outbox)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return notify.GaveUp(m), nil
}

func (f SMS) load(ctx context.Context, key string) (SMSCode, bool, error) {
	b, err := f.Ephemeral.Get(ctx, key)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return SMSCode{}, false, nil
	}
	if err != nil {
		return SMSCode{}, false, err
	}
	var rec SMSCode
	if err := json.Unmarshal(b, &rec); err != nil {
		return SMSCode{}, false, nil
	}
	return rec, true, nil
}

// reserve takes a place in the user's and the number's windows (3 sends
// per 15 minutes each) and in the deployment's hour; release gives the
// first two back when the send does not happen.
func (f SMS) reserve(ctx context.Context, userID, phone string, now time.Time) (release func(), err error) {
	uk, dk := userRateKey(userID), destRateKey(phone)
	if err := f.take(ctx, uk, now, SendUserLimit); err != nil {
		return nil, err
	}
	if err := f.take(ctx, dk, now, SendDestinationLimit); err != nil {
		f.give(ctx, uk, now)
		return nil, err
	}
	release = func() { f.give(ctx, uk, now); f.give(ctx, dk, now) }
	hour := now.Unix() / 3600
	n, err := f.Ephemeral.Incr(ctx, "smsrate:g:"+strconv.FormatInt(hour, 10), time.Hour)
	if err != nil {
		release()
		return nil, err
	}
	max := f.MaxPerHour
	if max <= 0 {
		max = DefaultSMSPerHour
	}
	if n > int64(max) {
		release()
		return nil, &SendError{Reason: SendGlobalLimit, Wait: time.Unix((hour+1)*3600, 0).Sub(now)}
	}
	return release, nil
}

// take adds now to the window at key, unless it already holds SMSMaxSends
// sends of the last SMSSendWindow.
func (f SMS) take(ctx context.Context, key string, now time.Time, reason string) error {
	var refused *SendError
	err := f.Ephemeral.Update(ctx, key, SMSSendWindow, func(old []byte) ([]byte, error) {
		refused = nil
		times := recent(old, now)
		if len(times) >= SMSMaxSends {
			refused = &SendError{Reason: reason, Wait: times[0].Add(SMSSendWindow).Sub(now)}
			return nil, refused
		}
		return json.Marshal(append(times, now))
	})
	if refused != nil {
		return refused
	}
	return err
}

// give removes one send at now from the window at key.
func (f SMS) give(ctx context.Context, key string, now time.Time) {
	_ = f.Ephemeral.Update(ctx, key, SMSSendWindow, func(old []byte) ([]byte, error) {
		times := recent(old, now)
		if i := slices.IndexFunc(times, now.Equal); i >= 0 {
			times = slices.Delete(times, i, i+1)
		}
		if len(times) == 0 {
			return nil, nil
		}
		return json.Marshal(times)
	})
}

// recent decodes a window and keeps the sends of the last SMSSendWindow,
// oldest first.
func recent(b []byte, now time.Time) []time.Time {
	var times []time.Time
	if b != nil && json.Unmarshal(b, &times) != nil {
		return nil
	}
	times = slices.DeleteFunc(times, func(t time.Time) bool { return !now.Before(t.Add(SMSSendWindow)) })
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return times
}

// Check consumes the code for purpose: the matching entry deletes it (one
// of concurrent entries wins); a wrong one counts, and the fifth voids it.
// phone, when set, must be the number the code was sent to. It returns
// the code's record, ErrCodeInvalid for a wrong code, ErrCodeExpired when
// there is no live code.
func (f SMS) Check(ctx context.Context, userID, purpose, phone, code string, now time.Time) (SMSCode, error) {
	code = users.NormalizeCode(code)
	var rec SMSCode
	var outcome error
	err := f.Ephemeral.Update(ctx, codeKey(userID, purpose), SMSCodeTTL, func(old []byte) ([]byte, error) {
		rec, outcome = SMSCode{}, nil
		if old == nil || json.Unmarshal(old, &rec) != nil {
			outcome = ErrCodeExpired
			return nil, outcome // nothing to write
		}
		if !now.Before(rec.Expires) || (phone != "" && rec.Phone != phone) {
			outcome = ErrCodeExpired
			return nil, nil // delete
		}
		if len(code) == SMSCodeDigits && hmac.Equal(codeHash(rec.Salt, code), rec.Hash) {
			return nil, nil // used: delete
		}
		rec.Wrong++
		if rec.Wrong >= SMSMaxWrong {
			outcome = ErrCodeExpired
			return nil, nil // voided
		}
		outcome = ErrCodeInvalid
		return json.Marshal(rec)
	})
	if outcome != nil {
		return SMSCode{}, outcome
	}
	if err != nil {
		return SMSCode{}, err
	}
	return rec, nil
}
