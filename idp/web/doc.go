// Package web is the page kit every hosted page and the management API
// use: the page language, the data every page carries, the CSRF check, the
// error page, and Handle, the one adapter from a handler that returns an
// error to an HTTP answer (the error page for pages, problem+json for the
// API).
//
// It knows the browser (cookies, forms, languages), never the sign-in
// flow, the stores or a factor.
package web
