// Package keys manages the token-signing keys: one life cycle
// next → active → retired per algorithm (RS256, ES256), shared by every
// node through the durable store, private keys sealed there (idp/seal).
// It publishes the JWKS and hands the active key to whoever signs.
//
// It knows the store interface and the sealer, not the OIDC storage
// adapter (idp/oidcstore), which consumes it through an interface of its
// own, nor any HTTP.
package keys
