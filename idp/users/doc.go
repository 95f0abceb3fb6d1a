// Package users holds the domain operations on accounts and clients that
// the CLI, the management API and provisioning share: creating and updating
// users, password hashing and policy, importing credentials (TOTP secrets),
// removing second factors, the "add a second method" reminder
// (reminders.go), and client policy.
//
// It has no HTTP: callers map its typed errors (*InputError, ErrLastMethod,
// store.ErrNotFound, …) to exit codes or status codes. It knows the durable
// store only through its contract and never imports the handler packages
// (login, mfa, account, api, provisioning).
package users
