// Package flow is the one owner of a sign-in. It decides every step after
// the authorization request: whether the browser's session answers it,
// when a second factor is needed again (step-up), the MFA gate (enroll or
// challenge), how wrong codes void a challenge, the class a client asks for (no code
// below urn:sesame:acr:phishing-resistant when it is asked: a passkey is
// registered first), and the end: the session
// starts or continues and the browser goes to op.AuthCallbackURL, called
// here only, behind the callback guard.
//
// Pages (idp/login, idp/mfa, idp/account) report to it — "password ok",
// "factor verified", "wrong code" — and never call one another. The
// flow's state lives in the auth request (oidcstore.Flow) and changes only
// by atomic updates. A reset flow (password.go) asks for a second factor
// for a forgotten password and ends on the new-password page, never with a
// code; SignOutEverywhere ends a user's sessions and revokes their tokens.
package flow
