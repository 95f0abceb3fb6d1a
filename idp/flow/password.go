package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// A forgotten password: the emailed link starts a flow that asks for a
// second factor (any the user has, a recovery code included) and then
// goes to the new-password page instead of signing in. Such a flow never
// enrolls a method and never ends with a code: it ends when the password
// is set (FinishReset).

// StepReset: the second factor of a reset flow was verified; the new
// password may be set.
const StepReset Step = "reset"

// PathReset is the new-password page of a reset flow.
const PathReset = "/password/reset"

// ErrNoUsableFactor: the user has no second factor to prove a reset with.
var ErrNoUsableFactor = errors.New("flow: no usable second factor")

// StartReset turns a new auth request of the account pages into a reset
// flow for u in this browser (u's reset link was just used) and sends the
// browser to the challenge. ErrNoUsableFactor when u has no second factor:
// the page tells the user to call support.
func (f *Flow) StartReset(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User) error {
	factors, err := f.SecondFactors(r.Context(), u.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	if len(factors) == 0 {
		return ErrNoUsableFactor
	}
	f.Sessions.Browser(w, r)
	browser := f.Sessions.BrowserHash(r)
	a, err = f.update(r.Context(), a.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done || a.Flow.UserID != "" {
			return errFlowMoved
		}
		a.Flow = oidcstore.Flow{Browser: browser, UserID: u.ID, Step: string(StepChallenge), Reset: true}
		return nil
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, f.URL(PathChallenge, a), http.StatusSeeOther)
	return nil
}

// resetVerified is finish for a reset flow: the factor is recorded, and
// the browser goes to the new-password page, without a session.
func (f *Flow) resetVerified(w http.ResponseWriter, r *http.Request, id string, prepare func(fl *oidcstore.Flow) error) error {
	a, err := f.update(r.Context(), id, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done || !a.Flow.Reset {
			return errFlowMoved
		}
		if err := prepare(&a.Flow); err != nil {
			return err
		}
		a.Flow.Step = string(StepReset)
		a.Flow.Pending = nil
		return nil
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, f.URL(PathReset, a), http.StatusSeeOther)
	return nil
}

// LoadReset returns the reset flow of this browser whose second factor was
// verified.
func (f *Flow) LoadReset(w http.ResponseWriter, r *http.Request) (*State, error) {
	st, err := f.Load(w, r, StepReset)
	if err != nil {
		return nil, err
	}
	if !st.A.Flow.Reset {
		return nil, web.Forbidden()
	}
	return st, nil
}

// FinishReset ends a reset flow, once: of concurrent calls, one succeeds
// and the others get web.Expired. Call it before setting the password.
func (f *Flow) FinishReset(ctx context.Context, st *State) error {
	err := f.Update(ctx, st, func(fl *oidcstore.Flow) error {
		if !fl.Reset || Step(fl.Step) != StepReset {
			return errFlowMoved
		}
		fl.Step = string(StepDone) // not Done: no code is ever issued for it
		return nil
	})
	if err != nil {
		return err
	}
	_ = f.Storage.DeleteAuthRequest(ctx, st.A.ID)
	return nil
}

// RecentWithin reports whether the session verified a second factor
// within d (and within the factor window).
func (f *Flow) RecentWithin(s *session.Session, d time.Duration) bool {
	return !s.FactorAt.IsZero() && f.now().Sub(s.FactorAt) <= min(d, f.factorWindow())
}

// SignOutEverywhere ends every browser session of the user but keep (a
// session id; "" ends them all) and revokes the user's refresh tokens but
// keep's; the access tokens of the sessions ended are refused from now
// on, and with keep "" every access token issued to the user until now
// (one bound to no open session too: a refresh's, after its session
// expired). It returns how many sessions ended.
func (f *Flow) SignOutEverywhere(ctx context.Context, userID, keep string) (int, error) {
	ended, err := f.Sessions.EndUserSessions(ctx, userID, keep)
	if err != nil {
		return 0, fmt.Errorf("end the sessions of %s: %w", userID, err)
	}
	for _, id := range ended {
		if err := f.Storage.RevokeSession(ctx, id); err != nil {
			return 0, err
		}
	}
	if _, err := f.Store.RevokeUserRefreshTokens(ctx, userID, keep, f.now()); err != nil {
		return 0, fmt.Errorf("revoke the refresh tokens of %s: %w", userID, err)
	}
	if keep == "" {
		// Last: what was issued while the above ran is refused too.
		if err := f.Storage.RevokeUserAccessTokens(ctx, userID); err != nil {
			return 0, err
		}
	}
	return len(ended), nil
}

// SetPassword stores u's new password hash with its audit event
// (password.changed, or password.reset after a forgotten-password link)
// and the email that tells the user, in one transaction. The caller wakes
// the outbox worker.
func (f *Flow) SetPassword(r *http.Request, u store.User, phc string, reset bool, supportURL string) error {
	ctx := r.Context()
	now := f.now()
	lang := templates.UserLang(u.Locale)
	subject, text, html, err := f.Web.Templates.Email(lang, "password_changed", templates.PasswordChangedEmail{
		GivenName: u.GivenName, Reset: reset, When: templates.FormatWhen(now, lang), SupportURL: supportURL,
	})
	if err != nil {
		return err
	}
	typ := "password.changed"
	if reset {
		typ = "password.reset"
	}
	return f.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.SetPassword(ctx, u.ID, phc, now); err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(ctx, f.Event(r, store.AuditEvent{Type: typ, ActorID: u.ID, UserID: u.ID})); err != nil {
			return err
		}
		if u.Email == "" {
			return nil
		}
		return notify.EnqueueEmail(ctx, tx, "password_changed:"+uuid.NewString(),
			notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: lang}, now)
	})
}

// passwordStillValid refuses to end a sign-in whose password was given
// before the password changed (a browser half-way through its sign-in
// when the user changed or reset the password elsewhere): back to the
// password page. Step-ups and added methods continue a session, which the
// change ended or kept on purpose.
func (f *Flow) passwordStillValid(r *http.Request, fl oidcstore.Flow) error {
	if fl.PasswordAt.IsZero() || fl.StepUp || fl.AddMethod || fl.UserID == "" {
		return nil
	}
	creds, err := f.Store.ListCredentials(r.Context(), fl.UserID, store.CredPassword)
	if err != nil {
		return web.Unavailable(err)
	}
	if len(creds) > 0 && creds[0].CreatedAt.After(fl.PasswordAt) {
		return web.Expired()
	}
	return nil
}
