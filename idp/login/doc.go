// Package login holds the password step, account activation, the logout
// pages and the forgotten password (password.go): the request page (the
// same answer and time budget whether the account exists), the emailed
// single-use link, and the new password once the flow has verified a
// second factor (flow.StartReset, flow.LoadReset).
//
// It must not know concrete store or ephemeral backends, nor import the
// factor pages (idp/mfa): the second factor runs in a flow.
package login
