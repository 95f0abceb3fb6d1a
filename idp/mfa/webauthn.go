package mfa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/store"
)

// Passkeys and security keys (issue 10), as a second factor after the
// password. The relying party is the issuer: its host is the RP ID, its
// scheme and host the only origin. User verification is preferred,
// attestation "none", resident keys allowed, the user's keys excluded at
// registration. A ceremony's session data stays server-side in the
// ephemeral store, under a key hashed from the user and the challenge, and
// is consumed by its answer (a replayed answer finds nothing). The sign
// count is kept in the durable store; a regression is refused.
//
// Passkey-only sign-in later: the user handle is the user id, so that a
// discoverable assertion names its user (BeginDiscoverableLogin); not
// enabled.

// WebAuthnCeremonyTTL is how long a ceremony's challenge lives.
const WebAuthnCeremonyTTL = 5 * time.Minute

// ErrSignCount: the authenticator's signature counter did not grow, a sign
// of a cloned key. It is an ErrCodeInvalid; the caller audits it.
var ErrSignCount = fmt.Errorf("%w: webauthn sign count regressed", ErrCodeInvalid)

// ErrNoWebAuthn: the user has no verified passkey or security key.
var ErrNoWebAuthn = errors.New("mfa: no webauthn credential")

// Ceremony purposes: a session begun for one never serves the other.
const (
	ceremonyLogin    = "login"
	ceremonyRegister = "register"
)

// WebAuthnData is a credential's Data (store.Credential type webauthn):
// the library's record (id, public key, sign count, AAGUID, transports,
// backup flags). The sign count lives in the durable store.
type WebAuthnData struct {
	Credential webauthn.Credential `json:"credential"`
}

// WebAuthn is the passkey and security-key factor.
type WebAuthn struct {
	Store     store.Store
	Ephemeral ephemeral.Store
	// Issuer is the issuer URL: its host is the RP ID, its origin the only
	// origin accepted. Empty: the factor is off.
	Issuer string
	// RPName is shown by the browser ("Sésame" when empty).
	RPName string
}

var _ Factor = WebAuthn{}

func (WebAuthn) Method() string { return string(store.CredWebAuthn) }

// AMR is hwk; a synced passkey (backup eligible) gives swk: see MethodOf.
func (WebAuthn) AMR() flow.Method { return flow.HWK }

// MethodOf is the amr of a sign-in with c: swk for a passkey that can be
// synced (backup eligible), hwk for a key bound to its device.
func (WebAuthn) MethodOf(c store.Credential) flow.Method {
	d, err := decodeWebAuthn(c)
	if err == nil && d.Credential.Flags.BackupEligible {
		return flow.SWK
	}
	return flow.HWK
}

func decodeWebAuthn(c store.Credential) (WebAuthnData, error) {
	var d WebAuthnData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return WebAuthnData{}, fmt.Errorf("webauthn credential %s: %w", c.ID, err)
	}
	return d, nil
}

// RP returns the relying party's configuration from the issuer.
func (f WebAuthn) RP() (*webauthn.WebAuthn, error) {
	u, err := url.Parse(f.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("webauthn: issuer %q is not an http(s) URL", f.Issuer)
	}
	name := f.RPName
	if name == "" {
		name = "Sésame"
	}
	return webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: name,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
	})
}

// waUser is a user as the library sees it.
type waUser struct {
	u     store.User
	creds []webauthn.Credential
}

