package flow

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
)

// Wrong codes are counted per user and browser (and browser session, in a
// step-up, which has no password to fall back on), across reloads and new
// auth requests: only the password, or a right code, starts a new count. The
// count is one record changed by atomic updates; an attempt is counted
// before its code is checked, so concurrent submissions cannot check more
// than MaxFailures codes.

type failures struct {
	// Wrong codes since the last success or password.
	Wrong int `json:"wrong"`
	// Pending are the attempts being checked now, by the Unix millisecond
	// after which a crashed one no longer counts.
	Pending []int64 `json:"pending,omitempty"`
}

// pendingFor bounds how long an attempt holds its place.
const pendingFor = 30 * time.Second

// failuresKey names the count (a hash: the browser hash is a secret's).
func failuresKey(userID, browser, scope string) string {
	sum := sha256.Sum256([]byte(userID + "\x00" + browser + "\x00" + scope))
	return "codetries:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// scope is what a count holds for besides the user and the browser: the
// browser session a step-up continues ("" for a flow with a password, whose
// count only the password clears). A voided step-up ends its session, so
// the next one starts a count of its own.
func (f *Flow) scope(st *State) string {
	if st.A.Flow.StepUp {
		return "session:" + st.A.Flow.SessionID
	}
	return ""
}

func (f *Flow) changeFailures(r *http.Request, key string, fn func(c *failures)) (failures, error) {
	var out failures
	err := f.Sessions.Ephemeral.Update(r.Context(), key, f.Sessions.TTL, func(old []byte) ([]byte, error) {
		var c failures
		if old != nil {
			if err := json.Unmarshal(old, &c); err != nil {
				return nil, err
			}
		}
		fn(&c)
		out = c
		return json.Marshal(c)
	})
	if err != nil {
		return failures{}, web.Unavailable(err)
	}
	return out, nil
}

// clearFailures forgets the user's wrong codes in this browser, in scope.
func (f *Flow) clearFailures(r *http.Request, userID, browser, scope string) error {
	if err := f.Sessions.Ephemeral.Delete(r.Context(), failuresKey(userID, browser, scope)); err != nil {
		return web.Unavailable(err)
	}
	return nil
}

// errBusy: as many attempts are being checked as wrong codes remain.
var errBusy = &web.PublicError{Status: http.StatusTooManyRequests, Key: "error.throttled", Retry: time.Second}

// Attempt takes a place for one code before it is checked: wrong codes
// plus attempts in progress never exceed MaxFailures, so concurrent
// submissions cannot check more codes than that. Past MaxFailures wrong
// codes the challenge is void: the answer sends the browser back to the
// password.
func (f *Flow) Attempt(w http.ResponseWriter, r *http.Request, st *State) error {
	key := failuresKey(st.User.ID, st.A.Flow.Browser, f.scope(st))
	now := f.now().UnixMilli()
	busy := false
	c, err := f.changeFailures(r, key, func(c *failures) {
		c.Pending = slices.DeleteFunc(c.Pending, func(until int64) bool { return until <= now })
		busy = c.Wrong < f.maxFailures() && c.Wrong+len(c.Pending) >= f.maxFailures()
		if !busy && c.Wrong < f.maxFailures() {
			c.Pending = append(c.Pending, now+pendingFor.Milliseconds())
		}
	})
	switch {
	case err != nil:
		return err
	case c.Wrong >= f.maxFailures():
		return f.void(w, r, st)
	case busy:
		return errBusy
	}
	return nil
}

// Failed is a factor's report of a wrong code (after Attempt). It returns
// nil when the page may ask again; at the MaxFailures-th wrong code the
// challenge is void and the answer sends the browser to the password. A
// code refused because another request of the flow just succeeded with it
// is not counted.
func (f *Flow) Failed(w http.ResponseWriter, r *http.Request, st *State, method string) error {
	if cur, err := f.Storage.AuthRequest(r.Context(), st.A.ID); err != nil {
		return f.storageErr(err)
	} else if cur.Flow.Done || cur.Flow.Step != st.A.Flow.Step || cur.Flow.UserID != st.User.ID {
		return web.Expired()
	}
	key := failuresKey(st.User.ID, st.A.Flow.Browser, f.scope(st))
	c, err := f.changeFailures(r, key, func(c *failures) {
		c.Wrong++
		if len(c.Pending) > 0 {
			c.Pending = c.Pending[1:]
		}
	})
	if err != nil {
		return err
	}
	if err := f.audit(r, store.AuditEvent{Type: "mfa.failed", UserID: st.User.ID, ClientID: st.A.ClientID,
		Details: map[string]string{"method": method, "failures": strconv.Itoa(c.Wrong)}}); err != nil {
		return web.Unavailable(err)
	}
	if c.Wrong < f.maxFailures() {
		return nil
	}
	if c.Wrong == f.maxFailures() {
		if err := f.audit(r, store.AuditEvent{Type: "mfa.challenge_voided", UserID: st.User.ID, ClientID: st.A.ClientID}); err != nil {
			return web.Unavailable(err)
		}
	}
	return f.void(w, r, st)
}

// void ends a challenge: the flow goes back to the password, and a
// step-up's browser session ends (there is no password in its flow).
func (f *Flow) void(w http.ResponseWriter, r *http.Request, st *State) error {
	if st.A.Flow.StepUp {
		f.Sessions.End(w, r)
	}
	browser := st.A.Flow.Browser
	a, err := f.update(r.Context(), st.A.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done {
			return errFlowMoved
		}
		a.Flow = oidcstore.Flow{Browser: browser, Notice: "error.challenge_void"}
		return nil
	})
	if err != nil {
		return err
	}
	return f.toPassword(a)
}
