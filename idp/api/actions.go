package api

import (
	"context"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// Action is one of the API's user actions offered to another caller (the
// support console's user lookup): the same operation, email and audit
// event as the route POST /users/{id}/{Name}.
type Action struct {
	Name    string // disable, enable, close, unlock, reset-factors, resend-activation
	Applies func(u store.User) bool
	// Do performs it; by carries the actor, address and request id.
	Do func(ctx context.Context, userID string, by store.AuditEvent) error
}

// Actions lists the user actions, in the order a console shows them.
func (h *Handler) Actions() []Action {
	status := func(action, change string) func(context.Context, string, store.AuditEvent) error {
		return func(ctx context.Context, id string, by store.AuditEvent) error {
			_, err := h.changeStatus(ctx, id, action, by, change)
			return err
		}
	}
	is := func(statuses ...store.UserStatus) func(store.User) bool {
		return func(u store.User) bool {
			for _, s := range statuses {
				if u.Status == s {
					return true
				}
			}
			return false
		}
	}
	return []Action{
		{Name: "disable", Applies: is(store.StatusActive, store.StatusPendingActivation),
			Do: status(users.ActionDisable, "email.account_changed.disabled")},
		{Name: "enable", Applies: is(store.StatusDisabled),
			Do: status(users.ActionEnable, "email.account_changed.enabled")},
		{Name: "close", Applies: is(store.StatusActive, store.StatusPendingActivation, store.StatusDisabled),
			Do: status(users.ActionClose, "email.account_changed.closed")},
		{Name: "unlock", Applies: is(store.StatusActive), Do: func(ctx context.Context, id string, by store.AuditEvent) error {
			u, err := h.Store.GetUser(ctx, id)
			if err != nil {
				return err
			}
			for _, account := range []string{u.Username, u.ID} {
				if err := h.Unlock(ctx, account); err != nil {
					return err
				}
			}
			by.Type, by.UserID = "user.unlocked", u.ID
			return h.Store.AppendAuditEvent(ctx, h.event(ctx, by))
		}},
		{Name: "reset-factors", Applies: is(store.StatusActive), Do: func(ctx context.Context, id string, by store.AuditEvent) error {
			_, _, err := h.Users.ResetSecondFactors(ctx, id, by, h.accountMail("email.account_changed.factors_reset"))
			h.forget("user", id)
			if err == nil {
				h.notify()
			}
			return err
		}},
		{Name: "resend-activation", Applies: is(store.StatusPendingActivation), Do: func(ctx context.Context, id string, by store.AuditEvent) error {
			_, err := h.Users.ResendActivation(ctx, id, by, h.activationMail())
			if err == nil {
				h.notify()
			}
			return err
		}},
	}
}
