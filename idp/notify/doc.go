// Package notify is the transactional outbox: emails and text messages are
// written to the durable store in the same transaction as the change that
// causes them (EnqueueEmail, EnqueueSMS), and a Worker delivers them later
// through a Sender per kind (SMTPSender for email; TwilioSender or
// WebhookSender for SMS; LogSender when nothing is configured).
// Worker.Drain stops a worker between messages (the one being sent is sent
// and recorded); cancelling its context interrupts a send instead.
//
// # Delivery guarantees
//
// A message rolled back with its transaction is never sent. A committed
// message is claimed by one worker for a lease (store.ClaimOutbox), sent,
// then marked sent: exactly once in the normal case. If a worker dies after
// the claim and before the send, another worker claims the message again
// once the lease has run out. If it dies (or loses the database) between a
// successful send and MarkOutboxSent, the message is sent a second time
// after the lease: delivery is at least once. Every email therefore carries
// a Message-ID made from its idempotency key (<key@sesame>), so that a
// receiving side can drop the duplicate. A worker stops sending a batch
// before its lease runs out, so that two live workers do not send the same
// message.
//
// A failed attempt is retried with exponential backoff and jitter (30 s,
// 1 min, 2 min, … capped at 1 h); a permanent failure (ErrPermanent: a bad
// address, a 5xx answer to RCPT or DATA) is not retried; after MaxAttempts the
// worker gives up. A message given up is kept, with its next attempt a
// century away and the reason in its last error, for support to look at.
//
// SMS carry codes that live minutes: a 5xx from the gateway is retried
// after 5 s doubled (capped at 1 min), a 4xx is permanent, and a text whose
// SMS.ExpiresAt has passed is given up instead of being sent late. The
// webhook carries the idempotency key, so a gateway can drop the duplicate
// of an at-least-once delivery; Twilio's API has no such key, so a worker
// dying in the middle of a request may, after the lease, send that text
// twice.
//
// # Secrets
//
// Bodies carry activation links and one-time codes: nothing here logs a
// body, nor a password. The log sender (LogSender, the embedded default)
// records only that a message would have been sent: with it, nothing
// reaches users.
//
// This package knows the store contract (idp/store) and no concrete backend,
// nor HTTP, flows or configuration files: cmd/ builds the senders and the
// worker from the configuration and starts it.
package notify
