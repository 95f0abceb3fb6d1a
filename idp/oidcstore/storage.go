package oidcstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/store"
)

// Lifetimes of the short-lived records.
const (
	AuthRequestTTL = 30 * time.Minute
	CodeTTL        = 60 * time.Second
	// codeUseTTL bounds how long a used code is remembered, to revoke what it
	// issued if it comes back (each change of its record restarts it).
	codeUseTTL = time.Hour
	// revokedFamilyTTL: an access token issued from a revoked refresh family
	// is refused for this long (longer than any access token lives).
	revokedFamilyTTL = 24 * time.Hour
	// revokedSessionTTL: an access token of a signed-out browser session is
	// refused for this long (longer than any access token lives).
	revokedSessionTTL = 24 * time.Hour
	// revokedUserTTL: the access tokens issued to a disabled user are
	// refused for this long (longer than any access token lives).
	revokedUserTTL = 24 * time.Hour
)

// Storage implements op.Storage on the durable and ephemeral stores.
type Storage struct {
	Store     store.Store
	Ephemeral ephemeral.Store
	Keys      Keys
	Logger    *slog.Logger
	Now       func() time.Time
	// LoginURL returns where the browser goes to sign in for an auth request.
	LoginURL func(authRequestID string) string
	// Audit records an event; an error fails the request.
	Audit func(ctx context.Context, e store.AuditEvent) error
	// Features returns the features an occupation enables (the "features"
	// claim of sesame:institutions; config provisioning.occupations). Nil:
	// none.
	Features func(occupation string) []string
	// ClientTTL is how long a client read from Store is reused (0: read
	// it at every request). A change to a client is seen within ClientTTL.
	ClientTTL time.Duration
	// UserTTL is how long a user read for a userinfo or introspection
	// answer is reused (0: read it each time).
	UserTTL time.Duration

	clients clientCache
	users   userCache
}

// Keys is what Storage needs of the signing keys (idp/keys.Manager).
type Keys interface {
	// SigningKey returns the active key of alg, or an error if there is none.
	SigningKey(alg string) (op.SigningKey, error)
	// PublicKeys returns the keys published in the JWKS.
	PublicKeys() []op.Key
	// Algorithms returns the algorithms that have an active key.
	Algorithms() []jose.SignatureAlgorithm
}

var (
	_ op.Storage                        = (*Storage)(nil)
	_ op.ClientCredentialsStorage       = (*Storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*Storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*Storage)(nil)
)

// Ephemeral key prefixes.
const (
	keyAuthRequest   = "ar:"
	keyCode          = "code:"
	keyCodeIssued    = "arcode:"
	keyAccessToken   = "at:"
	keyRevokedFamily = "revfam:"
	// keyRevokedSession + hashKey(sid): the browser session signed out.
	keyRevokedSession = "revsess:"
	// keyRevokedUser + user id: the time until which every access token
	// issued to the user is refused (RevokeUserAccessTokens).
	keyRevokedUser = "revuser:"
)

func (s *Storage) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// audit records e; an error fails the request that does what it records.
func (s *Storage) audit(ctx context.Context, e store.AuditEvent) error {
	if s.Audit != nil {
		if e.At.IsZero() {
			e.At = s.now()
		}
		return s.Audit(ctx, e)
	}
	return nil
}

// hashKey turns a secret into an ephemeral key suffix: secrets never appear
// as keys.
func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// HashToken is how refresh tokens are stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Storage) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Ephemeral.Put(ctx, key, b, ttl)
}

func (s *Storage) getJSON(ctx context.Context, key string, v any) error {
	b, err := s.Ephemeral.Get(ctx, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// notFound is an error zitadel/oidc recognises as "not found".
type notFound struct{ what string }

func (e notFound) Error() string { return e.what + " not found" }
func (notFound) IsNotFound()     {}

// ---- auth requests ----

// CreateAuthRequest validates what zitadel/oidc leaves to us (PKCE S256
// only, PKCE required where the client says so) and stores the request.
func (s *Storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	c, err := s.getClient(ctx, r.ClientID)
	if err != nil {
		return nil, s.verdict(ctx, err, oidc.ErrInvalidRequest().WithDescription("unknown client"))
	}
	client := &Client{c: c}
	if r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if r.CodeChallenge == "" && client.PKCERequired() {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for this client")
	}
	if r.CodeChallenge != "" && (len(r.CodeChallenge) < 43 || len(r.CodeChallenge) > 128) {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is malformed")
	}
	if len(r.State) > 2048 || len(r.Nonce) > 2048 || len(r.LoginHint) > 512 {
		return nil, oidc.ErrInvalidRequest().WithDescription("a parameter is too long")
	}
	if r.ResponseMode != "" && r.ResponseMode != oidc.ResponseModeQuery && r.ResponseMode != oidc.ResponseModeFormPost && r.ResponseMode != oidc.ResponseModeFragment {
		return nil, oidc.ErrInvalidRequest().WithDescription("unsupported response_mode")
	}
	a := newAuthRequest(uuid.NewString(), s.now(), r, userID)
	a.IDTokenClaims = claimsRequestFrom(ctx).IDToken
	if err := s.putJSON(ctx, keyAuthRequest+a.ID, a, AuthRequestTTL); err != nil {
		return nil, s.fail(ctx, fmt.Errorf("save auth request: %w", err))
	}
	return a, nil
}

// AuthRequest loads an auth request with its flow state.
func (s *Storage) AuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, notFound{"auth request"}
	}
	if m, _ := ctx.Value(authRequestKey{}).(*AuthRequest); m != nil && m.ID == id {
		c := *m
		return &c, nil
	}
	var a AuthRequest
	if err := s.getJSON(ctx, keyAuthRequest+id, &a); err != nil {
		if errors.Is(err, ephemeral.ErrNotFound) {
			return nil, notFound{"auth request"}
		}
		return nil, err
	}
	if !s.now().Before(a.CreatedAt.Add(AuthRequestTTL)) {
		return nil, notFound{"auth request"}
	}
	return &a, nil
}

