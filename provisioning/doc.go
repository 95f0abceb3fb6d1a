// Package provisioning holds account requests: the rules of the "add a
// user account" procedure, the queue with its due dates, approval by
// support admins (which creates or updates the account, copies mandates
// from a reference account and sends the welcome email) and rejection.
// The HTTP layers (idp/api for /api/v1/account-requests, the request
// pages and the support console) call a *Service; they never write
// account requests themselves.
//
// Entry points, each with the Actor that asks (a signed-in user, or a
// client token with sesame:admin; Admin set by the caller once it checked
// the support right or scope):
//
//   - Submit(ctx, actor, Request) → Result{ID, Status, DueAt, Kind, Warnings}:
//     every rule at once. Errors: *ForbiddenError (403, names the
//     institution where the requester lacks account_requests),
//     *ValidationError (422, Problems with Field, Code, Message in English
//     and French; nothing stored), *PendingError (409, the pending
//     request's id; errors.Is(err, ErrPending)).
//   - List(ctx, actor, Filter{Status, InstitutionID, Overdue, Cursor}) → Page:
//     oldest due first; admins see all, requesters their own.
//   - Get(ctx, actor, id) → Detail: the request, each rule's Verdict now,
//     the reference account and its mandates at the requested institutions.
//     ErrNotFound for someone else's request.
//   - Approve(ctx, admin, id, grantRights) → Decision{Status, UserID}: one
//     transaction; ErrDecided when another decision came first (409).
//   - Reject(ctx, admin, id, reason): emails the requester the reason.
//   - Counts(ctx): requests by status and overdue, for the metrics.
//   - Institutions(ctx, actor), Occupations(), Features(occupation),
//     DueAt(t): what the forms and the claims need.
//
// Due dates: submission plus three business days (Monday–Friday, without
// the holidays of config provisioning.holidays, Québec's statutory ones by
// default: see QuebecHolidays), in America/Toronto.
//
// The welcome email goes through the outbox with a follow-up: the store
// queues the requester's confirmation in the transaction that marks the
// welcome sent, and completes the request then (store.Tx.MarkOutboxSent).
//
// It depends on idp/store, idp/notify, idp/audit, idp/users and templates,
// never on the HTTP or sign-in flow code of idp (flow, login, mfa).
package provisioning
