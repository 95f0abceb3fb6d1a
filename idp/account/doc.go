// Package account serves the Security page (/account) of a signed-in
// user: the methods with their names and dates, "add a method", remove a
// method (never the last), new recovery codes. Sensitive changes need a
// second factor verified within the flow's factor window; the pages sign
// in through Sésame's own client, like any relying party. The password
// change (password.go) needs a factor within five minutes and signs the
// user's other sessions out.
//
// It stands on idp/flow, idp/web and idp/users; it never calls the
// password or factor pages.
package account