type authRequestKey struct{}

// WithAuthRequest marks a request's context with an auth request it has
// loaded: the provider's callback, which asks for it again twice, reads it
// from there. Only for a request that changes it no more.
func WithAuthRequest(ctx context.Context, a *AuthRequest) context.Context {
	c := *a
	return context.WithValue(ctx, authRequestKey{}, &c)
}

// SaveAuthRequest stores the flow's progress. The request keeps its
// original deadline.
func (s *Storage) SaveAuthRequest(ctx context.Context, a *AuthRequest) error {
	ttl := a.CreatedAt.Add(AuthRequestTTL).Sub(s.now())
	if ttl <= 0 {
		return notFound{"auth request"}
	}
	return s.putJSON(ctx, keyAuthRequest+a.ID, a, ttl)
}

// UpdateAuthRequest changes a flow by one atomic read-modify-write: fn
// gets the current request and changes it in place, or returns an error to
// write nothing. fn may run more than once under contention. The request
// keeps its original deadline.
func (s *Storage) UpdateAuthRequest(ctx context.Context, id string, fn func(a *AuthRequest) error) (*AuthRequest, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, notFound{"auth request"}
	}
	var out *AuthRequest
	err := s.Ephemeral.Update(ctx, keyAuthRequest+id, AuthRequestTTL, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, notFound{"auth request"}
		}
		var a AuthRequest
		if err := json.Unmarshal(old, &a); err != nil {
			return nil, err
		}
		if !s.now().Before(a.CreatedAt.Add(AuthRequestTTL)) {
			return nil, notFound{"auth request"}
		}
		if err := fn(&a); err != nil {
			return nil, err
		}
		out = &a
		return json.Marshal(&a)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.AuthRequest(ctx, id)
	if err != nil {
		return nil, s.verdict(ctx, err, oidc.ErrInvalidRequest().WithDescription("the sign-in request is unknown or expired"))
	}
	return a, nil
}

// SaveAuthCode stores the code of a finished auth request, unused, for
// CodeTTL. One code per auth request: a replayed callback gets none.
func (s *Storage) SaveAuthCode(ctx context.Context, id, code string) error {
	a, err := s.AuthRequest(ctx, id)
	if err != nil {
		return s.verdict(ctx, err, oidc.ErrInvalidRequest().WithDescription("the sign-in is not finished"))
	}
	if !a.Done() {
		return oidc.ErrInvalidRequest().WithDescription("the sign-in is not finished")
	}
	if err := s.Ephemeral.PutNew(ctx, keyCodeIssued+id, []byte{1}, AuthRequestTTL); err != nil {
		if errors.Is(err, ephemeral.ErrExists) {
			return oidc.ErrInvalidRequest().WithDescription("a code was already issued for this sign-in")
		}
		return s.fail(ctx, err)
	}
	b, err := json.Marshal(codeRecord{State: codeUnused, RequestID: id})
	if err != nil {
		return s.fail(ctx, err)
	}
	return s.fail(ctx, s.Ephemeral.PutNew(ctx, keyCode+hashKey(code), b, CodeTTL))
}

// codeState is the life of an authorization code: unused → used (the
// first exchange took it) → compromised (it came back). Each step is one
// compare-and-set (ephemeral.Store.Update) on the code's record.
type codeState string

const (
	codeUnused      codeState = "unused"
	codeUsed        codeState = "used"
	codeCompromised codeState = "compromised"
)

// codeRecord is what the ephemeral store keeps of a code, under the hash
// of the code: its state, its auth request, and what its exchange issued,
// to revoke it if the code comes back. The replay's "mark compromised,
// revoke what is recorded" and the exchange's "record, revoke if
// compromised" are updates of this one record, so whichever comes second
// sees what the other wrote.
type codeRecord struct {
	State        codeState `json:"state"`
	RequestID    string    `json:"request_id"`
	AccessTokens []string  `json:"access_tokens,omitempty"`
	Family       string    `json:"family,omitempty"`
}

// errNoCode: the code is unknown or expired (it makes Update write nothing).
var errNoCode = errors.New("oidcstore: no such code")

// updateCode applies fn to the record of the code with hash h, atomically,
// and returns the record as fn last saw it (before its change).
func (s *Storage) updateCode(ctx context.Context, h string, fn func(r *codeRecord) error) (codeRecord, error) {
	var seen codeRecord
	err := s.Ephemeral.Update(ctx, keyCode+h, codeUseTTL, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, errNoCode
		}
		var r codeRecord
		if err := json.Unmarshal(old, &r); err != nil {
			return nil, fmt.Errorf("code record: %w", err)
		}
		seen = r
		if err := fn(&r); err != nil {
			return nil, err
		}
		return json.Marshal(r)
	})
	return seen, err
}

