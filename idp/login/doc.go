// Package login holds the password step, account activation and the logout pages.
//
// It is filled in by the issue that needs it; it must not know concrete
// store or ephemeral backends.
package login