func (w waUser) WebAuthnID() []byte   { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string { return w.u.Username }
func (w waUser) WebAuthnDisplayName() string {
	if n := w.u.GivenName; n != "" {
		return n
	}
	return w.u.Username
}
func (w waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// Credentials are u's verified webauthn credentials, with their records.
func (f WebAuthn) Credentials(ctx context.Context, userID string) ([]store.Credential, []webauthn.Credential, error) {
	all, err := f.Store.ListCredentials(ctx, userID, store.CredWebAuthn)
	if err != nil {
		return nil, nil, err
	}
	var creds []store.Credential
	var recs []webauthn.Credential
	for _, c := range all {
		if c.VerifiedAt.IsZero() {
			continue
		}
		d, err := decodeWebAuthn(c)
		if err != nil {
			continue // unreadable: not usable
		}
		creds, recs = append(creds, c), append(recs, d.Credential)
	}
	return creds, recs, nil
}

// On reports whether the issuer can be a relying party: an http(s) URL
// whose host is a domain name (browsers refuse IP addresses as RP IDs).
func (f WebAuthn) On() bool {
	_, err := f.RP()
	return err == nil
}

// Enrolled: a verified passkey or security key (and the factor is on).
func (f WebAuthn) Enrolled(ctx context.Context, u store.User) (bool, error) {
	if !f.On() {
		return false, nil
	}
	creds, _, err := f.Credentials(ctx, u.ID)
	return len(creds) > 0, err
}

// ceremonyKey names a ceremony's session: no user id or challenge in clear.
func ceremonyKey(purpose, userID, challenge string) string {
	return hashName("webauthn:", purpose, userID, challenge)
}

// ceremony is a session as the ephemeral store keeps it.
type ceremony struct {
	Session webauthn.SessionData `json:"session"`
	Expires time.Time            `json:"expires"`
}

func (f WebAuthn) keep(ctx context.Context, purpose, userID string, s *webauthn.SessionData, now time.Time) error {
	b, err := json.Marshal(ceremony{Session: *s, Expires: now.Add(WebAuthnCeremonyTTL)})
	if err != nil {
		return err
	}
	return f.Ephemeral.Put(ctx, ceremonyKey(purpose, userID, s.Challenge), b, WebAuthnCeremonyTTL)
}

// take consumes the session of the challenge the answer carries: of two
// answers to one challenge, one finds it. ErrCodeExpired when there is
// none (never begun, expired, used).
func (f WebAuthn) take(ctx context.Context, purpose, userID, challenge string, now time.Time) (webauthn.SessionData, error) {
	if challenge == "" {
		return webauthn.SessionData{}, ErrCodeExpired
	}
	b, err := f.Ephemeral.Take(ctx, ceremonyKey(purpose, userID, challenge))
	if errors.Is(err, ephemeral.ErrNotFound) {
		return webauthn.SessionData{}, ErrCodeExpired
	}
	if err != nil {
		return webauthn.SessionData{}, err
	}
	var c ceremony
	if json.Unmarshal(b, &c) != nil || !now.Before(c.Expires) {
		return webauthn.SessionData{}, ErrCodeExpired
	}
	s := c.Session
	s.Expires = time.Time{} // our clock decided above, not the library's
	return s, nil
}

// Begin returns the request options (JSON, for navigator.credentials.get)
// for u's keys, and keeps the challenge.
func (f WebAuthn) Begin(ctx context.Context, u store.User, now time.Time) (Challenge, error) {
	rp, err := f.RP()
	if err != nil {
		return Challenge{}, err
	}
	_, recs, err := f.Credentials(ctx, u.ID)
	if err != nil {
		return Challenge{}, err
	}
	if len(recs) == 0 {
		return Challenge{}, ErrNoWebAuthn
	}
	opts, s, err := rp.BeginLogin(waUser{u: u, creds: recs}, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return Challenge{}, fmt.Errorf("webauthn begin login: %w", err)
	}
	if err := f.keep(ctx, ceremonyLogin, u.ID, s, now); err != nil {
		return Challenge{}, fmt.Errorf("store webauthn challenge: %w", err)
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return Challenge{}, err
	}
	return Challenge{Options: b}, nil
}

// invalid wraps a refused answer.
func invalid(err error) error { return fmt.Errorf("%w: %w", ErrCodeInvalid, err) }

// Verify checks the browser's assertion (the JSON of a PublicKeyCredential)
// against the challenge it answers and u's keys, stores the new sign count
// and returns the credential used. ErrSignCount when the counter did not
// grow (the stored count is kept).
func (f WebAuthn) Verify(ctx context.Context, u store.User, answer string, now time.Time) (store.Credential, error) {
	rp, err := f.RP()
	if err != nil {
		return store.Credential{}, err
	}
	if len(answer) > 64<<10 {
		return store.Credential{}, ErrCodeInvalid
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(answer))
	if err != nil {
		return store.Credential{}, invalid(err)
	}
	s, err := f.take(ctx, ceremonyLogin, u.ID, parsed.Response.CollectedClientData.Challenge, now)
	if err != nil {
		return store.Credential{}, err
	}
	creds, recs, err := f.Credentials(ctx, u.ID)
	if err != nil {
		return store.Credential{}, err
	}
	got, err := rp.ValidateLogin(waUser{u: u, creds: recs}, s, parsed)
	if err != nil {
		return store.Credential{}, invalid(err)
	}
	i := slices.IndexFunc(recs, func(r webauthn.Credential) bool { return bytes.Equal(r.ID, got.ID) })
	if i < 0 {
		return store.Credential{}, ErrCodeInvalid
	}
	if got.Authenticator.CloneWarning {
		return creds[i], ErrSignCount
	}
	// Store the count, unless a concurrent sign-in with a higher count
	// stored its own meanwhile.
	var out store.Credential
	err = f.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, u.ID); err != nil {
			return err
		}
		c, err := tx.GetCredential(ctx, creds[i].ID)
		if err != nil {
			return err
		}
		d, err := decodeWebAuthn(c)
		if err != nil {
			return err
		}
		n := got.Authenticator.SignCount
		if (n != 0 || d.Credential.Authenticator.SignCount != 0) && n <= d.Credential.Authenticator.SignCount {
			return ErrSignCount
		}
		d.Credential.Authenticator.SignCount = n
		d.Credential.Flags = got.Flags
		if c.Data, err = json.Marshal(d); err != nil {
			return err
		}
		c.LastUsedAt = now
		out = c
		return tx.UpdateCredential(ctx, c)
	})
	if errors.Is(err, ErrSignCount) {
		return creds[i], ErrSignCount
	}
	if err != nil {
		return store.Credential{}, err
	}
	return out, nil
}