// errCodeSpent: the code is already compromised (nothing left to change).
var errCodeSpent = errors.New("oidcstore: code already compromised")

// AuthRequestByCode moves the code from unused to used and returns its
// request; of two exchanges of one code, one gets it. A code that comes
// back is marked compromised, and what its first exchange recorded is
// revoked; what that exchange records later, it revokes itself
// (recordCodeUse).
func (s *Storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	h := hashKey(code)
	was, err := s.updateCode(ctx, h, func(r *codeRecord) error {
		switch r.State {
		case codeUnused:
			r.State = codeUsed
		case codeUsed:
			r.State = codeCompromised
		default:
			return errCodeSpent
		}
		return nil
	})
	switch {
	case errors.Is(err, errNoCode):
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	case errors.Is(err, errCodeSpent):
		err = nil // a replay of a replayed code: revoke again, harmlessly
	case err != nil:
		return nil, s.fail(ctx, fmt.Errorf("take code: %w", err))
	}
	if was.State != codeUnused {
		if err := s.revokeCodeUse(ctx, was); err != nil {
			return nil, s.fail(ctx, err)
		}
		s.Logger.Warn("authorization code replayed: its tokens are revoked")
		if err := s.audit(ctx, store.AuditEvent{Type: "token.code_replayed"}); err != nil {
			return nil, s.fail(ctx, err)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	a, err := s.AuthRequest(ctx, was.RequestID)
	if err != nil {
		// The code is used up: a retry after the outage is refused, and the
		// browser signs in again.
		return nil, s.verdict(ctx, err, oidc.ErrInvalidGrant().WithDescription("invalid or expired code"))
	}
	a.codeHash = h
	return a, nil
}

// revokeCodeUse revokes what a code's exchange issued; it goes on past a
// failure, and returns the first.
func (s *Storage) revokeCodeUse(ctx context.Context, r codeRecord) error {
	var first error
	for _, id := range r.AccessTokens {
		if err := s.Ephemeral.Delete(ctx, keyAccessToken+id); err != nil {
			s.Logger.Error("revoke access token of a replayed code", "err", err)
			first = cmp.Or(first, err)
		}
	}
	if r.Family != "" {
		first = cmp.Or(first, s.revokeFamily(ctx, r.Family))
	}
	return first
}

// recordCodeUse adds what a code's exchange issued to the code's record,
// after storing it. If the code was marked compromised meanwhile, the
// replay could not see these tokens: they are revoked here and the
// exchange fails. If they cannot be recorded, they are revoked too: a
// replay could not find them.
func (s *Storage) recordCodeUse(ctx context.Context, h, accessTokenID, family string) error {
	issued := codeRecord{AccessTokens: []string{accessTokenID}, Family: family}
	was, err := s.updateCode(ctx, h, func(r *codeRecord) error {
		r.AccessTokens = append(r.AccessTokens, accessTokenID)
		if family != "" {
			r.Family = family
		}
		return nil
	})
	switch {
	case errors.Is(err, errNoCode):
		if err := s.revokeCodeUse(ctx, issued); err != nil {
			return s.fail(ctx, err)
		}
		return oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	case err != nil:
		// The tokens were stored but a replay could not find them: they
		// are revoked (the family in the durable store, and the access
		// token with Redis back, or at its expiry when it is not).
		_ = s.revokeCodeUse(ctx, issued)
		return s.fail(ctx, fmt.Errorf("record code use: %w", err))
	case was.State == codeCompromised:
		if err := s.revokeCodeUse(ctx, issued); err != nil {
			return s.fail(ctx, err)
		}
		return oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	return nil
}

// DeleteAuthRequest is called once the code's tokens are issued: a failure
// is logged and not returned, so that the tokens reach the client (the
// request is done and has had its code: it serves nothing until it
// expires).
func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := s.Ephemeral.Delete(ctx, keyAuthRequest+id); err != nil {
		s.Logger.Warn("delete a finished auth request", "err", err)
	}
	return nil
}

// ---- tokens ----

// AccessToken is an issued access token, kept until it expires; deleting
// it revokes it.
type AccessToken struct {
	ID        string    `json:"id"`
	Subject   string    `json:"sub"`
	ClientID  string    `json:"client_id"`
	Audience  []string  `json:"aud"`
	Scopes    []string  `json:"scopes"`
	Family    string    `json:"family,omitempty"`
	AuthTime  time.Time `json:"auth_time,omitempty"`
	AMR       []string  `json:"amr,omitempty"`
	ACR       string    `json:"acr,omitempty"`
	SessionID string    `json:"sid,omitempty"`
	IssuedAt  time.Time `json:"iat"`
	Expires   time.Time `json:"exp"`
}

// grantOf extracts what an access token needs from any token request.
func (s *Storage) grantOf(ctx context.Context, req op.TokenRequest) (AccessToken, *Client, error) {
	t := AccessToken{Subject: req.GetSubject(), Audience: req.GetAudience(), Scopes: req.GetScopes()}
	switch r := req.(type) {
	case *AuthRequest:
		t.ClientID, t.AuthTime, t.AMR, t.ACR, t.SessionID = r.ClientID, r.Flow.AuthTime, r.Flow.AMR, r.Flow.ACR, r.Flow.SessionID
	case *RefreshTokenRequest:
		t.ClientID, t.AuthTime, t.AMR, t.ACR, t.SessionID = r.t.ClientID, r.t.AuthTime, r.t.AMR, r.t.ACR, r.t.SessionID
	case *clientCredentialsRequest:
		t.ClientID = r.clientID
	default:
		return t, nil, oidc.ErrUnsupportedGrantType()
	}
	c, err := s.getClient(ctx, t.ClientID)
	if err != nil {
		return t, nil, s.verdict(ctx, err, oidc.ErrInvalidClient())
	}
	return t, &Client{c: c}, nil
}

// issueAccessToken gives t its ID and times, and returns its key and
// record in the ephemeral store.
func (s *Storage) issueAccessToken(t *AccessToken, ttl time.Duration) (key string, record []byte) {
	t.ID = uuid.NewString()
	t.IssuedAt = s.now()
	t.Expires = t.IssuedAt.Add(ttl)
	return keyAccessToken + t.ID, encodeAccessToken(t)
}

func (s *Storage) storeAccessToken(ctx context.Context, t *AccessToken, ttl time.Duration) error {
	key, record := s.issueAccessToken(t, ttl)
	return s.Ephemeral.Put(ctx, key, record, ttl)
}

// errSessionEnded refuses tokens for a browser session that has ended.
func errSessionEnded() error { return oidc.ErrInvalidGrant().WithDescription("the session has ended") }

// putAccessToken stores t and, in the same round trip, reads its browser
// session's end marker (checkSession): ended reports a signed-out session,
// whose access token is refused anyway (accessToken reads the marker).
// Whatever happened before the call is seen: a logout sets its marker
// before it revokes the session's refresh tokens.
func (s *Storage) putAccessToken(ctx context.Context, t *AccessToken, ttl time.Duration) (ended bool, err error) {
	if t.SessionID == "" {
		return false, s.storeAccessToken(ctx, t, ttl)
	}
	key, record := s.issueAccessToken(t, ttl)
	marker, err := s.Ephemeral.PutGet(ctx, key, record, ttl, keyRevokedSession+hashKey(t.SessionID))
	if err != nil {
		return false, fmt.Errorf("store access token: %w", err)
	}
	return marker != nil, nil
}

func (s *Storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	t, client, err := s.grantOf(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	switch ended, err := s.putAccessToken(ctx, &t, client.AccessTokenLifetime()); {
	case err != nil:
		return "", time.Time{}, s.fail(ctx, err)
	case ended:
		return "", time.Time{}, errSessionEnded()
	}
	if a, ok := req.(*AuthRequest); ok && a.codeHash != "" {
		if err := s.recordCodeUse(ctx, a.codeHash, t.ID, ""); err != nil {
			return "", time.Time{}, err
		}
	}
	return t.ID, t.Expires, nil
}

// CreateAccessAndRefreshTokens issues a new family (from a code) or rotates
// the presented refresh token: a token that was already rotated revokes
// its whole family. A rotation is committed only once its access token is
// stored: when the ephemeral store fails, the presented token stays valid
// and the client may try again.
func (s *Storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	t, client, err := s.grantOf(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.now()
	value := randomToken()
	next := store.RefreshToken{
		ID:        uuid.NewString(),
		Hash:      HashToken(value),
		UserID:    t.Subject,
		ClientID:  t.ClientID,
		Scopes:    t.Scopes,
		Audience:  t.Audience,
		AuthTime:  t.AuthTime,
		AMR:       t.AMR,
		ACR:       t.ACR,
		SessionID: t.SessionID,
		CreatedAt: now,
		ExpiresAt: now.Add(client.RefreshTokenLifetime()),
	}
	if rt, ok := req.(*RefreshTokenRequest); ok && current != "" {
		if rt.next != nil && rt.current != nil {
			// A narrowed scope (not marked for a claim, see
			// WithRefreshClaim): the successor has the token's scopes,
			// so the token is given back and rotated below.
			if err := s.unclaim(ctx, rt); err != nil {
				return "", "", time.Time{}, s.fail(ctx, err)
			}
		}
		if rt.next != nil {
			return s.finishClaim(ctx, rt, &t, client)
		}
		next.Family, next.ParentID = rt.t.Family, rt.t.ID
		next.Scopes = rt.scopes()
		// A refresh family never outlives the sign-in's lifetime.
		next.ExpiresAt = rt.t.ExpiresAt
		t.Family, t.Scopes = next.Family, next.Scopes
		// The access token first, then the rotation (one statement, its
		// own transaction): a rotation is never committed without its
		// access token, and an access token whose rotation did not commit
		// is deleted, never handed out. Two round trips in all: no
		// transaction is held open across the ephemeral store.
		if err := s.storeAccessToken(ctx, &t, client.AccessTokenLifetime()); err != nil {
			return "", "", time.Time{}, s.fail(ctx, err)
		}
		err := s.Store.RotateRefreshToken(ctx, rt.t.ID, next)
		if err != nil {
			_ = s.Ephemeral.Delete(ctx, keyAccessToken+t.ID)
		}
		switch {
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			if err := s.refreshReused(ctx, rt.t); err != nil {
				return "", "", time.Time{}, s.fail(ctx, err)
			}
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
		case err != nil:
			return "", "", time.Time{}, s.fail(ctx, err)
		}
		// After the commit: a logout that revoked the session's tokens in
		// the durable store while this one was being written set its
		// marker first (RevokeSession), so it is seen here; one that came
		// before was seen by TokenRequestByRefreshToken (the token was
		// revoked).
		if err := s.checkSession(ctx, next.SessionID); err != nil {
			_ = s.revokeFamily(ctx, next.Family)
			return "", "", time.Time{}, s.fail(ctx, err)
		}
		return t.ID, value, t.Expires, nil
	}
	next.Family = uuid.NewString()
	if err := s.Store.CreateRefreshToken(ctx, next); err != nil {
		return "", "", time.Time{}, s.fail(ctx, err)
	}
	// After storing the token, the access token and the session check in
	// one round trip: a logout that revoked the session's tokens in the
	// durable store while this one was being written set its marker first
	// (RevokeSession), so it is seen here. On any failure the new refresh
	// token, committed but never handed out, ends with its family.
	t.Family = next.Family
	t.Scopes = next.Scopes
	if ended, err := s.putAccessToken(ctx, &t, client.AccessTokenLifetime()); err != nil || ended {
		_ = s.revokeFamily(ctx, next.Family)
		if err != nil {
			return "", "", time.Time{}, s.fail(ctx, err)
		}
		return "", "", time.Time{}, errSessionEnded()
	}
	if a, ok := req.(*AuthRequest); ok && a.codeHash != "" {
		if err := s.recordCodeUse(ctx, a.codeHash, t.ID, next.Family); err != nil {
			return "", "", time.Time{}, err
		}
	}
	return t.ID, value, t.Expires, nil
}

// finishClaim issues the access token of a claimed refresh token (its
// successor is committed): the access token and the session check in one
// round trip, after the claim's commit, so that a logout that missed the
// successor in the durable store is seen (its marker comes first). When
// the ephemeral store fails, the claim is undone and the presented token
// works again; when the session has ended, the family is revoked.
func (s *Storage) finishClaim(ctx context.Context, rt *RefreshTokenRequest, t *AccessToken, client *Client) (string, string, time.Time, error) {
	t.Family, t.Scopes = rt.t.Family, rt.t.Scopes
	value := rt.next.value
	ended, err := s.putAccessToken(ctx, t, client.AccessTokenLifetime())
	switch {
	case err != nil:
		_ = s.Ephemeral.Delete(context.WithoutCancel(ctx), keyAccessToken+t.ID)
		_ = s.unclaim(ctx, rt)
		return "", "", time.Time{}, s.fail(ctx, err)
	case ended:
		_ = s.revokeFamily(ctx, rt.t.Family)
		return "", "", time.Time{}, errSessionEnded()
	}
	return t.ID, value, t.Expires, nil
}

// ReleaseCode gives back a code whose exchange failed because a
// dependency did (the code was taken, nothing was issued from it): it is
// unused again, and the client may retry after the outage. A code that
// came back meanwhile (compromised), or from which tokens were recorded,
// stays as it is; so does one the ephemeral store cannot reach (then the
// browser signs in again).
func (s *Storage) ReleaseCode(ctx context.Context, code string) {
	_, err := s.updateCode(ctx, hashKey(code), func(r *codeRecord) error {
		if r.State != codeUsed || len(r.AccessTokens) > 0 || r.Family != "" {
			return errCodeSpent
		}
		r.State = codeUnused
		return nil
	})
	if err != nil && !errors.Is(err, errCodeSpent) && !errors.Is(err, errNoCode) {
		s.Logger.Warn("release a code after a failed exchange", "err", err)
	}
}

// refreshReused revokes a family whose rotated token came back. An error
// (the revocation or its audit event not written) fails the request.
func (s *Storage) refreshReused(ctx context.Context, t store.RefreshToken) error {
	if err := s.revokeFamily(ctx, t.Family); err != nil {
		return err
	}
	s.Logger.Warn("refresh token reused: family revoked", "client_id", t.ClientID, "user_id", t.UserID)
	return s.audit(ctx, store.AuditEvent{
		Type: "token.refresh_reused", ActorID: t.ClientID, UserID: t.UserID, ClientID: t.ClientID,
		Details: map[string]string{"family": t.Family},
	})
}

// revokeFamily revokes a refresh family in the durable store, then marks
// it in the ephemeral store so that its access tokens are refused. Both
// are attempted; the first failure is returned.
func (s *Storage) revokeFamily(ctx context.Context, family string) error {
	_, err := s.Store.RevokeRefreshFamily(ctx, family, s.now())
	if err != nil {
		s.Logger.Error("revoke refresh family", "err", err)
	}
	if perr := s.Ephemeral.Put(ctx, keyRevokedFamily+family, []byte{1}, revokedFamilyTTL); perr != nil {
		s.Logger.Error("mark refresh family revoked", "err", perr)
		err = cmp.Or(err, perr)
	}
	return err
}

// RefreshTokenRequest is a stored refresh token presented for rotation.
type RefreshTokenRequest struct {
	t       store.RefreshToken
	current []string
	next    *successor // the token was claimed (WithRefreshClaim)
}

// successor is the refresh token a claim stored in place of the presented
// one; its value reaches the client with the access token.
type successor struct {
	id, value string
}

var _ op.RefreshTokenRequest = (*RefreshTokenRequest)(nil)

func (r *RefreshTokenRequest) GetAMR() []string             { return r.t.AMR }
func (r *RefreshTokenRequest) GetAudience() []string        { return r.t.Audience }
func (r *RefreshTokenRequest) GetAuthTime() time.Time       { return r.t.AuthTime }
func (r *RefreshTokenRequest) GetClientID() string          { return r.t.ClientID }
func (r *RefreshTokenRequest) GetScopes() []string          { return r.scopes() }
func (r *RefreshTokenRequest) GetSubject() string           { return r.t.UserID }
func (r *RefreshTokenRequest) SetCurrentScopes(sc []string) { r.current = sc }
func (r *RefreshTokenRequest) scopes() []string {
	if r.current != nil {
		return r.current
	}
	return r.t.Scopes
}

// TokenRequestByRefreshToken loads the presented token, and claims it when
// the request is marked (WithRefreshClaim): one statement then rotates it
// and stores its successor, and CreateAccessAndRefreshTokens has only the
// access token left to store. A token found but not claimed is judged as
// an unmarked one is (revoked, reused, expired); a live one not claimed
// (another client's, or a concurrent claim won) goes on unclaimed:
// zitadel/oidc refuses another client's, and the rotation of the other
// finds the reuse.
func (s *Storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	var (
		t    store.RefreshToken
		next *successor
		err  error
	)
	if m, _ := ctx.Value(clientIDKey{}).(*clientMemo); m != nil && m.claim {
		n := &successor{id: uuid.NewString(), value: randomToken()}
		var claimed bool
		t, claimed, err = s.Store.ClaimRefreshToken(ctx, HashToken(token), m.id, n.id, HashToken(n.value), s.now())
		if claimed {
			next = n
		}
	} else {
		t, err = s.Store.GetRefreshTokenByHash(ctx, HashToken(token))
	}
	if err != nil {
		return nil, s.verdict(ctx, err, oidc.ErrInvalidGrant().WithDescription("invalid refresh token"))
	}
	if next != nil {
		return s.claimedRequest(ctx, t, next)
	}
	switch {
	case !t.RevokedAt.IsZero():
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case !t.RotatedAt.IsZero():
		if err := s.refreshReused(ctx, t); err != nil {
			return nil, s.fail(ctx, err)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case !s.now().Before(t.ExpiresAt):
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	// Through the user cache, as userinfo and introspection: an account
	// disabled through this node is refused at once (ForgetUser), through
	// another within UserTTL.
	if u, err := s.loadUser(ctx, t.UserID); err != nil {
		return nil, s.verdict(ctx, err, oidc.ErrInvalidGrant().WithDescription("the account is not active"))
	} else if u.Status != store.StatusActive {
		return nil, oidc.ErrInvalidGrant().WithDescription("the account is not active")
	}
	return &RefreshTokenRequest{t: t}, nil
}

// claimedRequest checks the account of a claimed token; when it is not
// active, or cannot be loaded, the claim is undone.
func (s *Storage) claimedRequest(ctx context.Context, t store.RefreshToken, next *successor) (op.RefreshTokenRequest, error) {
	rt := &RefreshTokenRequest{t: t, next: next}
	u, err := s.loadUser(ctx, t.UserID)
	switch {
	case err != nil:
		_ = s.unclaim(ctx, rt)
		return nil, s.verdict(ctx, err, oidc.ErrInvalidGrant().WithDescription("the account is not active"))
	case u.Status != store.StatusActive:
		_ = s.unclaim(ctx, rt)
		return nil, oidc.ErrInvalidGrant().WithDescription("the account is not active")
	}
	return rt, nil
}

// unclaim gives the presented refresh token back when its successor will
// not reach the client: the client may present it again. When that fails
// too, the token stays rotated, and presenting it again is a reuse (the
// user signs in again).
func (s *Storage) unclaim(ctx context.Context, rt *RefreshTokenRequest) error {
	err := s.Store.UnclaimRefreshToken(context.WithoutCancel(ctx), rt.t.ID, rt.next.id)
	if err != nil {
		s.Logger.Error("give back a claimed refresh token", "err", err)
	}
	rt.next = nil
	return err
}

// accessToken loads a live access token: not revoked, not expired, not from
// a revoked refresh family or a signed-out session, not issued to a user
// before RevokeUserAccessTokens. The markers are read in one round trip.
func (s *Storage) accessToken(ctx context.Context, id string) (AccessToken, error) {
	var t AccessToken
	if _, err := uuid.Parse(id); err != nil {
		return t, notFound{"access token"}
	}
	b, err := s.Ephemeral.Get(ctx, keyAccessToken+id)
	if err != nil {
		if errors.Is(err, ephemeral.ErrNotFound) {
			return t, notFound{"access token"}
		}
		return t, fmt.Errorf("load access token: %w", err)
	}
	if err := decodeAccessToken(b, &t); err != nil {
		return t, fmt.Errorf("load access token: %w", err)
	}
	if !s.now().Before(t.Expires) {
		return t, notFound{"access token"}
	}
	var markers []string
	if t.Family != "" {
		markers = append(markers, keyRevokedFamily+t.Family)
	}
	if t.SessionID != "" {
		markers = append(markers, keyRevokedSession+hashKey(t.SessionID))
	}
	user := t.Subject != t.ClientID // not a client_credentials token
	if user {
		markers = append(markers, keyRevokedUser+t.Subject)
	}
	if len(markers) == 0 {
		return t, nil
	}
	vals, err := s.Ephemeral.GetMany(ctx, markers...)
	if err != nil {
		return t, fmt.Errorf("check token revocations: %w", err)
	}
	for i, v := range vals {
		if v == nil {
			continue
		}
		if user && i == len(vals)-1 && !revokedBefore(v, t.IssuedAt) {
			continue // the user's marker, older than the token (a sign-in after an enable)
		}
		return t, notFound{"access token"}
	}
	return t, nil
}

// RevokeUserAccessTokens refuses, from now on, every access token issued to
// the user until now, whatever it is bound to (a browser session, a refresh
// family, neither); tokens issued later work. For an account that is
// disabled or closed, so that enabling it again brings none back.
func (s *Storage) RevokeUserAccessTokens(ctx context.Context, userID string) error {
	if userID == "" {
		return nil
	}
	now := s.now()
	err := s.Ephemeral.Update(ctx, keyRevokedUser+userID, revokedUserTTL, func(old []byte) ([]byte, error) {
		if until, err := strconv.ParseInt(string(old), 10, 64); err == nil && until >= now.UnixNano() {
			return old, nil // a later revocation already covers now
		}
		return []byte(strconv.FormatInt(now.UnixNano(), 10)), nil
	})
	if err != nil {
		return fmt.Errorf("revoke the access tokens of %s: %w", userID, err)
	}
	return nil
}

// revokedBefore reports whether a token issued at issued is refused by the
// user marker v: issued at or before the time v holds (or v is damaged:
// refused).
func revokedBefore(v []byte, issued time.Time) bool {
	until, err := strconv.ParseInt(string(v), 10, 64)
	return err != nil || !issued.After(time.Unix(0, until))
}

// RevokeSession ends the tokens of a browser session at logout: every
// refresh token bound to sessionID (the ID token's sid) is revoked in the
// durable store, and every access token of the session is refused from now
// on. Tokens of other sessions are untouched; an empty sessionID revokes
// nothing.
func (s *Storage) RevokeSession(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return nil
	}
	// The marker first: a refresh rotating in the meantime checks it after
	// storing its new token (CreateAccessAndRefreshTokens).
	if err := s.Ephemeral.Put(ctx, keyRevokedSession+hashKey(sessionID), []byte{1}, revokedSessionTTL); err != nil {
		return fmt.Errorf("revoke session tokens: %w", err)
	}
	n, err := s.Store.RevokeRefreshTokensBySession(ctx, sessionID, s.now())
	if err != nil {
		return fmt.Errorf("revoke session tokens: %w", err)
	}
	return s.audit(ctx, store.AuditEvent{Type: "session.tokens_revoked",
		Details: map[string]string{"session_id": sessionID, "refresh_tokens": strconv.FormatInt(n, 10)}})
}

// checkSession refuses tokens of a browser session that signed out
// (invalid_grant), and fails when that cannot be known.
func (s *Storage) checkSession(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return nil
	}
	_, err := s.Ephemeral.Get(ctx, keyRevokedSession+hashKey(sessionID))
	switch {
	case err == nil:
		return errSessionEnded()
	case errors.Is(err, ephemeral.ErrNotFound):
		return nil
	default:
		return fmt.Errorf("check session: %w", err)
	}
}

// TerminateSession is replaced by TerminateSessionFromRequest.
func (s *Storage) TerminateSession(ctx context.Context, userID, clientID string) error { return nil }

// TerminateSessionFromRequest records the logout; the browser session is
// ended by the HTTP handler, which holds the cookie.
func (s *Storage) TerminateSessionFromRequest(ctx context.Context, r *op.EndSessionRequest) (string, error) {
	if err := s.audit(ctx, store.AuditEvent{Type: "session.logout", ActorID: r.UserID, UserID: r.UserID, ClientID: r.ClientID}); err != nil {
		return "", err
	}
	return r.RedirectURI, nil
}

// RevokeToken revokes an access token (by id) or a refresh token (by id
// or value) with its family and the access tokens issued from it (RFC 7009
// §2.1). Unknown tokens count as revoked (§2.2).
func (s *Storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	// A failure is never "unknown, so revoked" (RFC 7009 §2.2): the
	// client must try again.
	oerr := func(err error) *oidc.Error {
		var oe *oidc.Error
		errors.As(s.fail(ctx, err), &oe)
		return oe
	}
	t, err := s.accessToken(ctx, tokenOrID)
	switch {
	case err == nil:
		if t.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		if err := s.Ephemeral.Delete(ctx, keyAccessToken+t.ID); err != nil {
			return oerr(err)
		}
		if err := s.audit(ctx, store.AuditEvent{Type: "token.revoked", ActorID: clientID, UserID: t.Subject, ClientID: clientID}); err != nil {
			return oerr(err)
		}
		return nil
	case IsUnavailable(err):
		return oerr(err)
	}
	rt, err := s.Store.GetRefreshToken(ctx, tokenOrID)
	if errors.Is(err, store.ErrNotFound) {
		rt, err = s.Store.GetRefreshTokenByHash(ctx, HashToken(tokenOrID))
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return oerr(err)
	case rt.ClientID != clientID:
		return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
	}
	if err := s.revokeFamily(ctx, rt.Family); err != nil {
		return oerr(err)
	}
	if err := s.audit(ctx, store.AuditEvent{Type: "token.revoked", ActorID: clientID, UserID: rt.UserID, ClientID: clientID,
		Details: map[string]string{"family": rt.Family}}); err != nil {
		return oerr(err)
	}
	return nil
}

func (s *Storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := s.Store.GetRefreshTokenByHash(ctx, HashToken(token))
	if err != nil {
		return "", "", s.verdict(ctx, err, op.ErrInvalidRefreshToken)
	}
	return t.UserID, t.ID, nil
}

// ---- keys ----

type clientIDKey struct{}

// clientMemo keeps the client of one request: zitadel/oidc and the
// storage ask for it several times per token request.
type clientMemo struct {
	id     string
	client *store.Client
	claim  bool // WithRefreshClaim
}

// WithClientID marks a token request's context with the client it is for:
// its tokens are signed with the client's algorithm, and the client is
// loaded once for the request.
func WithClientID(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, clientIDKey{}, &clientMemo{id: clientID})
}

// WithRefreshClaim marks a refresh_token grant's context as WithClientID
// does, and lets TokenRequestByRefreshToken claim the presented token for
// clientID (rotate it and store its successor in one statement,
// store.ClaimRefreshToken). zitadel/oidc calls TokenRequestByRefreshToken
// once clientID is authenticated, then refuses the grant only when the
// token is another client's (a claim needs the token's client) or when a
// scope asked for was not granted: mark only grants that ask for no scope.
// Unmarked, the token is read, then rotated by CreateAccessAndRefreshTokens.
func WithRefreshClaim(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, clientIDKey{}, &clientMemo{id: clientID, claim: true})
}

// getClient loads a client, once per request when the request is marked.
func (s *Storage) getClient(ctx context.Context, id string) (store.Client, error) {
	m, _ := ctx.Value(clientIDKey{}).(*clientMemo)
	if m != nil && m.id == id && m.client != nil {
		return *m.client, nil
	}
	c, err := s.loadClient(ctx, id)
	if err == nil && m != nil && m.id == id {
		m.client = &c
	}
	return c, err
}

// SigningKey is RS256 unless the requesting client asked for ES256 (and the
// deployment has ES256 keys).
func (s *Storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	if m, _ := ctx.Value(clientIDKey{}).(*clientMemo); m != nil {
		if c, err := s.getClient(ctx, m.id); err == nil && c.IDTokenAlg == "ES256" {
			if k, err := s.Keys.SigningKey("ES256"); err == nil {
				return k, nil
			}
		}
	}
	return s.Keys.SigningKey("RS256")
}

func (s *Storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.Keys.Algorithms(), nil
}

func (s *Storage) KeySet(ctx context.Context) ([]op.Key, error) {
	return s.Keys.PublicKeys(), nil
}

// ---- clients ----

func (s *Storage) client(ctx context.Context, id string) (*Client, error) {
	c, err := s.getClient(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
		}
		return nil, s.fail(ctx, err)
	}
	return &Client{c: c, loginURL: s.LoginURL}, nil
}

func (s *Storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	return s.client(ctx, id)
}

func (s *Storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.getClient(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return oidc.ErrInvalidClient().WithDescription("invalid client credentials")
		}
		return s.fail(ctx, err)
	}
	if !checkSecret(c, secret) {
		return oidc.ErrInvalidClient().WithDescription("invalid client credentials")
	}
	return nil
}

