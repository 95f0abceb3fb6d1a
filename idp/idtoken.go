package idp

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/zitadel/oidc/v3/pkg/crypto"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/oidcstore"
)

// tokenPath is the token endpoint below the issuer.
const tokenPath = "/oauth/token"

// withTokenGrants answers the authorization_code and refresh_token grants
// itself, as zitadel/oidc would, but with an ID token of our making
// (idToken); every other request goes on to the provider. It is mounted
// as a provider interceptor, so CORS and the issuer are already set.
func (s *Server) withTokenGrants(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tokenPath || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		switch r.FormValue("grant_type") {
		case string(oidc.GrantTypeCode):
			s.codeExchange(w, r)
		case string(oidc.GrantTypeRefreshToken):
			s.refreshExchange(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// exchanger is the provider's token side.
func (s *Server) exchanger() op.Exchanger { return s.Provider.(op.Exchanger) }

// codeExchange is op.CodeExchange with our token response.
func (s *Server) codeExchange(w http.ResponseWriter, r *http.Request) {
	ex := s.exchanger()
	req, err := op.ParseAccessTokenRequest(r, ex.Decoder())
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	if req.Code == "" {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("code missing"), nil)
		return
	}
	authReq, client, err := op.ValidateAccessTokenRequest(r.Context(), req, ex)
	if err == nil {
		var resp *oidc.AccessTokenResponse
		if resp, err = s.tokenResponse(r.Context(), authReq, client, req.Code, ""); err == nil {
			httphelper.MarshalJSON(w, resp)
			return
		}
	}
	if oidcstore.IsUnavailable(err) || oidcstore.Faulted(r.Context()) {
		// Not the client's fault: the code may be exchanged again.
		s.Storage.ReleaseCode(r.Context(), req.Code)
	}
	op.RequestError(w, r, err, nil)
}

// refreshExchange is op.RefreshTokenExchange with our token response.
func (s *Server) refreshExchange(w http.ResponseWriter, r *http.Request) {
	ex := s.exchanger()
	req, err := op.ParseRefreshTokenRequest(r, ex.Decoder())
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	validated, client, err := op.ValidateRefreshTokenRequest(r.Context(), req, ex)
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	resp, err := s.tokenResponse(r.Context(), validated, client, "", req.RefreshToken)
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	httphelper.MarshalJSON(w, resp)
}

// userTokenRequest is a code's or a refresh token's request: it has tokens
// and an ID token.
type userTokenRequest interface {
	op.TokenRequest
	op.IDTokenRequest
}

// tokenResponse is op.CreateTokenResponse (with an access token) with our
// ID token.
func (s *Server) tokenResponse(ctx context.Context, req userTokenRequest, client op.Client, code, refreshToken string) (*oidc.AccessTokenResponse, error) {
	accessToken, newRefreshToken, validity, err := op.CreateAccessToken(ctx, req, client.AccessTokenType(), s.exchanger(), client, refreshToken)
	if err != nil {
		return nil, err
	}
	idToken, err := s.idToken(ctx, req, client, accessToken, code)
	if err != nil {
		return nil, err
	}
	if a, ok := req.(op.AuthRequest); ok {
		if err := s.Storage.DeleteAuthRequest(ctx, a.GetID()); err != nil {
			return nil, err
		}
	}
	return &oidc.AccessTokenResponse{
		AccessToken:  accessToken,
		IDToken:      idToken,
		RefreshToken: newRefreshToken,
		TokenType:    oidc.BearerToken,
		ExpiresIn:    uint64(validity.Seconds()),
		Scope:        req.GetScopes(),
	}, nil
}

// idToken is op.CreateIDToken without the non-standard client_id claim
// (azp names the client, OIDC Core §2) and, beside an access token,
// without the profile and email claims, which userinfo gives (OIDC Core
// §5.4) unless the claims parameter asks for them
// (oidcstore.ClaimsRequest).
func (s *Server) idToken(ctx context.Context, req op.IDTokenRequest, client op.Client, accessToken, code string) (string, error) {
	// zitadel/oidc's clock, as for the iat it sets.
	exp := time.Now().UTC().Add(client.ClockSkew()).Add(client.IDTokenLifetime())
	var acr, nonce string
	if a, ok := req.(op.AuthRequest); ok {
		acr, nonce = a.GetACR(), a.GetNonce()
	}
	claims := oidc.NewIDTokenClaims(op.IssuerFromContext(ctx), req.GetSubject(), req.GetAudience(), exp,
		req.GetAuthTime(), nonce, acr, req.GetAMR(), req.GetClientID(), client.ClockSkew())
	claims.ClientID = ""
	key, err := s.Storage.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	scopes := client.RestrictAdditionalIdTokenScopes()(req.GetScopes())
	if accessToken != "" {
		if claims.AccessTokenHash, err = oidc.ClaimHash(accessToken, key.SignatureAlgorithm()); err != nil {
			return "", err
		}
		scopes = withoutUserinfoScopes(scopes)
	}
	info := new(oidc.UserInfo)
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return "", err
	}
	claims.SetUserInfo(info)
	// sid has its own field in the ID token's claims: set there, the
	// claims usually have no extra members left, and their encoding skips
	// zitadel/oidc's merge of extra members (a JSON decode and re-encode
	// of the whole token, a third of an ES256 ID token's cost).
	if sid, ok := claims.Claims["sid"].(string); ok {
		claims.SessionID = sid
		delete(claims.Claims, "sid")
	}
	if code != "" {
		if claims.CodeHash, err = oidc.ClaimHash(code, key.SignatureAlgorithm()); err != nil {
			return "", err
		}
	}
	signer, err := op.SignerFromKey(key)
	if err != nil {
		return "", fmt.Errorf("id token signer: %w", err)
	}
	return crypto.Sign(claims, signer)
}

// withoutUserinfoScopes drops the scopes whose claims userinfo gives
// (OIDC Core §5.4).
func withoutUserinfoScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeAddress, oidc.ScopePhone:
		default:
			out = append(out, sc)
		}
	}
	return out
}
