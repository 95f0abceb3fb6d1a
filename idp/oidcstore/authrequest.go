package oidcstore

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// AuthRequest is one authorization request and the state of its sign-in
// flow, kept in the ephemeral store under its random ID.
type AuthRequest struct {
	ID                  string    `json:"id"`
	CreatedAt           time.Time `json:"created_at"`
	ClientID            string    `json:"client_id"`
	RedirectURI         string    `json:"redirect_uri"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	Scopes              []string  `json:"scopes"`
	ResponseType        string    `json:"response_type"`
	ResponseMode        string    `json:"response_mode,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              *uint     `json:"max_age,omitempty"`
	UILocales           []string  `json:"ui_locales,omitempty"`
	LoginHint           string    `json:"login_hint,omitempty"`
	HintSubject         string    `json:"hint_subject,omitempty"` // sub of a valid id_token_hint
	ACRValues           []string  `json:"acr_values,omitempty"`
	// IDTokenClaims are the claims the claims parameter asks for in the
	// ID token (ClaimsRequest).
	IDTokenClaims []string `json:"id_token_claims,omitempty"`

	// Filled in by the sign-in flow.
	Flow Flow `json:"flow"`

	// codeHash is set when the request was loaded by its code.
	codeHash string
}

// Flow is the progress of the sign-in for one authorization request. Only
// idp/flow changes it, by atomic updates (Storage.UpdateAuthRequest).
type Flow struct {
	// Browser is the hash of the browser cookie that signed in: the
	// callback only completes in that browser.
	Browser    string    `json:"browser,omitempty"`
	UserID     string    `json:"user_id,omitempty"`
	PasswordAt time.Time `json:"password_at,omitempty"`
	// Step is where the flow stands after the password (idp/flow.Step).
	Step string `json:"step,omitempty"`
	// StepUp: the flow continues a browser session from a new network (no
	// password in this flow).
	StepUp bool `json:"step_up,omitempty"`
	// AddMethod: the flow adds a method for a signed-in user.
	AddMethod bool `json:"add_method,omitempty"`
	// Reset: the flow proves a forgotten-password link with a second
	// factor, then sets a new password; it never issues a code.
	Reset bool `json:"reset,omitempty"`
	// Pending enrollment state of the factors (a new TOTP key, recovery
	// codes) until it is confirmed; the whole record is sealed in Redis.
	Pending map[string]string `json:"pending,omitempty"`
	// Factors are the AMR values of the factors verified in this flow, and
	// VerifiedAt the time of the last one (zero: none).
	Factors    []string  `json:"factors,omitempty"`
	VerifiedAt time.Time `json:"verified_at,omitempty"`
	// Notice is a message key the password page shows once (a voided
	// challenge).
	Notice string `json:"notice,omitempty"`

	Done      bool      `json:"done,omitempty"`
	AuthTime  time.Time `json:"auth_time,omitempty"`
	AMR       []string  `json:"amr,omitempty"`
	ACR       string    `json:"acr,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
}

var _ op.AuthRequest = (*AuthRequest)(nil)

func (a *AuthRequest) GetID() string          { return a.ID }
func (a *AuthRequest) GetACR() string         { return a.Flow.ACR }
func (a *AuthRequest) GetAMR() []string       { return a.Flow.AMR }
func (a *AuthRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *AuthRequest) GetAuthTime() time.Time { return a.Flow.AuthTime }
func (a *AuthRequest) GetClientID() string    { return a.ClientID }
func (a *AuthRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *AuthRequest) GetNonce() string                   { return a.Nonce }
func (a *AuthRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *AuthRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.ResponseType) }
func (a *AuthRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.ResponseMode) }
func (a *AuthRequest) GetScopes() []string                { return a.Scopes }
func (a *AuthRequest) GetState() string                   { return a.State }
func (a *AuthRequest) GetSubject() string                 { return a.Flow.UserID }

// Done reports whether the sign-in finished, second factor included: the
// only way to a code.
func (a *AuthRequest) Done() bool { return a.Flow.Done && a.Flow.UserID != "" }

// HasPrompt reports whether the request carries prompt value p.
func (a *AuthRequest) HasPrompt(p string) bool { return slices.Contains(a.Prompt, p) }

func newAuthRequest(id string, now time.Time, r *oidc.AuthRequest, hintSubject string) *AuthRequest {
	return &AuthRequest{
		ID:                  id,
		CreatedAt:           now,
		ClientID:            r.ClientID,
		RedirectURI:         r.RedirectURI,
		State:               r.State,
		Nonce:               r.Nonce,
		Scopes:              r.Scopes,
		ResponseType:        string(r.ResponseType),
		ResponseMode:        string(r.ResponseMode),
		CodeChallenge:       r.CodeChallenge,
		CodeChallengeMethod: string(r.CodeChallengeMethod),
		Prompt:              r.Prompt,
		MaxAge:              r.MaxAge,
		UILocales:           localesToStrings(r.UILocales),
		LoginHint:           r.LoginHint,
		HintSubject:         hintSubject,
		ACRValues:           r.ACRValues,
	}
}

func localesToStrings(l oidc.Locales) []string {
	out := make([]string, 0, len(l))
	for _, t := range l {
		out = append(out, t.String())
	}
	return out
}
