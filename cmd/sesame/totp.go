package main

import (
	"context"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

func validTOTPSecret(s string) error {
	if s == "" {
		return nil
	}
	if _, err := users.ParseSecret(s); err != nil {
		return usagef("--totp-secret: %v", err)
	}
	return nil
}

// importTOTP enrolls an existing authenticator (migration from the previous
// system) as a verified credential: the user goes straight to the challenge.
func (a *app) importTOTP(ctx context.Context, tx store.Tx, u store.User, secret string) error {
	if secret == "" {
		return nil
	}
	raw, err := users.ParseSecret(secret)
	if err != nil {
		return err
	}
	c := users.NewTOTPCredential(a.sealer, u.ID, "Imported authenticator", raw, now(), now())
	if err := tx.CreateCredential(ctx, c); err != nil {
		return err
	}
	return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "mfa.imported", ActorID: "cli", UserID: u.ID,
		Details: map[string]string{"method": "totp"}})
}
