package users

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
)

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// KnownGrants are the grant types a client may be registered for.
var KnownGrants = []string{"authorization_code", "refresh_token", "client_credentials"}

// KnownScopes are the scopes a client may be registered for.
var KnownScopes = []string{"openid", "profile", "email", "offline_access",
	oidcstore.ScopeInstitutions, oidcstore.ScopeAdmin, oidcstore.ScopeRequests}

// Defaults of NewClient's empty fields.
var (
	DefaultGrants = []string{"authorization_code", "refresh_token"}
	DefaultScopes = []string{"openid", "profile", "email", "offline_access"}
)

// NewClient is a relying party to register. Empty fields take the
// defaults: grants DefaultGrants, scopes DefaultScopes, auth method
// client_secret_basic, token format opaque, signing algorithm RS256.
type NewClient struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`   // shown on the sign-in page
	Public         bool     `json:"public"` // no secret, PKCE required, auth method none
	RedirectURIs   []string `json:"redirect_uris"`
	PostLogoutURIs []string `json:"post_logout_uris"`
	GrantTypes     []string `json:"grant_types"`
	Scopes         []string `json:"scopes"`
	PKCE           bool     `json:"pkce"`         // require PKCE from a confidential client too
	AuthMethod     string   `json:"auth_method"`  // client_secret_basic | client_secret_post
	TokenFormat    string   `json:"token_format"` // opaque | jwt
	SigningAlg     string   `json:"signing_alg"`  // RS256 | ES256
}

func (c NewClient) withDefaults() NewClient {
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = slices.Clone(DefaultGrants)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if c.AuthMethod == "" {
		c.AuthMethod = "client_secret_basic"
	}
	if c.TokenFormat == "" {
		c.TokenFormat = "opaque"
	}
	if c.SigningAlg == "" {
		c.SigningAlg = "RS256"
	}
	return c
}

// Validate applies the client policy and returns the first problem as an
// *InputError: a well-formed id, known grants (client_credentials only
// for a confidential client), redirect URIs for the authorization_code
// grant, absolute redirect and post-logout URIs without fragment over
// https (http only on loopback), known scopes (sesame:admin only for a
// confidential client: the management API's administrator scope is never
// given to a client that cannot authenticate), and a known token format,
// signing algorithm and authentication method.
func (c NewClient) Validate() error {
	c = c.withDefaults()
	if err := checkTexts(text("id", 64, c.ID), text("name", 128, c.Name),
		text("redirect_uris", 2048, c.RedirectURIs...), text("post_logout_uris", 2048, c.PostLogoutURIs...),
		text("grant_types", 64, c.GrantTypes...), text("scopes", 128, c.Scopes...),
		text("auth_method", 64, c.AuthMethod), text("token_format", 64, c.TokenFormat),
		text("signing_alg", 64, c.SigningAlg)); err != nil {
		return err
	}
	if !clientIDRE.MatchString(c.ID) {
		return inputErr("id", fmt.Sprintf("%q must be 1 to 64 letters, digits or . _ -", c.ID))
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(KnownGrants, g) {
			return inputErr("grant_types", fmt.Sprintf("%q is not one of %s", g, strings.Join(KnownGrants, ", ")))
		}
	}
	for _, sc := range c.Scopes {
		if !slices.Contains(KnownScopes, sc) {
			return inputErr("scopes", fmt.Sprintf("%q is not one of %s", sc, strings.Join(KnownScopes, ", ")))
		}
	}
	if c.Public && slices.Contains(c.Scopes, oidcstore.ScopeAdmin) {
		return inputErr("scopes", "a public client cannot have sesame:admin")
	}
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		return inputErr("grant_types", "a public client cannot use client_credentials")
	}
	if slices.Contains(c.GrantTypes, "authorization_code") && len(c.RedirectURIs) == 0 {
		return inputErr("redirect_uris", "required for the authorization_code grant")
	}
	for _, r := range c.RedirectURIs {
		if err := CheckRedirectURI("redirect_uris", r); err != nil {
			return err
		}
	}
	for _, r := range c.PostLogoutURIs {
		if err := CheckRedirectURI("post_logout_uris", r); err != nil {
			return err
		}
	}
	if c.TokenFormat != "opaque" && c.TokenFormat != "jwt" {
		return inputErr("token_format", fmt.Sprintf("%q must be opaque or jwt", c.TokenFormat))
	}
	if c.SigningAlg != "RS256" && c.SigningAlg != "ES256" {
		return inputErr("signing_alg", fmt.Sprintf("%q must be RS256 or ES256", c.SigningAlg))
	}
	if c.AuthMethod != "client_secret_basic" && c.AuthMethod != "client_secret_post" {
		return inputErr("auth_method", fmt.Sprintf("%q must be client_secret_basic or client_secret_post", c.AuthMethod))
	}
	return nil
}

// CheckRedirectURI: absolute, no fragment, https, or http on loopback.
// field names the input in the *InputError.
func CheckRedirectURI(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		return inputErr(field, fmt.Sprintf("%q must be an absolute URL without fragment", raw))
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return inputErr(field, fmt.Sprintf("%q must use https (http only on localhost)", raw))
		}
	default:
		return inputErr(field, fmt.Sprintf("%q must use https", raw))
	}
	return nil
}

// newClientSecret is a 256-bit random secret.
func newClientSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CreateClient validates and registers a client, with a "client.created"
// event, and returns it with its secret (empty for a public client): the
// secret is stored hashed and cannot be shown again. A bad field is an
// *InputError, a taken id an *InputError wrapping store.ErrConflict.
func (s *Service) CreateClient(ctx context.Context, in NewClient, by store.AuditEvent) (store.Client, string, error) {
	if err := in.Validate(); err != nil {
		return store.Client{}, "", err
	}
	in = in.withDefaults()
	now := s.now()
	c := store.Client{
		ID: in.ID, Name: in.Name, Public: in.Public, RedirectURIs: in.RedirectURIs, PostLogoutURIs: in.PostLogoutURIs,
		GrantTypes: in.GrantTypes, Scopes: in.Scopes, AuthMethod: in.AuthMethod, PKCERequired: in.Public || in.PKCE,
		TokenFormat: in.TokenFormat, IDTokenAlg: in.SigningAlg, CreatedAt: now, UpdatedAt: now,
	}
	secret := ""
	if in.Public {
		c.AuthMethod = "none"
	} else {
		secret = newClientSecret()
		c.SecretHash = oidcstore.HashSecret(secret)
	}
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateClient(ctx, c); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return &InputError{Field: "id", Message: fmt.Sprintf("%q is already taken", c.ID), Err: store.ErrConflict}
			}
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withClient(by, c.ID), "client.created", nil))
	})
	if err != nil {
		return store.Client{}, "", err
	}
	return c, secret, nil
}

func withClient(e store.AuditEvent, clientID string) store.AuditEvent {
	e.ClientID = clientID
	return e
}

// ListClients returns every registered client.
func (s *Service) ListClients(ctx context.Context) ([]store.Client, error) {
	return s.Store.ListClients(ctx)
}

// DeleteClient removes a client, with a "client.deleted" event;
// store.ErrNotFound (wrapped) when there is none.
func (s *Service) DeleteClient(ctx context.Context, id string, by store.AuditEvent) error {
	if err := CheckText("id", id, 64); err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.DeleteClient(ctx, id); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withClient(by, id), "client.deleted", nil))
	})
}

// RotateClientSecret gives a confidential client a new secret, with a
// "client.secret_rotated" event, and returns it (shown once: it is stored
// hashed). The old secret stops working at once. ErrPublicClient for a
// public client, store.ErrNotFound (wrapped) when there is none.
func (s *Service) RotateClientSecret(ctx context.Context, id string, by store.AuditEvent) (string, error) {
	if err := CheckText("id", id, 64); err != nil {
		return "", err
	}
	secret := newClientSecret()
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetClient(ctx, id)
		if err != nil {
			return err
		}
		if c.Public {
			return ErrPublicClient
		}
		c.SecretHash, c.UpdatedAt = oidcstore.HashSecret(secret), s.now()
		if err := tx.UpdateClient(ctx, c); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withClient(by, id), "client.secret_rotated", nil))
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// PageClient is the registration of one of Sésame's own page clients
// (the Security page, the request pages): a public PKCE client whose only
// redirect is redirectURI, asking for openid. Its code is never
// exchanged: the pages use the browser session.
func PageClient(id, redirectURI string, now time.Time) store.Client {
	return store.Client{
		ID: id, Name: "Sésame", Public: true, AuthMethod: "none", PKCERequired: true,
		RedirectURIs: []string{redirectURI},
		GrantTypes:   []string{"authorization_code"},
		Scopes:       []string{"openid"},
		TokenFormat:  "opaque", IDTokenAlg: "RS256",
		CreatedAt: now, UpdatedAt: now,
	}
}
