package regulate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
)

// Store is what the regulator needs of the ephemeral store. Get returns
// ephemeral.ErrNotFound for a missing key.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	GetMany(ctx context.Context, keys ...string) ([][]byte, error)
	Delete(ctx context.Context, key string) error
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error
}

// Kind is what is being guessed; each kind has counters of its own.
type Kind string

const (
	// KindPassword: a password at the login page.
	KindPassword Kind = "pw"
	// KindCode: a second-factor code (TOTP, SMS, recovery code).
	KindCode Kind = "code"
)

// ErrKind: an Attempt without a known Kind.
var ErrKind = errors.New("regulate: unknown attempt kind")

func (k Kind) check() error {
	if k != KindPassword && k != KindCode {
		return fmt.Errorf("%w %q", ErrKind, string(k))
	}
	return nil
}

// Attempt is one guess to check, then to report as failed or succeeded.
type Attempt struct {
	Kind Kind
	// Account is the folded username for a password (the account may not
	// exist, and must not be told apart) and the user id for a code.
	Account string
	// IP is the client address (session.Networks.ClientIP).
	IP netip.Addr
	// Device is the browser's device cookie (session.Manager.Device), ""
	// when it has none. Only its hash reaches the store.
	Device string
}

// Reason says which limit refused an attempt, for logs and metrics; the
// page says only when to retry.
type Reason string

const (
	// ReasonDelay: recent failures of this account from this network or
	// this device; the wait grows with each failure.
	ReasonDelay Reason = "delay"
	// ReasonAccount: MaxUnknown consecutive failures from unknown devices.
	ReasonAccount Reason = "account"
	// ReasonNetwork: NetworkFailures failures from this network.
	ReasonNetwork Reason = "network"
	// ReasonRequests: Requests requests from this network.
	ReasonRequests Reason = "requests"
)

