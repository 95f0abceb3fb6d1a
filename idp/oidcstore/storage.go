package oidcstore

import (
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
	// issued if it comes back.
	codeUseTTL = time.Hour
	// revokedFamilyTTL: an access token issued from a revoked refresh family
	// is refused for this long (longer than any access token lives).
	revokedFamilyTTL = 24 * time.Hour
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
	// Audit records an event; it must not fail the request.
	Audit func(ctx context.Context, e store.AuditEvent)
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
	keyCodeUse       = "codeuse:"
	keyCodeReplay    = "codereplay:"
	keyAccessToken   = "at:"
	keyRevokedFamily = "revfam:"
)

func (s *Storage) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Storage) audit(ctx context.Context, e store.AuditEvent) {
	if s.Audit != nil {
		if e.At.IsZero() {
			e.At = s.now()
		}
		s.Audit(ctx, e)
	}
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
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown client")
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
	if err := s.putJSON(ctx, keyAuthRequest+a.ID, a, AuthRequestTTL); err != nil {
		return nil, fmt.Errorf("save auth request: %w", err)
	}
	return a, nil
}

// AuthRequest loads an auth request with its flow state.
func (s *Storage) AuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, notFound{"auth request"}
	}
	var a AuthRequest
	if err := s.getJSON(ctx, keyAuthRequest+id, &a); err != nil {
		if errors.Is(err, ephemeral.ErrNotFound) {
			return nil, notFound{"auth request"}
		}
		return nil, err
	}
	return &a, nil
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

func (s *Storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.AuthRequest(ctx, id)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("the sign-in request is unknown or expired")
	}
	return a, nil
}

// SaveAuthCode stores the code of a finished auth request. One code per
// auth request: a replayed callback gets none.
func (s *Storage) SaveAuthCode(ctx context.Context, id, code string) error {
	a, err := s.AuthRequest(ctx, id)
	if err != nil || !a.Done() {
		return oidc.ErrInvalidRequest().WithDescription("the sign-in is not finished")
	}
	if err := s.Ephemeral.PutNew(ctx, keyCodeIssued+id, []byte{1}, AuthRequestTTL); err != nil {
		if errors.Is(err, ephemeral.ErrExists) {
			return oidc.ErrInvalidRequest().WithDescription("a code was already issued for this sign-in")
		}
		return err
	}
	return s.Ephemeral.Put(ctx, keyCode+hashKey(code), []byte(id), CodeTTL)
}

// codeUse remembers what a code issued, to revoke it on replay.
type codeUse struct {
	AccessTokens []string `json:"access_tokens,omitempty"`
	Family       string   `json:"family,omitempty"`
}

