package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/sesame-idp/sesame/idp/store"
)

// Errors of the operations on second factors.
var (
	// ErrLastMethod: the credential is the user's last verified second
	// factor; it can only be replaced, not removed.
	ErrLastMethod = errors.New("users: the last second factor cannot be removed")
	// ErrAlreadyEnrolled: the account already has a verified second
	// factor (enrollment at sign-in is only for an account with none).
	ErrAlreadyEnrolled = errors.New("users: the account already has a second factor")
)

// secondFactor reports whether c counts as a second factor: verified, and
// not the password.
func secondFactor(c store.Credential) bool {
	return c.Type != store.CredPassword && !c.VerifiedAt.IsZero()
}

// RemoveSecondFactor deletes one of the user's second factors (a TOTP
// authenticator, a phone, a passkey; not the password), with an
// "mfa.removed" event, and returns it. The user's lock is held from the
// check to the delete, so that concurrent removals cannot leave the account
// without a factor: ErrLastMethod when credentialID is the user's last
// verified second factor (an unfinished enrollment can always be removed),
// store.ErrNotFound when the user has no such credential.
func (s *Service) RemoveSecondFactor(ctx context.Context, userID, credentialID string, by store.AuditEvent) (store.Credential, error) {
	var removed store.Credential
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, userID); err != nil {
			return err
		}
		creds, err := tx.ListCredentials(ctx, userID, "")
		if err != nil {
			return err
		}
		removed = store.Credential{}
		usable := 0
		for _, c := range creds {
			if secondFactor(c) {
				usable++
			}
			if c.ID == credentialID && c.Type != store.CredPassword {
				removed = c
			}
		}
		if removed.ID == "" {
			return fmt.Errorf("credential %s of user %s: %w", credentialID, userID, store.ErrNotFound)
		}
		if secondFactor(removed) && usable <= 1 {
			return ErrLastMethod
		}
		if err := tx.DeleteCredential(ctx, removed.ID); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, userID), "mfa.removed",
			map[string]string{"method": string(removed.Type), "credential_id": removed.ID}))
	})
	if err != nil {
		return store.Credential{}, err
	}
	return removed, nil
}

// EnsureNoSecondFactor is for a transaction that enrolls the first second
// factor of an account (enrollment at sign-in is only for an account with
// none): it takes the user's lock, held until tx ends, then returns
// ErrAlreadyEnrolled if the user has a verified second factor. Call it in
// tx before creating the credential: of concurrent first enrollments, one
// succeeds.
func EnsureNoSecondFactor(ctx context.Context, tx store.Tx, userID string) error {
	if err := tx.LockUser(ctx, userID); err != nil {
		return err
	}
	creds, err := tx.ListCredentials(ctx, userID, "")
	if err != nil {
		return err
	}
	for _, c := range creds {
		if secondFactor(c) {
			return ErrAlreadyEnrolled
		}
	}
	return nil
}
