package oidcstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/sesame-idp/sesame/idp/store"
)

// SetUserinfoFromScopes is deprecated in zitadel/oidc: the work is done by
// SetUserinfoFromRequest.
func (s *Storage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, clientID string, scopes []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims, and its sid.
// The scopes are those whose claims go in the ID token (without profile
// and email when an access token is issued, OIDC Core §5.4); the claims
// parameter may ask for more of the request's scopes' claims.
func (s *Storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.setUserinfo(ctx, info, req.GetSubject(), scopes); err != nil {
		return err
	}
	switch r := req.(type) {
	case *AuthRequest:
		if r.Flow.SessionID != "" {
			info.AppendClaims("sid", r.Flow.SessionID)
		}
		if len(r.IDTokenClaims) > 0 {
			if err := s.addRequestedClaims(ctx, info, r.GetSubject(), r.Scopes, r.IDTokenClaims); err != nil {
				return err
			}
		}
	case *RefreshTokenRequest:
		if r.t.SessionID != "" {
			info.AppendClaims("sid", r.t.SessionID)
		}
	}
	return nil
}

// SetUserinfoFromToken answers the userinfo endpoint for a live access
// token of a user.
func (s *Storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	t, err := s.accessToken(ctx, tokenID)
	if err != nil {
		return s.verdict(ctx, err, oidc.ErrAccessDenied().WithDescription("invalid or expired access token"))
	}
	if t.Subject != subject {
		return oidc.ErrAccessDenied().WithDescription("invalid or expired access token")
	}
	if !slices.Contains(t.Scopes, oidc.ScopeOpenID) {
		return oidc.ErrInvalidScope().WithDescription("the access token has no openid scope")
	}
	return s.setUserinfo(ctx, info, t.Subject, t.Scopes)
}

// SetIntrospectionFromToken describes a live access token (RFC 7662).
func (s *Storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.accessToken(ctx, tokenID)
	if err != nil {
		return s.verdict(ctx, err, notFound{"access token"})
	}
	if t.Subject != subject {
		return notFound{"access token"}
	}
	resp.Subject = t.Subject
	resp.ClientID = t.ClientID
	resp.Scope = t.Scopes
	resp.Audience = t.Audience
	resp.Expiration = oidc.FromTime(t.Expires)
	resp.IssuedAt = oidc.FromTime(t.IssuedAt)
	resp.TokenType = oidc.BearerToken
	if t.Subject != t.ClientID { // a user's token
		info := new(oidc.UserInfo)
		switch err := s.setUserinfo(ctx, info, t.Subject, t.Scopes); {
		case err == nil:
			resp.SetUserInfo(info)
		case IsUnavailable(err):
			return err
		}
	}
	return nil
}

// GetPrivateClaimsFromScopes adds nothing to JWT access tokens for now.
func (s *Storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	return nil, nil
}

func (s *Storage) setUserinfo(ctx context.Context, info *oidc.UserInfo, userID string, scopes []string) error {
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return s.verdict(ctx, err, oidc.ErrAccessDenied().WithDescription("unknown user"))
	}
	if u.Status != store.StatusActive {
		return oidc.ErrAccessDenied().WithDescription("the account is not active")
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.GivenName = u.GivenName
			info.FamilyName = u.FamilyName
			info.Name = joinName(u.GivenName, u.FamilyName)
			if tag, err := language.Parse(u.Locale); err == nil {
				info.Locale = oidc.NewLocale(tag)
			}
			info.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		case oidc.ScopeEmail:
			info.Email = u.Email
			// Addresses are given by the institution's account managers and
			// confirmed when the account is activated through them.
			info.EmailVerified = oidc.Bool(u.Status == store.StatusActive)
		case ScopeInstitutions:
			if err := s.institutionClaims(ctx, info, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// Institution is one element of the sesame_institutions claim: an
// institution of the user with what they hold there.
type Institution struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Primary  bool     `json:"primary"`
	Mandates []string `json:"mandates"`
	Rights   []string `json:"rights"`
}

// institutionClaims are the claims of sesame:institutions (DESIGN §5):
// sesame_institutions (only the user's institutions), occupation,
// practice_number, prescriber_number, features.
func (s *Storage) institutionClaims(ctx context.Context, info *oidc.UserInfo, u store.User) error {
	ms, err := s.Store.ListMemberships(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("institutions of %s: %w", u.ID, err)
	}
	insts := make([]Institution, 0, len(ms))
	for _, m := range ms {
		in, err := s.Store.GetInstitution(ctx, m.InstitutionID)
		if err != nil {
			return fmt.Errorf("institution %s: %w", m.InstitutionID, err)
		}
		insts = append(insts, Institution{ID: in.ID, Name: in.Name, Primary: m.Primary,
			Mandates: nonNil(m.Mandates), Rights: nonNil(m.Rights)})
	}
	// The primary one first, then by name.
	slices.SortStableFunc(insts, func(a, b Institution) int {
		switch {
		case a.Primary != b.Primary:
			if a.Primary {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	info.AppendClaims("sesame_institutions", insts)
	info.AppendClaims("occupation", u.Occupation)
	if u.PracticeNumber != "" {
		info.AppendClaims("practice_number", u.PracticeNumber)
	}
	if u.PrescriberNumber != "" {
		info.AppendClaims("prescriber_number", u.PrescriberNumber)
	}
	var features []string
	if s.Features != nil {
		features = s.Features(u.Occupation)
	}
	info.AppendClaims("features", nonNil(features))
	return nil
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func joinName(given, family string) string {
	switch {
	case given == "":
		return family
	case family == "":
		return given
	}
	return given + " " + family
}