// Verdict is the answer of Check and AllowRequest.
type Verdict struct {
	Allowed bool
	// RetryAfter is how long to wait before trying again (when refused).
	RetryAfter time.Duration
	Reason     Reason
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up (for a
// Retry-After header or "try again in N seconds").
func (v Verdict) RetryAfterSeconds() int {
	return int((v.RetryAfter + time.Second - 1) / time.Second)
}

// Regulator throttles guesses. It counts failures only, per account ×
// network and per account × device, with growing delays; a device on which
// the account succeeded before is judged on its own failures alone, so a
// stranger's failures never lock it out; unknown devices share a cap of
// MaxUnknown consecutive failures per account.
//
// Call Check before verifying a password or code (refuse without
// verifying when it says so), then Fail after a wrong one or Succeed after
// a right one. Refused attempts are not failures: do not report them.
type Regulator struct {
	store Store
	cfg   Config
	now   func() time.Time
}

// New returns a regulator over store. A zero cfg means DefaultConfig();
// now nil means time.Now.
func New(store Store, cfg Config, now func() time.Time) (*Regulator, error) {
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Regulator{store: store, cfg: cfg, now: now}, nil
}

// Config returns the limits in force.
func (r *Regulator) Config() Config { return r.cfg }

// Records, as JSON; times are Unix milliseconds of the regulator's clock,
// so windows follow the injected clock whatever the store's own.

// accountRec is per account and kind: the generation (Unlock increments it,
// voiding every count written before) and the consecutive failures from
// unknown devices.
type accountRec struct {
	Gen     uint64 `json:"g,omitempty"`
	Unknown int    `json:"u,omitempty"`
	Last    int64  `json:"t,omitempty"`
}

// countRec is the failures of one account on one network or one device;
// a device record also says since when the device is known.
type countRec struct {
	Gen   uint64 `json:"g,omitempty"`
	N     int    `json:"n,omitempty"`
	Last  int64  `json:"t,omitempty"`
	Known int64  `json:"k,omitempty"`
}

// netRec is the failures of one network across accounts.
type netRec struct {
	N     int   `json:"n"`
	Start int64 `json:"s"`
}

func ms(t time.Time) int64                          { return t.UnixMilli() }
func at(msec int64) time.Time                       { return time.UnixMilli(msec) }
func since(now time.Time, msec int64) time.Duration { return now.Sub(at(msec)) }

// hash names keys after values that must not appear in them (usernames,
// device cookies): 128 bits of SHA-256 over the length-prefixed parts.
func hash(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

func accountKey(k Kind, account string) string { return "rl:" + string(k) + ":a:" + hash(account) }
func pairNetKey(k Kind, account, network string) string {
	return "rl:" + string(k) + ":an:" + hash(account, network)
}
func pairDevKey(k Kind, account, device string) string {
	return "rl:" + string(k) + ":ad:" + hash(account, device)
}
func networkKey(k Kind, network string) string { return "rl:" + string(k) + ":n:" + network }

// Network reduces a client address to the network its counters are kept
// for: IPv4 by IPv4Prefix, IPv6 by IPv6Prefix (IPv4-mapped addresses count
// as IPv4); "invalid" for no address.
func (r *Regulator) Network(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.Unmap().WithZone("")
	bits := r.cfg.IPv4Prefix
	if ip.Is6() {
		bits = r.cfg.IPv6Prefix
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

func load[T any](ctx context.Context, s Store, key string) (T, error) {
	var v T
	b, err := s.Get(ctx, key)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("regulate: read %s: %w", key, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("regulate: decode %s: %w", key, err)
	}
	return v, nil
}

// update changes the record at key atomically; fn returns false to delete it.
func update[T any](ctx context.Context, s Store, key string, ttl time.Duration, fn func(*T) bool) error {
	err := s.Update(ctx, key, ttl, func(old []byte) ([]byte, error) {
		var v T
		if old != nil {
			if err := json.Unmarshal(old, &v); err != nil {
				return nil, fmt.Errorf("decode: %w", err)
			}
		}
		if !fn(&v) {
			return nil, nil
		}
		return json.Marshal(v)
	})
	if err != nil {
		return fmt.Errorf("regulate: update %s: %w", key, err)
	}
	return nil
}

// accountTTL keeps the account record (and its generation) at least as
// long as any count written with it means something.
func (r *Regulator) accountTTL() time.Duration { return max(r.cfg.Window, r.cfg.UnknownWindow) }

// current is the count of c still in force: none once Window passed
// since its last failure, or once Unlock changed the generation.
func (r *Regulator) current(c countRec, gen uint64, now time.Time) int {
	if c.Gen != gen || c.N == 0 || since(now, c.Last) >= r.cfg.Window {
		return 0
	}
	return c.N
}

// delay is the wait after n failures: none for the free ones, then
// BaseDelay doubling up to MaxDelay.
func (r *Regulator) delay(n int) time.Duration {
	if n < r.cfg.FreeFailures || n == 0 {
		return 0
	}
	d := r.cfg.BaseDelay
	for i := r.cfg.FreeFailures; i < n && d < r.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxDelay)
}

// wait is how long the next attempt must wait after the failures in c.
func (r *Regulator) wait(c countRec, gen uint64, now time.Time) time.Duration {
	n := r.current(c, gen, now)
	if n == 0 {
		return 0
	}
	return max(0, at(c.Last).Add(r.delay(n)).Sub(now))
}

func (r *Regulator) known(c countRec, now time.Time) bool {
	return c.Known != 0 && since(now, c.Known) < r.cfg.DeviceTTL
}

// count adds a failure at now to c, starting afresh when c is stale.
func (r *Regulator) count(c *countRec, gen uint64, now time.Time) {
	if r.current(*c, gen, now) == 0 {
		c.N = 0
	}
	c.Gen, c.N, c.Last = gen, c.N+1, ms(now)
}

// device loads the account × device record; ok reports whether there is a
// device at all.
func (r *Regulator) device(ctx context.Context, a Attempt) (rec countRec, ok bool, err error) {
	if a.Device == "" {
		return countRec{}, false, nil
	}
	rec, err = load[countRec](ctx, r.store, pairDevKey(a.Kind, a.Account, a.Device))
	return rec, true, err
}

// Check says whether the attempt may be verified now, and if not when to
// retry. A known device of the account is judged on its own failures only;
// any other on the account × network count, the account's consecutive
// failures from unknown devices, and the network's failures. An error
// means the store failed: refuse the attempt.
func (r *Regulator) Check(ctx context.Context, a Attempt) (Verdict, error) {
	if err := a.Kind.check(); err != nil {
		return Verdict{}, err
	}
	now := r.now()
	network := r.Network(a.IP)
	// Every record the verdict may need, in one round trip.
	keys := []string{accountKey(a.Kind, a.Account), networkKey(a.Kind, network), pairNetKey(a.Kind, a.Account, network)}
	if a.Device != "" {
		keys = append(keys, pairDevKey(a.Kind, a.Account, a.Device))
	}
	vals, err := r.store.GetMany(ctx, keys...)
	if err != nil {
		return Verdict{}, fmt.Errorf("regulate: read: %w", err)
	}
	var (
		acct accountRec
		nr   netRec
		pair countRec
		dev  countRec
	)
	for i, v := range []any{&acct, &nr, &pair, &dev}[:len(keys)] {
		if err := decode(keys[i], vals[i], v); err != nil {
			return Verdict{}, err
		}
	}
	if a.Device != "" && r.known(dev, now) {
		if w := r.wait(dev, acct.Gen, now); w > 0 {
			return Verdict{RetryAfter: w, Reason: ReasonDelay}, nil
		}
		return Verdict{Allowed: true}, nil
	}

	v := Verdict{Allowed: true}
	refuse := func(w time.Duration, why Reason) {
		if w > 0 && w > v.RetryAfter {
			v = Verdict{RetryAfter: w, Reason: why}
		}
	}
	if acct.Unknown >= r.cfg.MaxUnknown {
		refuse(r.cfg.UnknownWindow-since(now, acct.Last), ReasonAccount)
	}
	if nr.N >= r.cfg.NetworkFailures {
		refuse(r.cfg.NetworkWindow-since(now, nr.Start), ReasonNetwork)
	}
	refuse(r.wait(pair, acct.Gen, now), ReasonDelay)
	return v, nil
}

// decode reads a record (nil: none).
func decode(key string, b []byte, v any) error {
	if b == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("regulate: decode %s: %w", key, err)
	}
	return nil
}

// Fail records a wrong password or code for an attempt Check allowed. On a
// known device it counts against that device alone; otherwise against the
// account × network, the account's consecutive failures from unknown
// devices and the network.
func (r *Regulator) Fail(ctx context.Context, a Attempt) error {
	if err := a.Kind.check(); err != nil {
		return err
	}
	now := r.now()
	dev, hasDevice, err := r.device(ctx, a)
	if err != nil {
		return err
	}
	known := hasDevice && r.known(dev, now)
	var gen uint64
	err = update(ctx, r.store, accountKey(a.Kind, a.Account), r.accountTTL(), func(acct *accountRec) bool {
		gen = acct.Gen
		if !known {
			if since(now, acct.Last) >= r.cfg.UnknownWindow {
				acct.Unknown = 0
			}
			acct.Unknown++
			acct.Last = ms(now)
		}
		return true
	})
	if err != nil {
		return err
	}
	if known {
		return update(ctx, r.store, pairDevKey(a.Kind, a.Account, a.Device), r.cfg.DeviceTTL, func(c *countRec) bool {
			r.count(c, gen, now)
			return true
		})
	}
	network := r.Network(a.IP)
	err = update(ctx, r.store, pairNetKey(a.Kind, a.Account, network), r.cfg.Window, func(c *countRec) bool {
		r.count(c, gen, now)
		return true
	})
	if err != nil {
		return err
	}
	return update(ctx, r.store, networkKey(a.Kind, network), r.cfg.NetworkWindow, func(n *netRec) bool {
		if n.N == 0 || since(now, n.Start) >= r.cfg.NetworkWindow {
			*n = netRec{Start: ms(now)}
		}
		n.N++
		return true
	})
}

// Succeed records a right password or code: it clears this account ×
// network count and the account's consecutive failures from unknown
// devices (never another network's or device's count), and remembers the
// device (when the attempt has one: pass session.Manager.RememberDevice's
// value) as known for this account and kind, for DeviceTTL.
func (r *Regulator) Succeed(ctx context.Context, a Attempt) error {
	if err := a.Kind.check(); err != nil {
		return err
	}
	now := r.now()
	var gen uint64
	err := update(ctx, r.store, accountKey(a.Kind, a.Account), r.accountTTL(), func(acct *accountRec) bool {
		gen = acct.Gen
		acct.Unknown, acct.Last = 0, 0
		return acct.Gen != 0
	})
	if err != nil {
		return err
	}
	k := pairNetKey(a.Kind, a.Account, r.Network(a.IP))
	if err := r.store.Delete(ctx, k); err != nil {
		return fmt.Errorf("regulate: delete %s: %w", k, err)
	}
	if a.Device == "" {
		return nil
	}
	return update(ctx, r.store, pairDevKey(a.Kind, a.Account, a.Device), r.cfg.DeviceTTL, func(c *countRec) bool {
		*c = countRec{Gen: gen, Known: ms(now)}
		return true
	})
}

// Unlock voids every count of the account, of every kind, on every network
// and device (support's `sesame user unlock`). Known devices stay known.
func (r *Regulator) Unlock(ctx context.Context, account string) error {
	for _, k := range []Kind{KindPassword, KindCode} {
		err := update(ctx, r.store, accountKey(k, account), r.accountTTL(), func(acct *accountRec) bool {
			*acct = accountRec{Gen: acct.Gen + 1}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// AllowRequest counts one request that creates stored state (an
// authorization request) from the client address's network, and refuses
// it past Requests within the current RequestWindow (windows follow one
// another on the regulator's clock).
func (r *Regulator) AllowRequest(ctx context.Context, ip netip.Addr) (Verdict, error) {
	now := r.now()
	w := r.cfg.RequestWindow.Milliseconds()
	bucket := ms(now) / w
	key := "rl:req:" + r.Network(ip) + ":" + strconv.FormatInt(bucket, 10)
	n, err := r.store.Incr(ctx, key, r.cfg.RequestWindow)
	if err != nil {
		return Verdict{}, fmt.Errorf("regulate: count request: %w", err)
	}
	if n > int64(r.cfg.Requests) {
		return Verdict{RetryAfter: at((bucket + 1) * w).Sub(now), Reason: ReasonRequests}, nil
	}
	return Verdict{Allowed: true}, nil
}
