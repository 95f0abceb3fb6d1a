// Package audit records security events (sign-ins, failures, enrollments,
// token reuse, administrative changes) in the durable store, with the
// request id of the HTTP request that caused them. It knows nothing of HTTP.
// An event that cannot be written is an error for the caller: the action
// it records fails rather than happening unaudited.
package audit
