// Package api is the management API under /api/v1 (DESIGN §5): JSON in and
// out, errors as application/problem+json (RFC 9457) through web.Kit,
// bearer access tokens issued by Sésame itself, one audit event per call,
// and the OpenAPI 3.1 document of it all (openapi.json, served at
// /api/v1/openapi.json and checked against the route table by the tests).
//
// Who may call what: a client's own token (client credentials) with scope
// sesame:admin, or a signed-in support user's token with sesame:admin and
// a second factor in its amr, may call everything; a signed-in user's token
// with sesame:requests may call the account-request calls only, which show
// them their own requests.
//
// It is a handler package: it stands on idp/web, idp/users and the store,
// and never imports the other handler packages (login, mfa, account,
// provisioning's pages). What users and clients become is idp/users'
// business; the API only reads JSON, checks it and answers.
package api
