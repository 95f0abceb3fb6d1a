package session

import (
	"net/http"
	"time"
)

const (
	deviceCookie = "sesame_device"
	// deviceMaxAge is the device cookie's lifetime: 400 days, the most
	// browsers keep a cookie. Whether the device is known for an account is
	// decided by the regulator (regulate.device_ttl), not by the cookie.
	deviceMaxAge = 400 * 24 * time.Hour
)

// Device returns the browser's device cookie, "" when it has none. A
// browser keeps it after a successful sign-in so that the throttle judges
// it on its own failures, never on a stranger's (see idp/regulate). The
// value is a secret: use it only through its hash.
func (m *Manager) Device(r *http.Request) string {
	if c, err := r.Cookie(m.name(deviceCookie)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	return ""
}

// RememberDevice gives the browser a device cookie after a success,
// keeping the value it has (its lifetime renewed), and returns the value
// for regulate.Regulator.Succeed.
func (m *Manager) RememberDevice(w http.ResponseWriter, r *http.Request) string {
	v := m.Device(r)
	if v == "" {
		v = random()
		// Make it visible to the rest of this request too.
		r.AddCookie(&http.Cookie{Name: m.name(deviceCookie), Value: v})
	}
	m.setCookie(w, deviceCookie, v, int(deviceMaxAge.Seconds()))
	return v
}
