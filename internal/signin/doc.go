// Package signin is a scripted browser and relying party for the
// multi-node tests and cmd/sesame-bench: it runs authorize → password →
// second factor (each step on a node of its choice), then the token,
// refresh, client-credentials, introspection and userinfo calls, over
// real HTTP. It knows the pages only by their contract (form#login,
// form#mfa, DESIGN §5), never Sésame's packages.
package signin
