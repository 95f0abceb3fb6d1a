package users

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/audit"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
)

// Service runs the operations on users and clients, each in one
// transaction with its audit event.
//
// Every operation that changes something takes by, the audit event that
// says who asks (ActorID: a user id, "cli"…; IP, RequestID when known):
// the operation copies it and fills ID, At, Type, UserID or ClientID and
// Details. A request id put in ctx by audit.WithRequestID is used when
// by has none.
type Service struct {
	Store     store.Store
	Sealer    *seal.Sealer // seals imported TOTP secrets
	Passwords Passwords
	Now       func() time.Time // nil: time.Now
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// event is by with typ and the current time, id and request id.
func (s *Service) event(ctx context.Context, by store.AuditEvent, typ string, details map[string]string) store.AuditEvent {
	e := by
	e.ID, e.At, e.Type = "", s.now(), typ
	if len(details) > 0 {
		e.Details = make(map[string]string, len(by.Details)+len(details))
		for k, v := range by.Details {
			e.Details[k] = v
		}
		for k, v := range details {
			e.Details[k] = v
		}
	}
	return (&audit.Recorder{Now: s.now}).Event(ctx, e)
}

// ---- validation ----

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{1,63}$`)

// Locales a user can have; DefaultLocale when none is given.
const DefaultLocale = "fr-CA"

// CheckUsername: 2 to 64 letters, digits or . _ @ - once folded
// (store.FoldUsername), starting with a letter or digit.
func CheckUsername(u string) error {
	if err := CheckText("username", u, 256); err != nil {
		return err
	}
	if !usernameRE.MatchString(store.FoldUsername(u)) {
		return inputErr("username", fmt.Sprintf("%q must be 2 to 64 letters, digits or . _ @ -", u))
	}
	return nil
}

// CheckEmail: one bare address (no display name, no angle brackets).
func CheckEmail(e string) error {
	if err := CheckText("email", e, 254); err != nil {
		return err
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e, "@") {
		return inputErr("email", fmt.Sprintf("%q is not an email address", e))
	}
	return nil
}

func checkLocale(l string) error {
	if l != "fr-CA" && l != "en-CA" {
		return inputErr("locale", fmt.Sprintf("%q must be fr-CA or en-CA", l))
	}
	return nil
}

// policyMessage is what a person reads for a CheckPasswordPolicy error.
func policyMessage(err error) string {
	switch {
	case errors.Is(err, ErrPasswordTooShort):
		return fmt.Sprintf("at least %d characters are required", MinPasswordLen)
	case errors.Is(err, ErrPasswordTooLong):
		return "too long"
	default:
		return "too common or too close to the username; choose another (a passphrase is fine)"
	}
}

// ---- users ----

// NewUser is one active account to create with its initial password, from
// the CLI's flags, a line of an import file or the API. The JSON form is
// the import file's.
type NewUser struct {
	Username   string `json:"username"`
	Email      string `json:"email"`
	Password   string `json:"password"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Locale     string `json:"locale"` // fr-CA (when empty) or en-CA
	// TOTPSecret is the base32 key of an existing authenticator (migration
	// from the previous system), imported as a verified credential: the
	// user goes straight to the challenge. Empty: none.
	TOTPSecret string `json:"totp_secret"`
	// Phone is a verified cell phone number (migration), in any usual
	// format: imported as a verified SMS method. Empty: none.
	Phone string `json:"phone"`
}

// Validate checks every field, in the order of the CLI's flags, and
// returns the first problem as an *InputError.
func (n NewUser) Validate() error {
	if err := checkTexts(text("username", 256, n.Username), text("email", 254, n.Email),
		text("password", 1024, n.Password), text("given_name", 128, n.GivenName),
		text("family_name", 128, n.FamilyName), text("locale", 16, n.Locale),
		text("totp_secret", 256, n.TOTPSecret)); err != nil {
		return err
	}
	if err := CheckUsername(n.Username); err != nil {
		return err
	}
	if err := CheckEmail(n.Email); err != nil {
		return err
	}
	if n.Locale == "" {
		n.Locale = DefaultLocale
	}
	if err := checkLocale(n.Locale); err != nil {
		return err
	}
	if err := CheckPasswordPolicy(n.Password, store.FoldUsername(n.Username)); err != nil {
		return &InputError{Field: "password", Message: policyMessage(err), Err: err}
	}
	if n.TOTPSecret != "" {
		if _, err := ParseSecret(n.TOTPSecret); err != nil {
			return &InputError{Field: "totp_secret", Message: badSecret, Err: err}
		}
	}
	if n.Phone != "" {
		if _, err := ParseCanadianMobile(n.Phone); err != nil {
			return err
		}
	}
	return nil
}

