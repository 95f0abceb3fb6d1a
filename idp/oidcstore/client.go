package oidcstore

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/store"
)

// Scopes Sésame knows besides the standard ones.
const (
	ScopeInstitutions = "sesame:institutions"
	ScopeAdmin        = "sesame:admin"
	// ScopeRequests: a requester's token for the account-request calls of
	// the management API.
	ScopeRequests = "sesame:requests"
)

// Default lifetimes, used when a client does not set its own.
const (
	DefaultAccessTokenTTL  = 10 * time.Minute
	DefaultIDTokenTTL      = 10 * time.Minute
	DefaultRefreshTokenTTL = 12 * time.Hour
	// MaxAccessTokenTTL caps a client's access-token lifetime: the markers
	// that revoke access tokens (of a refresh family, of a signed-out
	// session) must outlive every access token.
	MaxAccessTokenTTL = 12 * time.Hour
)

// Client adapts a store.Client to op.Client.
type Client struct {
	c        store.Client
	loginURL func(id string) string
}

var _ op.Client = (*Client)(nil)

func (c *Client) GetID() string                    { return c.c.ID }
func (c *Client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *Client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutURIs }
func (c *Client) ApplicationType() op.ApplicationType {
	// Public clients are apps that cannot keep a secret: RFC 8252 rules
	// (loopback redirects on any port, https, custom schemes).
	if c.c.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *Client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	switch c.c.AuthMethod {
	case "client_secret_post":
		return oidc.AuthMethodPost
	default:
		return oidc.AuthMethodBasic
	}
}

func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *Client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c *Client) LoginURL(id string) string { return c.loginURL(id) }

func (c *Client) AccessTokenType() op.AccessTokenType {
	if c.c.TokenFormat == "jwt" {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (c *Client) IDTokenLifetime() time.Duration {
	if c.c.IDTokenTTL > 0 {
		return c.c.IDTokenTTL
	}
	return DefaultIDTokenTTL
}

func (c *Client) AccessTokenLifetime() time.Duration {
	if c.c.AccessTokenTTL > 0 {
		return min(c.c.AccessTokenTTL, MaxAccessTokenTTL)
	}
	return DefaultAccessTokenTTL
}

func (c *Client) RefreshTokenLifetime() time.Duration {
	if c.c.RefreshTokenTTL > 0 {
		return c.c.RefreshTokenTTL
	}
	return DefaultRefreshTokenTTL
}

func (c *Client) DevMode() bool { return false }

func (c *Client) RestrictAdditionalIdTokenScopes() func(scopes []string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *Client) RestrictAdditionalAccessTokenScopes() func(scopes []string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed is asked for scopes beyond the standard OIDC ones.
func (c *Client) IsScopeAllowed(scope string) bool { return slices.Contains(c.c.Scopes, scope) }

// IDTokenUserinfoClaimsAssertion: when an access token is issued, the
// profile and email claims are given at userinfo, not in the ID token
// (OIDC Core §5.4), unless the claims parameter asks for them there.
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return false }

func (c *Client) ClockSkew() time.Duration { return 0 }

// PKCERequired: public clients always, confidential clients when
// registered so.
func (c *Client) PKCERequired() bool { return c.c.Public || c.c.PKCERequired }

// HashSecret is how client secrets are stored: they are 256-bit random
// values, so a plain SHA-256 is enough (no password stretching needed).
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// checkSecret compares in constant time.
func checkSecret(c store.Client, secret string) bool {
	if c.Public || c.SecretHash == "" || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(c.SecretHash)) == 1
}