// AuthRequestByCode takes the code atomically: of two exchanges of one
// code, one gets the request; the other gets invalid_grant and revokes what
// the first one was issued.
func (s *Storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	h := hashKey(code)
	id, err := s.Ephemeral.Take(ctx, keyCode+h)
	if errors.Is(err, ephemeral.ErrNotFound) {
		s.codeReplayed(ctx, h)
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	if err != nil {
		return nil, err
	}
	a, err := s.AuthRequest(ctx, string(id))
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	a.codeHash = h
	if err := s.putJSON(ctx, keyCodeUse+h, codeUse{}, codeUseTTL); err != nil {
		return nil, err
	}
	return a, nil
}

// codeReplayed handles a code that is not (or no longer) valid: if it was
// used, what it issued is revoked.
func (s *Storage) codeReplayed(ctx context.Context, h string) {
	var use codeUse
	if err := s.getJSON(ctx, keyCodeUse+h, &use); err != nil {
		return // unknown or expired code: nothing was issued
	}
	_ = s.Ephemeral.Put(ctx, keyCodeReplay+h, []byte{1}, codeUseTTL)
	s.revokeCodeUse(ctx, h, use)
	s.Logger.Warn("authorization code replayed: its tokens are revoked")
	s.audit(ctx, store.AuditEvent{Type: "token.code_replayed"})
}

func (s *Storage) revokeCodeUse(ctx context.Context, h string, use codeUse) {
	for _, id := range use.AccessTokens {
		_ = s.Ephemeral.Delete(ctx, keyAccessToken+id)
	}
	if use.Family != "" {
		s.revokeFamily(ctx, use.Family)
	}
}

// recordCodeUse adds what a code issued to its record; if the code was
// replayed meanwhile, everything is revoked and the exchange fails.
func (s *Storage) recordCodeUse(ctx context.Context, h, accessTokenID, family string) error {
	var use codeUse
	_ = s.getJSON(ctx, keyCodeUse+h, &use)
	use.AccessTokens = append(use.AccessTokens, accessTokenID)
	if family != "" {
		use.Family = family
	}
	if err := s.putJSON(ctx, keyCodeUse+h, use, codeUseTTL); err != nil {
		return err
	}
	if _, err := s.Ephemeral.Get(ctx, keyCodeReplay+h); err == nil {
		s.revokeCodeUse(ctx, h, use)
		return oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	return nil
}

func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.Ephemeral.Delete(ctx, keyAuthRequest+id)
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
		return t, nil, oidc.ErrInvalidClient()
	}
	return t, &Client{c: c}, nil
}

func (s *Storage) storeAccessToken(ctx context.Context, t *AccessToken, ttl time.Duration) error {
	t.ID = uuid.NewString()
	t.IssuedAt = s.now()
	t.Expires = t.IssuedAt.Add(ttl)
	return s.putJSON(ctx, keyAccessToken+t.ID, t, ttl)
}

func (s *Storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	t, client, err := s.grantOf(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := s.storeAccessToken(ctx, &t, client.AccessTokenLifetime()); err != nil {
		return "", time.Time{}, err
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
// its whole family.
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
		next.Family, next.ParentID = rt.t.Family, rt.t.ID
		next.Scopes = rt.scopes()
		// A refresh family never outlives the sign-in's lifetime.
		next.ExpiresAt = rt.t.ExpiresAt
		if err := s.Store.RotateRefreshToken(ctx, rt.t.ID, next); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				s.refreshReused(ctx, rt.t)
				return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
			}
			return "", "", time.Time{}, err
		}
	} else {
		next.Family = uuid.NewString()
		if err := s.Store.CreateRefreshToken(ctx, next); err != nil {
			return "", "", time.Time{}, err
		}
	}
	t.Family = next.Family
	t.Scopes = next.Scopes
	if err := s.storeAccessToken(ctx, &t, client.AccessTokenLifetime()); err != nil {
		return "", "", time.Time{}, err
	}
	if a, ok := req.(*AuthRequest); ok && a.codeHash != "" {
		if err := s.recordCodeUse(ctx, a.codeHash, t.ID, next.Family); err != nil {
			return "", "", time.Time{}, err
		}
	}
	return t.ID, value, t.Expires, nil
}

// refreshReused revokes a family whose rotated token came back.
func (s *Storage) refreshReused(ctx context.Context, t store.RefreshToken) {
	s.revokeFamily(ctx, t.Family)
	s.Logger.Warn("refresh token reused: family revoked", "client_id", t.ClientID, "user_id", t.UserID)
	s.audit(ctx, store.AuditEvent{
		Type: "token.refresh_reused", ActorID: t.ClientID, UserID: t.UserID, ClientID: t.ClientID,
		Details: map[string]string{"family": t.Family},
	})
}

func (s *Storage) revokeFamily(ctx context.Context, family string) {
	if _, err := s.Store.RevokeRefreshFamily(ctx, family, s.now()); err != nil {
		s.Logger.Error("revoke refresh family", "err", err)
	}
	_ = s.Ephemeral.Put(ctx, keyRevokedFamily+family, []byte{1}, revokedFamilyTTL)
}

