// Package idp assembles the Sésame server: it mounts the OpenID provider,
// the hosted pages and the management API on one mux, behind the common
// middleware (request id, logging, metrics, security headers, panic
// recovery), and serves /healthz, /readyz and /metrics.
//
// It receives every dependency already built (store, ephemeral store,
// senders, metrics registry): only cmd/sesame picks concrete backends.
package idp
