// Package oidcstore adapts the durable store (idp/store) and the ephemeral
// store (idp/ephemeral) to zitadel/oidc's op.Storage, with the optional
// interfaces Sésame supports (client credentials, userinfo from the
// request, logout from the request). The signing keys come from idp/keys,
// through the small Keys interface.
//
// Authorization requests and their sign-in flow state, codes and access
// tokens live in the ephemeral store; refresh tokens, clients and keys in
// the durable one. Clients, and the users behind userinfo, introspection
// and refresh, are reused for ClientTTL and UserTTL once read
// (clientcache.go), so that the endpoints called at every token use do not
// read the database each time. It knows no concrete backend and no HTTP
// page.
//
// A failure of either store is never a verdict (unavailable.go): it is
// answered temporarily_unavailable and noted in the request's Faults, so
// that the server answers 503 whatever zitadel/oidc made of it. A code or
// a refresh token whose exchange failed that way stays usable
// (ReleaseCode; a rotation commits only after its access token is stored,
// and one that did not commit deletes it).
package oidcstore
