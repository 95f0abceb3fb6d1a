package users

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
)

// smsData is the Data of an sms credential.
type smsData struct {
	Phone string `json:"phone"` // E.164
}

// NewSMSCredential builds the sms credential of a verified phone (E.164,
// from ParseCanadianMobile).
func NewSMSCredential(userID, name, phone string, now, verifiedAt time.Time) store.Credential {
	b, _ := json.Marshal(smsData{Phone: phone})
	return store.Credential{
		ID:         uuid.NewString(),
		UserID:     userID,
		Type:       store.CredSMS,
		Name:       name,
		Data:       b,
		CreatedAt:  now,
		VerifiedAt: verifiedAt,
	}
}

// CredentialPhone is the phone number of an sms credential ("" for any
// other).
func CredentialPhone(c store.Credential) string {
	if c.Type != store.CredSMS {
		return ""
	}
	var d smsData
	if json.Unmarshal(c.Data, &d) != nil {
		return ""
	}
	return d.Phone
}

// WithPhone returns c with its phone number changed.
func WithPhone(c store.Credential, phone string) store.Credential {
	c.Data, _ = json.Marshal(smsData{Phone: phone})
	return c
}

// importPhone enrolls u.Phone (E.164, from NewUser.Phone) as a verified
// SMS method, with an "mfa.imported" event.
func (s *Service) importPhone(ctx context.Context, tx store.Tx, u store.User, by store.AuditEvent) error {
	if u.Phone == "" {
		return nil
	}
	now := s.now()
	if err := tx.CreateCredential(ctx, NewSMSCredential(u.ID, "Imported phone", u.Phone, now, now)); err != nil {
		return err
	}
	return tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, u.ID), "mfa.imported", map[string]string{"method": "sms"}))
}

// SetPhone is support changing a user's SMS number (users cannot): raw in
// any usual format, checked as at enrollment (an *InputError otherwise).
// In one transaction, under the user's lock, the user's verified SMS
// method gets the number (one is created, verified, when there is none),
// the user record too, with a "user.phone_changed" event and the email
// that mail builds for the user (the user is told; nil: no email). Codes
// sent to the old number stop working. It returns the user.
func (s *Service) SetPhone(ctx context.Context, userID, raw string, by store.AuditEvent, mail func(u store.User) (notify.Email, error)) (store.User, error) {
	phone, err := ParseCanadianMobile(raw)
	if err != nil {
		return store.User{}, err
	}
	var u store.User
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, userID); err != nil {
			return err
		}
		var err error
		if u, err = tx.GetUser(ctx, userID); err != nil {
			return err
		}
		creds, err := tx.ListCredentials(ctx, userID, store.CredSMS)
		if err != nil {
			return err
		}
		now := s.now()
		var cred store.Credential
		for _, c := range creds {
			if !c.VerifiedAt.IsZero() {
				cred = c
				break
			}
		}
		if cred.ID == "" {
			cred = NewSMSCredential(userID, "Set by support", phone, now, now)
			if err := tx.CreateCredential(ctx, cred); err != nil {
				return err
			}
		} else if err := tx.UpdateCredential(ctx, WithPhone(cred, phone)); err != nil {
			return err
		}
		u.Phone, u.UpdatedAt = phone, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, userID), "user.phone_changed",
			map[string]string{"credential_id": cred.ID, "phone": MaskPhone(phone)})); err != nil {
			return err
		}
		if mail == nil || u.Email == "" {
			return nil
		}
		m, err := mail(u)
		if err != nil {
			return err
		}
		return notify.EnqueueEmail(ctx, tx, "phone_changed:"+uuid.NewString(), m, now)
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}
