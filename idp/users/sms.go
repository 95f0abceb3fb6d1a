package users

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

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
