package mfa

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// Recovery is the recovery-code factor: each code works once, consumed
// atomically in the durable store.
type Recovery struct {
	Store store.Store
}

var _ Factor = Recovery{}

func (Recovery) Method() string   { return "recovery" }
func (Recovery) AMR() flow.Method { return flow.OTP }

// Enrolled: an unused code is left.
func (f Recovery) Enrolled(ctx context.Context, u store.User) (bool, error) {
	n, err := f.Remaining(ctx, u.ID)
	return n > 0, err
}

// Begin: the codes are on paper.
func (Recovery) Begin(context.Context, store.User, time.Time) (Challenge, error) {
	return Challenge{}, nil
}

func (f Recovery) Verify(ctx context.Context, u store.User, code string, now time.Time) (store.Credential, error) {
	var c store.Credential
	err := f.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		c, _, err = f.VerifyInTx(ctx, tx, u, code, now)
		return err
	})
	return c, err
}

// VerifyInTx consumes a code in tx and returns how many remain.
func (f Recovery) VerifyInTx(ctx context.Context, tx store.Tx, u store.User, code string, now time.Time) (store.Credential, int, error) {
	if err := tx.ConsumeRecoveryCode(ctx, u.ID, users.HashRecoveryCode(u.ID, code), now); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Credential{}, 0, ErrCodeInvalid
		}
		return store.Credential{}, 0, err
	}
	codes, err := tx.ListRecoveryCodes(ctx, u.ID)
	if err != nil {
		return store.Credential{}, 0, err
	}
	return store.Credential{UserID: u.ID, Name: "recovery", LastUsedAt: now}, unused(codes), nil
}

// Remaining counts the user's unused codes.
func (f Recovery) Remaining(ctx context.Context, userID string) (int, error) {
	codes, err := f.Store.ListRecoveryCodes(ctx, userID)
	return unused(codes), err
}

func unused(codes []store.RecoveryCode) int {
	n := 0
	for _, c := range codes {
		if c.UsedAt.IsZero() {
			n++
		}
	}
	return n
}

// useRecovery consumes a recovery code (each works once, also under
// concurrent submissions), emails the user and tells how many remain.
func (h *Handler) useRecovery(w http.ResponseWriter, r *http.Request, st *flow.State, code string) error {
	now := h.now()
	u := st.User
	var remaining int
	err := h.Store.InTx(r.Context(), func(tx store.Tx) error {
		var err error
		if _, remaining, err = h.Recovery.VerifyInTx(r.Context(), tx, u, code, now); err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(r.Context(), h.Flow.Event(r, store.AuditEvent{Type: "mfa.recovery_used", ActorID: u.ID, UserID: u.ID, ClientID: st.A.ClientID,
			Details: map[string]string{"remaining": strconv.Itoa(remaining)}})); err != nil {
			return err
		}
		return h.email(r.Context(), tx, u, "recovery_used:"+uuid.NewString(), "recovery_code_used", templates.RecoveryCodeUsedEmail{
			GivenName: u.GivenName, When: templates.FormatWhen(now, templates.UserLang(u.Locale)), Remaining: remaining, SupportURL: h.SupportURL,
		})
	})
	if errors.Is(err, ErrCodeInvalid) {
		if err := h.failed(w, r, st, "recovery"); err != nil {
			return err
		}
		return h.renderChallenge(w, r, st, http.StatusUnprocessableEntity, "recovery", "error.recovery_invalid")
	}
	if err != nil {
		return web.Unavailable(err)
	}
	h.poke()
	if err := h.succeeded(w, r, st); err != nil {
		return err
	}
	next := flow.StepVerified
	if remaining == 0 {
		next = flow.StepRecoveryEmpty
	}
	if err := h.Flow.Verified(r, st, flow.OTP, next); err != nil {
		return err
	}
	page := templates.RecoveryUsedPage{
		Base:             h.Web.Base(w, r, st.Lang),
		Remaining:        remaining,
		RegenerateAction: h.Flow.URL("/mfa/recovery/regenerate", st.A),
	}
	if remaining > 0 {
		page.ContinueAction = h.Flow.URL("/mfa/continue", st.A)
	}
	return h.Web.Templates.RecoveryUsed(w, http.StatusOK, page)
}

// regenerateInFlow replaces the recovery codes right after a second factor
// was verified in this flow (and is required when none remain).
func (h *Handler) regenerateInFlow(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	st, err := h.Flow.Load(w, r, flow.StepVerified, flow.StepRecoveryEmpty)
	if err != nil {
		return err
	}
	codes, err := users.RegenerateRecoveryCodes(r.Context(), h.Store, st.User.ID, h.now(),
		h.Flow.Event(r, store.AuditEvent{Type: "mfa.recovery_regenerated", ActorID: st.User.ID, UserID: st.User.ID}))
	if err != nil {
		return web.Unavailable(err)
	}
	if err := h.Flow.Advance(r, st, flow.StepVerified, flow.StepVerified, flow.StepRecoveryEmpty); err != nil {
		return err
	}
	return h.Web.Templates.RecoveryCodes(w, http.StatusOK, templates.RecoveryCodesPage{
		Base:           h.Web.Base(w, r, st.Lang),
		Codes:          codes,
		ContinueAction: h.Flow.URL("/mfa/continue", st.A),
		Regenerated:    true,
	})
}
