package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/ephemeral"
)

// Session is a signed-in browser.
type Session struct {
	// ID is public (the ID token's sid); the cookie value is secret and only
	// its hash is a key.
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	AuthTime   time.Time `json:"auth_time"`    // last password
	FactorAt   time.Time `json:"factor_at"`    // last second factor
	AMR        []string  `json:"amr"`          // of the last full sign-in
	ACR        string    `json:"acr"`          // of the last full sign-in
	Networks   []string  `json:"networks"`     // where a second factor was verified
	CreatedAt  time.Time `json:"created_at"`   //
	ExpiresAt  time.Time `json:"expires_at"`   //
	LastSeenAt time.Time `json:"last_seen_at"` //
}

// VerifiedOn reports whether a second factor was verified from network n.
func (s *Session) VerifiedOn(n string) bool { return slices.Contains(s.Networks, n) }

// Manager keeps sessions in the ephemeral store behind an HttpOnly cookie,
// and gives every browser a binding cookie used for CSRF tokens and to tie
// a sign-in flow to the browser that started it.
type Manager struct {
	Ephemeral ephemeral.Store
	// TTL is the absolute lifetime of a session (a clinical shift).
	TTL time.Duration
	// Secure marks cookies Secure and uses the __Host- prefix (TLS issuers).
	Secure bool
	// Path is the cookie path (the issuer's path, "/" by default).
	Path string
	Now  func() time.Time
}

const (
	sessionCookie = "sesame_session"
	browserCookie = "sesame_browser"
	keySession    = "sess:"
)

// ErrNoSession: no cookie, or the session ended.
var ErrNoSession = errors.New("session: none")

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

func (m *Manager) name(base string) string {
	if m.Secure && (m.Path == "" || m.Path == "/") {
		return "__Host-" + base
	}
	return base
}

func (m *Manager) path() string {
	if m.Path == "" {
		return "/"
	}
	return m.Path
}

func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is how cookie values become keys.
func Hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (m *Manager) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.name(name),
		Value:    value,
		Path:     m.path(),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   m.Secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// Load returns the browser's session.
func (m *Manager) Load(r *http.Request) (*Session, error) {
	c, err := r.Cookie(m.name(sessionCookie))
	if err != nil || len(c.Value) != 43 {
		return nil, ErrNoSession
	}
	b, err := m.Ephemeral.Get(r.Context(), keySession+Hash(c.Value))
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if !m.now().Before(s.ExpiresAt) {
		return nil, ErrNoSession
	}
	return &s, nil
}

// NewID returns a new public session id.
func NewID() string { return random()[:22] }

// Start ends the browser's current session, if any, and saves s under a
// new cookie value: the cookie rotates at every sign-in step. A new
// session (no ID) gets an id and ends TTL from now; a session continued
// (a step-up) keeps its id, creation and absolute end.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, s Session) (*Session, error) {
	m.end(r)
	now := m.now()
	if s.ID == "" {
		s.ID = NewID()
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.ExpiresAt.IsZero() {
		s.ExpiresAt = now.Add(m.TTL)
	}
	s.LastSeenAt = now
	if !now.Before(s.ExpiresAt) {
		m.setCookie(w, sessionCookie, "", -1)
		return nil, ErrNoSession
	}
	value := random()
	if err := m.put(r.Context(), Hash(value), &s); err != nil {
		return nil, err
	}
	if err := m.index(r.Context(), Hash(value), &s); err != nil {
		return nil, err
	}
	m.setCookie(w, sessionCookie, value, int(s.ExpiresAt.Sub(now).Seconds()))
	return &s, nil
}

// Update saves a changed session under the browser's current cookie.
func (m *Manager) Update(r *http.Request, s *Session) error {
	c, err := r.Cookie(m.name(sessionCookie))
	if err != nil {
		return ErrNoSession
	}
	return m.put(r.Context(), Hash(c.Value), s)
}

func (m *Manager) put(ctx context.Context, key string, s *Session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ttl := s.ExpiresAt.Sub(m.now())
	if ttl <= 0 {
		return ErrNoSession
	}
	return m.Ephemeral.Put(ctx, keySession+key, b, ttl)
}

func (m *Manager) end(r *http.Request) {
	if c, err := r.Cookie(m.name(sessionCookie)); err == nil && c.Value != "" {
		_ = m.Ephemeral.Delete(r.Context(), keySession+Hash(c.Value))
	}
}

// End signs the browser out.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) {
	m.end(r)
	m.setCookie(w, sessionCookie, "", -1)
}

// Browser returns the browser's binding value, setting the cookie when the
// browser has none. Its hash ties a sign-in flow to this browser.
func (m *Manager) Browser(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(m.name(browserCookie)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	v := random()
	m.setCookie(w, browserCookie, v, 0)
	// Make it visible to the rest of this request too.
	r.AddCookie(&http.Cookie{Name: m.name(browserCookie), Value: v})
	return v
}

// BrowserHash is the hash of the browser cookie, "" when there is none.
func (m *Manager) BrowserHash(r *http.Request) string {
	if c, err := r.Cookie(m.name(browserCookie)); err == nil && len(c.Value) == 43 {
		return Hash(c.Value)
	}
	return ""
}

// CSRFToken is the value forms carry in csrf_token: derived from the
// browser cookie, which another site can neither read nor set.
func (m *Manager) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	sum := sha256.Sum256([]byte("csrf:" + m.Browser(w, r)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckCSRF reports whether the form's csrf_token matches the browser.
func (m *Manager) CheckCSRF(r *http.Request) bool {
	c, err := r.Cookie(m.name(browserCookie))
	if err != nil || len(c.Value) != 43 {
		return false
	}
	sum := sha256.Sum256([]byte("csrf:" + c.Value))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf_token")), []byte(want)) == 1
}

// Networks reduces client addresses to networks: IPv4 /24 and IPv6 /48 by
// default.
type Networks struct {
	IPv4Bits, IPv6Bits int
	// Trusted proxies: X-Forwarded-For is believed only from them.
	Trusted []netip.Prefix
}

// ClientIP is the address of the browser: the socket peer, or the last
// untrusted hop of X-Forwarded-For when the peer is a trusted proxy. Hops
// may carry a port ("198.51.100.7:443", "[2001:db8::1]:443"); at a hop
// that is not an address ("unknown", garbage), the walk stops at the last
// trusted one.
func (n Networks) ClientIP(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := peer.Addr().Unmap()
	if !n.trusted(ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, ok := parseHop(hops[i])
		if !ok {
			return ip
		}
		if !n.trusted(h) {
			return h
		}
		ip = h
	}
	return ip
}

// parseHop reads one X-Forwarded-For element: an IPv4 or IPv6 address,
// with or without a port, IPv6 possibly in brackets; IPv4-mapped IPv6 is
// returned as IPv4, and a zone is dropped.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	ip, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			ip, err = ap.Addr(), nil
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			ip, err = netip.ParseAddr(s[1 : len(s)-1])
		}
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

func (n Networks) trusted(ip netip.Addr) bool {
	for _, p := range n.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Of returns the network of a client address, e.g. "192.0.2.0/24".
func (n Networks) Of(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	bits := n.IPv4Bits
	if bits == 0 {
		bits = 24
	}
	if ip.Is6() {
		bits = n.IPv6Bits
		if bits == 0 {
			bits = 48
		}
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ip.String()
	}
	return p.String()
}
