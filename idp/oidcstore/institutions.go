package oidcstore

import (
	"context"
	"fmt"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/sesame-idp/sesame/idp/store"
)

// Institution is one entry of the sesame_institutions claim (DESIGN §5):
// only the user's institutions, with their mandates and special rights
// there.
type Institution struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Primary  bool     `json:"primary"`
	Mandates []string `json:"mandates"`
	Rights   []string `json:"rights"`
}

// setInstitutions adds sesame_institutions (and features, when
// Storage.Features is set) for scope sesame:institutions.
func (s *Storage) setInstitutions(ctx context.Context, info *oidc.UserInfo, u store.User) error {
	ms, err := s.Store.ListMemberships(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("memberships of %s: %w", u.ID, err)
	}
	out := make([]Institution, 0, len(ms))
	for _, m := range ms {
		in, err := s.Store.GetInstitution(ctx, m.InstitutionID)
		if err != nil {
			return fmt.Errorf("institution %s: %w", m.InstitutionID, err)
		}
		e := Institution{ID: in.ID, Name: in.Name, Primary: m.Primary, Mandates: m.Mandates, Rights: m.Rights}
		if e.Mandates == nil {
			e.Mandates = []string{}
		}
		if e.Rights == nil {
			e.Rights = []string{}
		}
		out = append(out, e)
	}
	info.AppendClaims("sesame_institutions", out)
	if s.Features != nil {
		f := s.Features(u.Occupation)
		if f == nil {
			f = []string{}
		}
		info.AppendClaims("features", f)
	}
	return nil
}
