// Package templates holds what Sésame shows to people: the hosted pages
// (pages/*.html), the emails (emails/*.{txt,html}), the French and English
// messages (locales/*.json) and the static CSS, JavaScript and images
// (static/), all embedded in the binary.
//
// New parses one template set per page, per email and per language at
// start-up and fails fast when a file, or a message used by a template, is
// missing in either language. Handlers render through typed methods (Login,
// MFAChallenge, …) that write into a buffer first, so a template error never
// produces half a page. An fs.FS given to New can replace any embedded file
// (branding).
//
// The pages work without JavaScript and under a strict Content-Security-Policy
// (script-src 'self'; style-src 'self'; img-src 'self' data:): no inline
// script, no <style> element, no style attribute.
//
// This package knows nothing of the store, sessions or flows: it receives
// ready-made values (keys of messages, URLs, formatted dates) and renders them.
package templates
