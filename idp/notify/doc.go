// Package notify holds the outbox worker and the email (SMTP) and SMS (HTTP gateway) senders.
//
// It is filled in by the issue that needs it; it must not know concrete
// store or ephemeral backends.
package notify
