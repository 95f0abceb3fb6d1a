package users

import (
	"context"
	"fmt"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// The "add a second method" reminder (issue 10): after the first method,
// the success page, the challenge page and the Security page offer another
// one until the user has two second factors (recovery codes do not count).
// The user may dismiss it for AddMethodSnooze. A dismissal is an audit
// event (EventAddMethodDismissed), so it is kept in the durable store with
// the user, survives any browser, and the security team sees who declined
// a backup method.

// AddMethodSnooze is how long a dismissal of the reminder lasts.
const AddMethodSnooze = 30 * 24 * time.Hour

// EventAddMethodDismissed is the audit event of a dismissal.
const EventAddMethodDismissed = "mfa.add_method_dismissed"

// AddMethodDue reports whether the reminder is shown to the user at now:
// fewer than two second factors, and no dismissal in the last
// AddMethodSnooze.
func AddMethodDue(ctx context.Context, st store.Store, userID string, now time.Time) (bool, error) {
	factors, err := SecondFactors(ctx, st, userID)
	if err != nil {
		return false, err
	}
	if len(factors) >= 2 {
		return false, nil
	}
	ev, err := st.ListAuditEvents(ctx, store.AuditFilter{UserID: userID, Type: EventAddMethodDismissed, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("add-method reminder of %s: %w", userID, err)
	}
	if len(ev) > 0 && now.Before(ev[0].At.Add(AddMethodSnooze)) {
		return false, nil
	}
	return true, nil
}

// DismissAddMethod records that the user of e dismissed the reminder at
// e.At (e carries the id, time and address; its type is set here).
func DismissAddMethod(ctx context.Context, st store.Store, e store.AuditEvent) error {
	e.Type = EventAddMethodDismissed
	e.ActorID = e.UserID
	if err := st.AppendAuditEvent(ctx, e); err != nil {
		return fmt.Errorf("dismiss the add-method reminder of %s: %w", e.UserID, err)
	}
	return nil
}