// RefreshTokenRequest is a stored refresh token presented for rotation.
type RefreshTokenRequest struct {
	t       store.RefreshToken
	current []string
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

func (s *Storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	t, err := s.Store.GetRefreshTokenByHash(ctx, HashToken(token))
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	switch {
	case !t.RevokedAt.IsZero():
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case !t.RotatedAt.IsZero():
		s.refreshReused(ctx, t)
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case !s.now().Before(t.ExpiresAt):
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	if u, err := s.Store.GetUser(ctx, t.UserID); err != nil || u.Status != store.StatusActive {
		return nil, oidc.ErrInvalidGrant().WithDescription("the account is not active")
	}
	return &RefreshTokenRequest{t: t}, nil
}

// accessToken loads a live access token: not revoked, not expired, not from
// a revoked refresh family.
func (s *Storage) accessToken(ctx context.Context, id string) (AccessToken, error) {
	var t AccessToken
	if _, err := uuid.Parse(id); err != nil {
		return t, notFound{"access token"}
	}
	if err := s.getJSON(ctx, keyAccessToken+id, &t); err != nil {
		return t, notFound{"access token"}
	}
	if !s.now().Before(t.Expires) {
		return t, notFound{"access token"}
	}
	if t.Family != "" {
		if _, err := s.Ephemeral.Get(ctx, keyRevokedFamily+t.Family); err == nil {
			return t, notFound{"access token"}
		}
	}
	return t, nil
}

// TerminateSession is replaced by TerminateSessionFromRequest.
func (s *Storage) TerminateSession(ctx context.Context, userID, clientID string) error { return nil }

// TerminateSessionFromRequest records the logout; the browser session is
// ended by the HTTP handler, which holds the cookie.
func (s *Storage) TerminateSessionFromRequest(ctx context.Context, r *op.EndSessionRequest) (string, error) {
	s.audit(ctx, store.AuditEvent{Type: "session.logout", ActorID: r.UserID, UserID: r.UserID, ClientID: r.ClientID})
	return r.RedirectURI, nil
}

// RevokeToken revokes an access token (by id) or a refresh token (by id
// or value) with its family and the access tokens issued from it (RFC 7009
// §2.1). Unknown tokens count as revoked (§2.2).
func (s *Storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if t, err := s.accessToken(ctx, tokenOrID); err == nil {
		if t.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		if err := s.Ephemeral.Delete(ctx, keyAccessToken+t.ID); err != nil {
			return oidc.ErrServerError()
		}
		s.audit(ctx, store.AuditEvent{Type: "token.revoked", ActorID: clientID, UserID: t.Subject, ClientID: clientID})
		return nil
	}
	t, err := s.Store.GetRefreshToken(ctx, tokenOrID)
	if err != nil {
		if t, err = s.Store.GetRefreshTokenByHash(ctx, HashToken(tokenOrID)); err != nil {
			return nil
		}
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
	}
	s.revokeFamily(ctx, t.Family)
	s.audit(ctx, store.AuditEvent{Type: "token.revoked", ActorID: clientID, UserID: t.UserID, ClientID: clientID,
		Details: map[string]string{"family": t.Family}})
	return nil
}

func (s *Storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := s.Store.GetRefreshTokenByHash(ctx, HashToken(token))
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
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
}

// WithClientID marks a token request's context with the client it is for:
// its tokens are signed with the client's algorithm, and the client is
// loaded once for the request.
func WithClientID(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, clientIDKey{}, &clientMemo{id: clientID})
}

// getClient loads a client, once per request when the request is marked.
func (s *Storage) getClient(ctx context.Context, id string) (store.Client, error) {
	m, _ := ctx.Value(clientIDKey{}).(*clientMemo)
	if m != nil && m.id == id && m.client != nil {
		return *m.client, nil
	}
	c, err := s.Store.GetClient(ctx, id)
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
		return nil, oidc.ErrServerError().WithParent(err)
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
		return oidc.ErrServerError().WithParent(err)
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
