package users

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
)

// What support does to an account (the management API and the CLI). Each
// operation runs in one transaction under the user's lock, with its audit
// event and, when mail is not nil, the email that mail builds for the user
// (queued in the outbox in the same transaction; no email when the user
// has no address).

// Mail builds the email an operation sends to the user.
type Mail func(u store.User) (notify.Email, error)

// ErrStatus: the account's status does not allow the operation (enable a
// closed account, resend the activation of an active one…). It wraps
// store.ErrConflict: the API answers 409.
var ErrStatus = fmt.Errorf("users: the account's status does not allow this: %w", store.ErrConflict)

// StatusError is ErrStatus for a person: what the status is and why it
// stops the operation.
func statusErr(message string) *InputError {
	return &InputError{Field: "status", Message: message, Err: ErrStatus}
}

// Status changes of SetStatus.
const (
	ActionDisable = "disable"
	ActionEnable  = "enable"
	ActionClose   = "close"
)

// SetStatus disables, enables or closes an account, with a "user.disabled",
// "user.enabled" or "user.closed" event and mail's email; it returns the
// user and whether anything changed (asking for the status the account
// already has changes nothing and sends nothing). A disabled or closed
// account cannot sign in and its tokens stop working: every refresh token
// of the user is revoked in the same transaction (the event's
// "refresh_tokens" says how many), so that none works again after an
// enable; enable revokes again what a refresh or code exchange racing the
// disable may have issued. Browser sessions and access tokens live in the
// ephemeral store: the server ends them (api.Handler.EndSessions). Enable
// brings a disabled account back (active, or pending_activation when it
// never chose a password); a closed account is reopened by an account
// request, not here (ErrStatus).
func (s *Service) SetStatus(ctx context.Context, userID, action string, by store.AuditEvent, mail Mail) (store.User, bool, error) {
	var u store.User
	changed := false
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, userID); err != nil {
			return err
		}
		var err error
		if u, err = tx.GetUser(ctx, userID); err != nil {
			return err
		}
		var next store.UserStatus
		switch action {
		case ActionDisable:
			switch u.Status {
			case store.StatusDisabled:
				return nil
			case store.StatusClosed:
				return statusErr("the account is closed")
			}
			next = store.StatusDisabled
		case ActionClose:
			if u.Status == store.StatusClosed {
				return nil
			}
			next = store.StatusClosed
		case ActionEnable:
			switch u.Status {
			case store.StatusActive, store.StatusPendingActivation:
				return nil
			case store.StatusClosed:
				return statusErr("the account is closed: an account request reopens it")
			}
			creds, err := tx.ListCredentials(ctx, userID, store.CredPassword)
			if err != nil {
				return err
			}
			next = store.StatusActive
			if len(creds) == 0 {
				next = store.StatusPendingActivation
			}
		default:
			return fmt.Errorf("users: unknown status action %q", action)
		}
		prev := u.Status
		now := s.now()
		u.Status, u.UpdatedAt = next, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		changed = true
		revoked, err := tx.RevokeUserRefreshTokens(ctx, userID, "", now)
		if err != nil {
			return err
		}
		typ := map[string]string{ActionDisable: "user.disabled", ActionEnable: "user.enabled", ActionClose: "user.closed"}[action]
		if err := tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, userID), typ,
			map[string]string{"from": string(prev), "to": string(next), "refresh_tokens": strconv.FormatInt(revoked, 10)})); err != nil {
			return err
		}
		return s.mail(ctx, tx, typ, u, mail)
	})
	if err != nil {
		return store.User{}, false, err
	}
	return u, changed, nil
}

// mail queues mail's email for u in tx, under a key of its own.
func (s *Service) mail(ctx context.Context, tx store.Tx, typ string, u store.User, mail Mail) error {
	if mail == nil || u.Email == "" {
		return nil
	}
	m, err := mail(u)
	if err != nil {
		return err
	}
	return notify.EnqueueEmail(ctx, tx, typ+":"+u.ID+":"+uuid.NewString(), m, s.now())
}

