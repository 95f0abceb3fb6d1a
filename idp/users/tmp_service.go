package users

// TEMPORARY until the users branch lands (deleted at its merge).

import (
	"context"
	"errors"

	"github.com/sesame-idp/sesame/idp/store"
)

var ErrLastMethod = errors.New("users: the last second factor cannot be removed")

func (s *Service) RemoveSecondFactor(ctx context.Context, userID, id string, e store.AuditEvent) (store.Credential, error) {
	var removed store.Credential
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		creds, err := tx.ListCredentials(ctx, userID, "")
		if err != nil {
			return err
		}
		usable := 0
		for _, c := range creds {
			if c.Type != store.CredPassword && !c.VerifiedAt.IsZero() {
				usable++
			}
			if c.ID == id && c.Type != store.CredPassword {
				removed = c
			}
		}
		if removed.ID == "" {
			return store.ErrNotFound
		}
		if usable <= 1 {
			return ErrLastMethod
		}
		if err := tx.DeleteCredential(ctx, id); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, e)
	})
	return removed, err
}