// CreateUsers validates every user, hashes the passwords and creates them
// all in one transaction, each with its password, its imported
// authenticator and a "user.created" event: all or nothing. A bad field is
// an *InputError (call Validate on each first to tell which user it is
// about), a taken username an *InputError wrapping store.ErrConflict. The
// users are returned in the order given.
func (s *Service) CreateUsers(ctx context.Context, in []NewUser, by store.AuditEvent) ([]store.User, error) {
	for _, n := range in {
		if err := n.Validate(); err != nil {
			return nil, err
		}
	}
	now := s.now()
	created := make([]store.User, len(in))
	hashes := make([]string, len(in))
	for i, n := range in {
		h, err := s.Passwords.Hash(n.Password)
		if err != nil {
			return nil, fmt.Errorf("hash password: %w", err)
		}
		hashes[i] = h
		locale := n.Locale
		if locale == "" {
			locale = DefaultLocale
		}
		created[i] = store.User{
			ID: uuid.NewString(), Username: store.FoldUsername(n.Username), Email: n.Email,
			GivenName: n.GivenName, FamilyName: n.FamilyName, Locale: locale,
			Status: store.StatusActive, AccountType: "person", CreatedAt: now, UpdatedAt: now,
		}
		if n.Phone != "" {
			created[i].Phone, _ = ParseCanadianMobile(n.Phone) // validated above
		}
	}
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		for i, u := range created {
			if err := tx.CreateUser(ctx, u); err != nil {
				return usernameTaken(u.Username, err)
			}
			if err := tx.SetPassword(ctx, u.ID, hashes[i], now); err != nil {
				return err
			}
			if err := s.importTOTP(ctx, tx, u, in[i].TOTPSecret, by); err != nil {
				return err
			}
			if err := s.importPhone(ctx, tx, u, by); err != nil {
				return err
			}
			if err := tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, u.ID), "user.created", nil)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// usernameTaken turns the conflict of CreateUser into an *InputError.
func usernameTaken(username string, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &InputError{Field: "username", Message: fmt.Sprintf("%q is already taken", username), Err: store.ErrConflict}
	}
	return err
}

func withUser(e store.AuditEvent, userID string) store.AuditEvent {
	e.UserID = userID
	return e
}

// importTOTP enrolls an existing authenticator as a verified credential,
// with an "mfa.imported" event.
func (s *Service) importTOTP(ctx context.Context, tx store.Tx, u store.User, key string, by store.AuditEvent) error {
	if key == "" {
		return nil
	}
	raw, err := ParseSecret(key)
	if err != nil {
		return &InputError{Field: "totp_secret", Message: badSecret, Err: err}
	}
	now := s.now()
	c := NewTOTPCredential(s.Sealer, u.ID, "Imported authenticator", raw, now, now)
	if err := tx.CreateCredential(ctx, c); err != nil {
		return err
	}
	return tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, u.ID), "mfa.imported", map[string]string{"method": "totp"}))
}

// BootstrapAdmin creates a pending administrator (fr-CA, occupation
// administrative, holding the support right) and its activation token, with an "admin.bootstrap"
// event; the link is the issuer's /activate?token=…. A taken username is
// an *InputError wrapping store.ErrConflict.
func (s *Service) BootstrapAdmin(ctx context.Context, username, email string, by store.AuditEvent) (store.User, string, error) {
	if err := CheckUsername(username); err != nil {
		return store.User{}, "", err
	}
	if err := CheckEmail(email); err != nil {
		return store.User{}, "", err
	}
	now := s.now()
	u := store.User{
		ID: uuid.NewString(), Username: store.FoldUsername(username), Email: email,
		Locale: DefaultLocale, Status: store.StatusPendingActivation, AccountType: "person", Occupation: "administrative",
		Support: true, CreatedAt: now, UpdatedAt: now,
	}
	var token string
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return usernameTaken(u.Username, err)
		}
		var err error
		if token, err = NewActivationToken(ctx, tx, u.ID, now); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, u.ID), "admin.bootstrap", nil))
	})
	if err != nil {
		return store.User{}, "", err
	}
	return u, token, nil
}

// MaxMFAGrace bounds a grace period for enrolling a second factor: it ends
// within 30 days, counting the whole of its last day.
const MaxMFAGrace = 31 * 24 * time.Hour

// CheckMFAGraceUntil: a grace period must end after now and within
// MaxMFAGrace.
func CheckMFAGraceUntil(until, now time.Time) error {
	if until.Before(now) || until.After(now.Add(MaxMFAGrace)) {
		return inputErr("until", "the grace period must end within the next 30 days")
	}
	return nil
}

// SetMFAGrace lets the account sign in without a second factor until
// until (an administrator's decision, with an "mfa.grace_granted" event);
// a zero until ends the grace period now. store.ErrNotFound (wrapped) when
// there is no such user.
func (s *Service) SetMFAGrace(ctx context.Context, username string, until time.Time, by store.AuditEvent) (store.User, error) {
	if err := CheckText("username", username, 256); err != nil {
		return store.User{}, err
	}
	now := s.now()
	if until.IsZero() {
		until = now
	} else if err := CheckMFAGraceUntil(until, now); err != nil {
		return store.User{}, err
	}
	until = until.UTC()
	var u store.User
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.GetUserByUsername(ctx, username); err != nil {
			return err
		}
		u.MFAGraceUntil, u.UpdatedAt = until, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, u.ID), "mfa.grace_granted",
			map[string]string{"until": until.Format(time.RFC3339)}))
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}