// ResetSecondFactors removes every second factor of the account (TOTP
// authenticators, phones, passkeys, including unfinished enrollments) and
// its recovery codes, with an "mfa.reset" event and mail's email: at its
// next sign-in, after the password, the user enrolls a second factor again,
// as a new account does. The user's SMS number goes with its method. It
// returns the user and how many methods were removed.
func (s *Service) ResetSecondFactors(ctx context.Context, userID string, by store.AuditEvent, mail Mail) (store.User, int, error) {
	var u store.User
	removed := 0
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, userID); err != nil {
			return err
		}
		var err error
		if u, err = tx.GetUser(ctx, userID); err != nil {
			return err
		}
		creds, err := tx.ListCredentials(ctx, userID, "")
		if err != nil {
			return err
		}
		removed = 0
		for _, c := range creds {
			if c.Type == store.CredPassword {
				continue
			}
			if err := tx.DeleteCredential(ctx, c.ID); err != nil {
				return err
			}
			removed++
		}
		now := s.now()
		if err := tx.ReplaceRecoveryCodes(ctx, userID, nil, now); err != nil {
			return err
		}
		u.Phone, u.UpdatedAt = "", now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, userID), "mfa.reset",
			map[string]string{"methods_removed": fmt.Sprint(removed)})); err != nil {
			return err
		}
		return s.mail(ctx, tx, "mfa.reset", u, mail)
	})
	if err != nil {
		return store.User{}, 0, err
	}
	return u, removed, nil
}

// ActivationMail builds the activation email from the new single-use
// token (to put in the link).
type ActivationMail func(u store.User, token string) (notify.Email, error)

// ResendActivation gives an account that was never activated a new
// single-use activation link (ActivationTTL), which ends the earlier ones,
// with an "user.activation_resent" event, and queues the email mail builds
// with it, to the user's address only. ErrStatus for an account that is not
// pending_activation; an *InputError when it has no email address.
func (s *Service) ResendActivation(ctx context.Context, userID string, by store.AuditEvent, mail ActivationMail) (store.User, error) {
	if mail == nil {
		return store.User{}, errors.New("users: ResendActivation needs the email")
	}
	var u store.User
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, userID); err != nil {
			return err
		}
		var err error
		if u, err = tx.GetUser(ctx, userID); err != nil {
			return err
		}
		if u.Status != store.StatusPendingActivation {
			return statusErr(fmt.Sprintf("the account is %s, not waiting for activation", u.Status))
		}
		if u.Email == "" {
			return inputErr("email", "the account has no email address")
		}
		now := s.now()
		token, err := NewActivationToken(ctx, tx, userID, now)
		if err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, userID), "user.activation_resent", nil)); err != nil {
			return err
		}
		m, err := mail(u, token)
		if err != nil {
			return err
		}
		return notify.EnqueueEmail(ctx, tx, "activation:"+userID+":"+uuid.NewString(), m, now)
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// SetSupport grants (or withdraws) the support right of the account: a
// support user's token with scope sesame:admin, from a sign-in with a
// second factor, may use the management API. With a "user.support_granted"
// or "user.support_revoked" event; store.ErrNotFound (wrapped) when there
// is no such user.
func (s *Service) SetSupport(ctx context.Context, username string, support bool, by store.AuditEvent) (store.User, error) {
	if err := CheckText("username", username, 256); err != nil {
		return store.User{}, err
	}
	var u store.User
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.GetUserByUsername(ctx, username); err != nil {
			return err
		}
		if err := tx.LockUser(ctx, u.ID); err != nil {
			return err
		}
		if u, err = tx.GetUser(ctx, u.ID); err != nil {
			return err
		}
		if u.Support == support {
			return nil
		}
		u.Support, u.UpdatedAt = support, s.now()
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		typ := "user.support_granted"
		if !support {
			typ = "user.support_revoked"
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, withUser(by, u.ID), typ, nil))
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}
