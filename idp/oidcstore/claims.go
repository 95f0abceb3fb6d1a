package oidcstore

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// ClaimsRequest is the claims request parameter (OIDC Core §5.5): the user
// claims a relying party asks for by name. Sésame honours its id_token
// member: the ID token then carries those claims even though an access
// token is issued (otherwise they are given at userinfo only, OIDC Core
// §5.4), as far as the granted scopes give them. Its userinfo member adds
// nothing: userinfo gives every claim of the granted scopes.
type ClaimsRequest struct {
	IDToken  []string
	UserInfo []string
}

// Bounds of a claims request.
const (
	maxClaimsRequest = 4096
	maxClaimNames    = 32
	maxClaimName     = 64
)

var errClaimsRequest = errors.New("malformed claims request")

// ParseClaimsRequest reads a claims parameter: a JSON object whose
// id_token and userinfo members map claim names to null or an object.
func ParseClaimsRequest(s string) (ClaimsRequest, error) {
	var raw map[string]map[string]json.RawMessage
	if len(s) > maxClaimsRequest || json.Unmarshal([]byte(s), &raw) != nil {
		return ClaimsRequest{}, errClaimsRequest
	}
	var cr ClaimsRequest
	for member, claims := range raw {
		if len(claims) > maxClaimNames {
			return ClaimsRequest{}, errClaimsRequest
		}
		names := make([]string, 0, len(claims))
		for name, v := range claims {
			var spec *struct {
				Essential bool              `json:"essential"`
				Value     json.RawMessage   `json:"value"`
				Values    []json.RawMessage `json:"values"`
			}
			if name == "" || len(name) > maxClaimName || json.Unmarshal(v, &spec) != nil {
				return ClaimsRequest{}, errClaimsRequest
			}
			names = append(names, name)
		}
		slices.Sort(names)
		switch member {
		case "id_token":
			cr.IDToken = names
		case "userinfo":
			cr.UserInfo = names
		}
	}
	return cr, nil
}

type claimsRequestKey struct{}

// WithClaimsRequest hands an authorization request's claims parameter to
// CreateAuthRequest (zitadel/oidc does not parse it).
func WithClaimsRequest(ctx context.Context, cr ClaimsRequest) context.Context {
	return context.WithValue(ctx, claimsRequestKey{}, cr)
}

func claimsRequestFrom(ctx context.Context) ClaimsRequest {
	cr, _ := ctx.Value(claimsRequestKey{}).(ClaimsRequest)
	return cr
}

// addRequestedClaims copies into info the claims named that the scopes
// give the user.
func (s *Storage) addRequestedClaims(ctx context.Context, info *oidc.UserInfo, userID string, scopes, names []string) error {
	full := new(oidc.UserInfo)
	if err := s.setUserinfo(ctx, full, userID, scopes); err != nil {
		return err
	}
	b, err := json.Marshal(full)
	if err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, name := range names {
		if v, ok := all[name]; ok && name != "sub" {
			info.AppendClaims(name, v)
		}
	}
	return nil
}
