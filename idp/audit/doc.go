// Package audit records security events (sign-ins, failures, enrollments,
// token reuse, administrative changes) in the durable store, with the
// request id of the HTTP request that caused them. It knows nothing of HTTP.
package audit
