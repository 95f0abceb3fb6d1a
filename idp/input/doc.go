// Package input checks text that comes from outside — a form field, a
// query parameter, a JSON field, a CLI flag — before it reaches a store:
// valid UTF-8, no NUL or other control character, bounded length.
// PostgreSQL refuses 0x00 in text and SQLite keeps it: checking here gives
// the same answer on both.
//
// It is the one place that says what text is acceptable; the page kit
// (idp/web), the OAuth endpoints (idp) and the domain operations
// (idp/users) call it. It imports nothing of the project.
package input
