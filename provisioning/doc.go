// Package provisioning will hold account requests: intake (hosted form and
// JSON API), validation rules, the queue with its due dates, approval by
// support admins, the copy of mandates from a reference account, and the
// welcome and confirmation emails through the outbox.
//
// It depends on idp/store, idp/notify and idp/audit, never on the HTTP or
// sign-in flow code of idp.
package provisioning
