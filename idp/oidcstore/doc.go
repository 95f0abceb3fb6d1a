// Package oidcstore adapts the durable store (idp/store) and the ephemeral
// store (idp/ephemeral) to zitadel/oidc's op.Storage, with the optional
// interfaces Sésame supports (client credentials, userinfo from the
// request, logout from the request). The signing keys come from idp/keys,
// through the small Keys interface.
//
// Authorization requests and their sign-in flow state, codes and access
// tokens live in the ephemeral store; refresh tokens, clients and keys in
// the durable one. It knows no concrete backend and no HTTP page.
package oidcstore