func (s *Storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return nil, err
	}
	return s.client(ctx, id)
}

type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// ClientCredentialsTokenRequest keeps only the scopes registered for the
// client; an unregistered scope is refused.
func (s *Storage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(c.c.GrantTypes, string(oidc.GrantTypeClientCredentials)) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("client_credentials is not allowed for this client")
	}
	for _, sc := range scopes {
		if !c.IsScopeAllowed(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope not allowed for this client")
		}
	}
	return &clientCredentialsRequest{clientID: clientID, scopes: scopes}, nil
}

// ---- misc ----

func (s *Storage) Health(ctx context.Context) error { return s.Store.Ping(ctx) }

func (s *Storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
}

func (s *Storage) ValidateJWTProfileScopes(ctx context.Context, userID string, scopes []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// ---- bearer tokens ----

// TokenVerifier is what VerifyAccessToken needs of the provider
// (op.OpenIDProvider is one): the key opaque tokens are encrypted with,
// and the verifier of JWT access tokens.
type TokenVerifier interface {
	Crypto() op.Crypto
	AccessTokenVerifier(ctx context.Context) *op.AccessTokenVerifier
}

// VerifyAccessToken returns the live access token a bearer value stands
// for, read as the userinfo endpoint reads it: an opaque token decrypts
// to "id:subject", a JWT is verified against the provider's keys and
// names the token by its jti. Either way the token must still be stored
// (not revoked, not expired, not of a revoked family or signed-out
// session) for the same subject; any other value is an error. ctx must
// carry the issuer (op.ContextWithIssuer) for JWTs.
func (s *Storage) VerifyAccessToken(ctx context.Context, p TokenVerifier, raw string) (AccessToken, error) {
	if raw == "" || len(raw) > 8<<10 {
		return AccessToken{}, notFound{"access token"}
	}
	var id, subject string
	if plain, err := p.Crypto().Decrypt(raw); err == nil {
		var ok bool
		id, subject, ok = strings.Cut(plain, ":")
		if !ok || strings.Contains(subject, ":") {
			return AccessToken{}, notFound{"access token"}
		}
	} else {
		claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, raw, p.AccessTokenVerifier(ctx))
		if err != nil {
			return AccessToken{}, notFound{"access token"}
		}
		id, subject = claims.JWTID, claims.Subject
	}
	t, err := s.accessToken(ctx, id)
	if err != nil || t.Subject != subject {
		return AccessToken{}, notFound{"access token"}
	}
	return t, nil
}