// BeginRegistration returns the creation options (JSON, for
// navigator.credentials.create) of a new key for u, excluding u's keys,
// and keeps the challenge.
func (f WebAuthn) BeginRegistration(ctx context.Context, u store.User, now time.Time) ([]byte, error) {
	rp, err := f.RP()
	if err != nil {
		return nil, err
	}
	_, recs, err := f.Credentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	user := waUser{u: u, creds: recs}
	opts, s, err := rp.BeginRegistration(user,
		webauthn.WithExclusions(webauthn.Credentials(recs).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn begin registration: %w", err)
	}
	if err := f.keep(ctx, ceremonyRegister, u.ID, s, now); err != nil {
		return nil, fmt.Errorf("store webauthn challenge: %w", err)
	}
	return json.Marshal(opts)
}

// FinishRegistration checks the browser's attestation (the JSON of a
// PublicKeyCredential) against the challenge it answers and returns the
// new, verified credential named name (not stored: the caller stores it
// with its audit event). ErrCodeInvalid when refused; ErrCodeExpired when
// the challenge is gone.
func (f WebAuthn) FinishRegistration(ctx context.Context, u store.User, answer, name string, now time.Time) (store.Credential, error) {
	rp, err := f.RP()
	if err != nil {
		return store.Credential{}, err
	}
	if len(answer) > 64<<10 {
		return store.Credential{}, ErrCodeInvalid
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(answer))
	if err != nil {
		return store.Credential{}, invalid(err)
	}
	s, err := f.take(ctx, ceremonyRegister, u.ID, parsed.Response.CollectedClientData.Challenge, now)
	if err != nil {
		return store.Credential{}, err
	}
	_, recs, err := f.Credentials(ctx, u.ID)
	if err != nil {
		return store.Credential{}, err
	}
	rec, err := rp.CreateCredential(waUser{u: u, creds: recs}, s, parsed)
	if err != nil {
		return store.Credential{}, invalid(err)
	}
	for _, r := range recs {
		if bytes.Equal(r.ID, rec.ID) {
			return store.Credential{}, invalid(errors.New("key already registered"))
		}
	}
	data, err := json.Marshal(WebAuthnData{Credential: *rec})
	if err != nil {
		return store.Credential{}, err
	}
	return store.Credential{
		ID:         uuid.NewString(),
		UserID:     u.ID,
		Type:       store.CredWebAuthn,
		Name:       name,
		Data:       data,
		VerifiedAt: now,
		CreatedAt:  now,
	}, nil
}
