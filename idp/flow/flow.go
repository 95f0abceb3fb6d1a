package flow

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
)

// Step is where a flow stands after the password.
type Step string

const (
	StepPassword      Step = ""               // not past the password
	StepEnroll        Step = "enroll"         // no second factor yet: enrollment is forced
	StepChallenge     Step = "challenge"      // a second factor must be verified
	StepVerified      Step = "verified"       // a factor was verified (or the flow adds a method): may finish
	StepRecoveryEmpty Step = "recovery_empty" // the last recovery code was used: new codes first
	StepDone          Step = "done"
)

// The pages of the steps.
const (
	PathPassword  = "/login"
	PathSetup     = "/mfa/setup"
	PathChallenge = "/mfa/challenge"
	// PathPasskey registers a passkey: where a flow goes when the client
	// asks for ACRPhishingResistant and the user verified another factor.
	PathPasskey = "/mfa/webauthn"
)

// DefaultMaxFailures wrong codes void a challenge.
const DefaultMaxFailures = 5

// Flow owns the sign-ins. Fill the fields, then use it from any goroutine.
type Flow struct {
	Store    store.Store
	Storage  *oidcstore.Storage
	Sessions *session.Manager
	Networks session.Networks
	Web      *web.Kit
	// Provider answers auth requests: the callback and OAuth errors.
	Provider op.OpenIDProvider
	// FactorWindow is how recent a second factor must be for a sensitive
	// action (default 10 minutes).
	FactorWindow time.Duration
	// MaxFailures wrong codes void a challenge (default 5).
	MaxFailures int
	// Regulator limits the auth requests one network may create.
	Regulator *regulate.Regulator
	// SecondFactors lists the user's verified second factors (the gate).
	SecondFactors func(ctx context.Context, userID string) ([]store.Credential, error)
	// Passkeys reports whether passkeys can be registered (the issuer is a
	// host name); without them acr_values asking for
	// ACRPhishingResistant are unmet.
	Passkeys func() bool
	Logger   *slog.Logger
	Now      func() time.Time
	Audit    func(ctx context.Context, e store.AuditEvent) error
}

// State is a flow past the password, loaded for a page.
type State struct {
	A    *oidcstore.AuthRequest
	User store.User
	// Lang is the page language (ui_locales, the user's locale…).
	Lang string
}

// Step is the flow's step.
func (st *State) Step() Step { return Step(st.A.Flow.Step) }

// NeedsPasskey reports whether the client asks for ACRPhishingResistant
// and the flow has not verified a passkey or security key yet: no code is
// issued before one is verified (or registered).
func (st *State) NeedsPasskey() bool { return !satisfied(st.A, st.A.Flow.Factors) }

// satisfied reports whether the factors verified (RFC 8176 names) reach the
// acr_values of a.
func satisfied(a *oidcstore.AuthRequest, factors []string) bool {
	return Required(a.ACRValues) != ACRPhishingResistant || ACROf(ParseAMR(factors)) == ACRPhishingResistant
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC()
	}
	return time.Now().UTC()
}

func (f *Flow) maxFailures() int {
	if f.MaxFailures > 0 {
		return f.MaxFailures
	}
	return DefaultMaxFailures
}

func (f *Flow) factorWindow() time.Duration {
	if f.FactorWindow > 0 {
		return f.FactorWindow
	}
	return 10 * time.Minute
}

// Event fills an audit event's id, time and address.
func (f *Flow) Event(r *http.Request, e store.AuditEvent) store.AuditEvent {
	e.ID = uuid.NewString()
	e.At = f.now()
	e.IP = f.Networks.ClientIP(r).String()
	return e
}

// audit records e; an error fails the action it records.
func (f *Flow) audit(r *http.Request, e store.AuditEvent) error {
	if f.Audit != nil {
		return f.Audit(r.Context(), f.Event(r, e))
	}
	return nil
}

// URL is a step's page for a flow, with extra query pairs.
func (f *Flow) URL(path string, a *oidcstore.AuthRequest, extra ...string) string {
	q := url.Values{"flow": {a.ID}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return f.Web.Path(path) + "?" + q.Encode()
}

// network is the browser's network (DESIGN §4).
func (f *Flow) network(r *http.Request) string { return f.Networks.Of(f.Networks.ClientIP(r)) }

// errFlowMoved: a concurrent request changed the flow first.
var errFlowMoved = errors.New("flow: changed by another request")

// update changes the flow atomically; a vanished or expired request is
// web.Expired.
func (f *Flow) update(ctx context.Context, id string, fn func(a *oidcstore.AuthRequest) error) (*oidcstore.AuthRequest, error) {
	a, err := f.Storage.UpdateAuthRequest(ctx, id, fn)
	return a, f.storageErr(err)
}

func (f *Flow) storageErr(err error) error {
	var nf interface{ IsNotFound() }
	var pe *web.PublicError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf), errors.Is(err, errFlowMoved):
		return web.Expired()
	case errors.As(err, &pe):
		return err
	}
	return web.Unavailable(err)
}

// AllowRequest is asked before an unauthenticated request stores a new
// auth request: one network may create only so many (regulate.requests
// per regulate.request_window).
func (f *Flow) AllowRequest(w http.ResponseWriter, r *http.Request) error {
	if f.Regulator == nil {
		return nil
	}
	v, err := f.Regulator.AllowRequest(r.Context(), f.Networks.ClientIP(r))
	if err != nil {
		return web.Unavailable(err)
	}
	if !v.Allowed {
		return web.Throttled(f.Web.Lang(w, r, nil, ""), v.RetryAfter)
	}
	return nil
}

// Request loads the auth request named by the "flow" parameter.
func (f *Flow) Request(r *http.Request) (*oidcstore.AuthRequest, error) {
	a, err := f.Storage.AuthRequest(r.Context(), r.FormValue("flow"))
	if err != nil {
		return nil, f.storageErr(err)
	}
	return a, nil
}

// ---- the start: the session answers, or the password ----

// Start is the first step of an auth request in this browser: when the
// browser's session answers it, Start has redirected (to the callback, or
// to a step-up) and returns true; otherwise the password page follows.
func (f *Flow) Start(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest) (bool, error) {
	s, err := f.Sessions.Load(r)
	switch {
	case err == nil:
		u, verdict, err := f.sessionVerdict(r, a, s)
		if err != nil {
			return true, err
		}
		switch verdict {
		case sessionOK:
			return true, f.complete(w, r, a, u, s)
		case sessionNewNetwork, sessionWeakACR:
			return true, f.stepUp(w, r, a, u, s)
		}
	case !errors.Is(err, session.ErrNoSession):
		return true, web.Unavailable(err)
	}
	if a.HasPrompt(oidc.PromptNone) {
		f.authError(w, r, a, oidc.ErrLoginRequired())
		return true, nil
	}
	return false, nil
}

func (f *Flow) authError(w http.ResponseWriter, r *http.Request, a op.AuthRequest, err error) {
	op.AuthRequestError(w, r, a, err, f.Provider)
}

// Verdicts on a session for an auth request.
const (
	sessionNo         = iota // sign in again
	sessionOK                // answer from the session
	sessionNewNetwork        // the session holds, but the browser is on a new network: second factor again
	sessionWeakACR           // the session holds, but the client asks for a higher acr: second factor again
)

// sessionVerdict tells whether the browser's session may answer this
// request: same user as any id_token_hint, within max_age, no
// prompt=login, an active account — and the acr asked for, with a second
// factor already verified from the browser's current network
// (sessionWeakACR, sessionNewNetwork otherwise: a step-up).
func (f *Flow) sessionVerdict(r *http.Request, a *oidcstore.AuthRequest, s *session.Session) (store.User, int, error) {
	switch {
	case a.HasPrompt(oidc.PromptLogin),
		a.MaxAge != nil && f.now().Sub(s.AuthTime) > maxAge(*a.MaxAge),
		a.HintSubject != "" && a.HintSubject != s.UserID:
		return store.User{}, sessionNo, nil
	}
	u, err := f.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, sessionNo, nil
	}
	if err != nil {
		return store.User{}, sessionNo, web.Unavailable(err)
	}
	if u.Status != store.StatusActive {
		return store.User{}, sessionNo, nil
	}
	// A session without a second factor (an account in its grace period)
	// ends with the grace period.
	if !ParseAMR(s.AMR).MultiFactor() && !f.now().Before(u.MFAGraceUntil) {
		return store.User{}, sessionNo, nil
	}
	if !ParseAMR(s.AMR).MultiFactor() && !ACR(s.ACR).Satisfies(a.ACRValues) {
		// A grace-period session: the password again, then the gate.
		return store.User{}, sessionNo, nil
	}
	if !s.VerifiedOn(f.network(r)) {
		return u, sessionNewNetwork, nil
	}
	if !ACR(s.ACR).Satisfies(a.ACRValues) {
		return u, sessionWeakACR, nil
	}
	return u, sessionOK, nil
}

// maxAge converts max_age without overflowing (a century is "any").
func maxAge(seconds uint) time.Duration {
	const limit = 100 * 365 * 24 * 3600
	return time.Duration(min(seconds, limit)) * time.Second
}

// complete answers the auth request from the browser's session.
func (f *Flow) complete(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, s *session.Session) error {
	f.Sessions.Browser(w, r)
	browser := f.Sessions.BrowserHash(r)
	a, err := f.update(r.Context(), a.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done {
			return errFlowMoved
		}
		a.Flow = oidcstore.Flow{
			Browser: browser, UserID: u.ID, Step: string(StepDone), Done: true,
			AuthTime: s.AuthTime, AMR: s.AMR, ACR: s.ACR, SessionID: s.ID,
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.toCallback(w, r, a)
	return nil
}

// stepUp asks a signed-in browser that moved to another network, or whose
// client asks for a higher acr than the session's, for a second factor
// again, keeping its session (DESIGN §4): the flow starts past the
// password, at the gate.
func (f *Flow) stepUp(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, s *session.Session) error {
	if a.HasPrompt(oidc.PromptNone) {
		why := "a second factor is required from this network"
		if !ACR(s.ACR).Satisfies(a.ACRValues) {
			why = "the requested acr needs a second factor again"
		}
		f.authError(w, r, a, oidc.ErrInteractionRequired().WithDescription("%s", why))
		return nil
	}
	f.Sessions.Browser(w, r)
	browser := f.Sessions.BrowserHash(r)
	details := map[string]string{"network": f.network(r), "reason": "new_network"}
	if !ACR(s.ACR).Satisfies(a.ACRValues) {
		details["acr"] = string(Required(a.ACRValues))
		details["reason"] = "acr"
	}
	if err := f.audit(r, store.AuditEvent{Type: "session.step_up", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID, Details: details}); err != nil {
		return web.Unavailable(err)
	}
	return f.gate(w, r, a, u, oidcstore.Flow{Browser: browser, UserID: u.ID, PasswordAt: s.AuthTime, StepUp: true, SessionID: s.ID})
}

// ---- the password ----

// PasswordOK is the password page's report: the password of u is right.
// The flow starts past the password (the wrong codes of this user in this
// browser are forgotten) and goes to the gate.
func (f *Flow) PasswordOK(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User) error {
	f.Sessions.Browser(w, r)
	browser := f.Sessions.BrowserHash(r)
	// The password again: a voided challenge may start over.
	if err := f.clearFailures(r, u.ID, browser, ""); err != nil {
		return err
	}
	return f.gate(w, r, a, u, oidcstore.Flow{Browser: browser, UserID: u.ID, PasswordAt: f.now()})
}

// gate is the only way from a password to a code: a challenge when the
// user has a second factor, enrollment when not (or, during a dated grace
// period, the password alone — unless the client asks for our acr).
func (f *Flow) gate(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, start oidcstore.Flow) error {
	factors, err := f.SecondFactors(r.Context(), u.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	begin := func(fl *oidcstore.Flow) error {
		*fl = start
		return nil
	}
	if Required(a.ACRValues) == ACRPhishingResistant && (f.Passkeys == nil || !f.Passkeys()) {
		f.audit(r, store.AuditEvent{Type: "login.acr_unmet", UserID: u.ID, ClientID: a.ClientID})
		f.authError(w, r, a, &oidc.Error{ErrorType: "unmet_authentication_requirements",
			Description: "passkeys are not available on this server"})
		return nil
	}
	switch {
	case len(factors) > 0:
		start.Step = string(StepChallenge)
	case f.now().Before(u.MFAGraceUntil):
		if Required(a.ACRValues) != ACRNone {
			if err := f.audit(r, store.AuditEvent{Type: "login.acr_unmet", UserID: u.ID, ClientID: a.ClientID}); err != nil {
				return web.Unavailable(err)
			}
			f.authError(w, r, a, &oidc.Error{ErrorType: "unmet_authentication_requirements",
				Description: "this account has no second factor yet"})
			return nil
		}
		// An administrator granted this account a dated grace period.
		if err := f.audit(r, store.AuditEvent{Type: "mfa.grace_used", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
			Details: map[string]string{"until": u.MFAGraceUntil.Format(time.RFC3339)}}); err != nil {
			return web.Unavailable(err)
		}
		return f.finish(w, r, a, u, begin)
	default:
		start.Step = string(StepEnroll)
	}
	a, err = f.update(r.Context(), a.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done {
			return errFlowMoved
		}
		return begin(&a.Flow)
	})
	if err != nil {
		return err
	}
	if Step(start.Step) == StepChallenge {
		http.Redirect(w, r, f.URL(PathChallenge, a), http.StatusSeeOther)
	} else {
		http.Redirect(w, r, f.URL(PathSetup, a), http.StatusSeeOther)
	}
	return nil
}

// ---- the second factor ----

// Load returns the flow of this browser past the password, at one of
// steps, with its active user. A flow sent back to the password step
// redirects there.
func (f *Flow) Load(w http.ResponseWriter, r *http.Request, steps ...Step) (*State, error) {
	a, err := f.Request(r)
	if err != nil {
		return nil, err
	}
	browser := f.Sessions.BrowserHash(r)
	if a.Flow.Done || a.Flow.Browser == "" || a.Flow.Browser != browser {
		return nil, web.Expired()
	}
	if a.Flow.UserID == "" {
		return nil, f.toPassword(a)
	}
	if !slices.Contains(steps, Step(a.Flow.Step)) || a.Flow.Reset && slices.Contains(steps, StepEnroll) {
		// (A reset flow never enrolls a method.)
		return nil, web.Forbidden()
	}
	u, err := f.Store.GetUser(r.Context(), a.Flow.UserID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, web.Unavailable(err)
	}
	if err != nil || u.Status != store.StatusActive {
		return nil, &web.PublicError{Status: http.StatusForbidden, Title: "error.account_disabled.title", Key: "error.account_disabled.message"}
	}
	return &State{A: a, User: u, Lang: f.Web.Lang(w, r, a.UILocales, u.Locale)}, nil
}

// toPassword is the answer that sends the browser to the password page
// of a.
func (f *Flow) toPassword(a *oidcstore.AuthRequest) error {
	target := f.URL(PathPassword, a)
	return &web.PublicError{Status: http.StatusSeeOther, Key: "error.challenge_void",
		Render: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, http.StatusSeeOther) }}
}

// Update changes a loaded flow atomically (a factor's pending state): fn
// sees the current flow and must check it still stands where the page
// expects; st.A is the result.
func (f *Flow) Update(ctx context.Context, st *State, fn func(fl *oidcstore.Flow) error) error {
	a, err := f.update(ctx, st.A.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done || a.Flow.UserID != st.User.ID {
			return errFlowMoved
		}
		return fn(&a.Flow)
	})
	if err != nil {
		return err
	}
	st.A = a
	return nil
}

// Verified is a factor's report: m was verified for the flow's user (a
// code, or the confirmation of a new method). The flow moves to next
// (StepVerified, or StepRecoveryEmpty), and the user's wrong codes in this
// browser are forgotten.
func (f *Flow) Verified(r *http.Request, st *State, m Method, next Step) error {
	now := f.now()
	from := Step(st.A.Flow.Step)
	err := f.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
		if Step(fl.Step) != from {
			return errFlowMoved
		}
		fl.Step = string(next)
		verify(fl, m, now)
		return nil
	})
	if err != nil {
		return err
	}
	return f.clearFailures(r, st.User.ID, st.A.Flow.Browser, f.scope(st))
}

// Advance moves a flow from one of steps to next (new recovery codes after
// the last one was used).
func (f *Flow) Advance(r *http.Request, st *State, next Step, steps ...Step) error {
	return f.Update(r.Context(), st, func(fl *oidcstore.Flow) error {
		if !slices.Contains(steps, Step(fl.Step)) {
			return errFlowMoved
		}
		fl.Step = string(next)
		return nil
	})
}

// Continue ends a flow whose factor was verified; when the client asks
// for a passkey and none was verified, the browser goes to register one
// instead.
func (f *Flow) Continue(w http.ResponseWriter, r *http.Request, st *State) error {
	if st.NeedsPasskey() {
		http.Redirect(w, r, f.URL(PathPasskey, st.A), http.StatusSeeOther)
		return nil
	}
	return f.finish(w, r, st.A, st.User, func(fl *oidcstore.Flow) error {
		if fl.UserID != st.User.ID || Step(fl.Step) != StepVerified {
			return errFlowMoved
		}
		return nil
	})
}

// Complete is Verified then Continue in one step: a factor was verified at
// the challenge and the sign-in ends — unless the client asks for a
// passkey and m is not one: then the flow moves to StepVerified and the
// browser goes to register a passkey, with no code before.
func (f *Flow) Complete(w http.ResponseWriter, r *http.Request, st *State, m Method) error {
	if !satisfied(st.A, append(slices.Clone(st.A.Flow.Factors), string(m))) {
		if err := f.Verified(r, st, m, StepVerified); err != nil {
			return err
		}
		http.Redirect(w, r, f.URL(PathPasskey, st.A), http.StatusSeeOther)
		return nil
	}
	now := f.now()
	from := Step(st.A.Flow.Step)
	err := f.finish(w, r, st.A, st.User, func(fl *oidcstore.Flow) error {
		if fl.UserID != st.User.ID || Step(fl.Step) != from {
			return errFlowMoved
		}
		verify(fl, m, now)
		return nil
	})
	if err != nil {
		return err
	}
	return f.clearFailures(r, st.User.ID, st.A.Flow.Browser, f.scope(st))
}

// verify records m, verified at now, in fl.
func verify(fl *oidcstore.Flow, m Method, now time.Time) {
	fl.Factors = append(slices.DeleteFunc(slices.Clone(fl.Factors), func(v string) bool { return v == string(m) }), string(m))
	fl.VerifiedAt = now
}

// ---- the end ----

// finish ends a sign-in whose every step succeeded: the browser's session
// starts (or continues, for a step-up or an added method), the auth
// request is done, and the browser goes to the provider's callback.
//
// Only a factor verified in this flow moves the session's factor time; a
// session continued keeps its id and its absolute end.
//
// prepare, when not nil, is the last change of the flow before its end (a
// factor verified, the password given), made in the same atomic update;
// it must check the flow still stands where the caller saw it. Without it
// the flow must be past the password for u.
func (f *Flow) finish(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, u store.User, prepare func(fl *oidcstore.Flow) error) error {
	now := f.now()
	if prepare == nil {
		prepare = func(fl *oidcstore.Flow) error {
			if fl.UserID != u.ID {
				return errFlowMoved
			}
			return nil
		}
	}
	// What the flow will hold at its end, to compute the session.
	end := *a
	if err := prepare(&end.Flow); err != nil {
		return f.storageErr(err)
	}
	if end.Flow.Reset {
		return f.resetVerified(w, r, a.ID, prepare)
	}
	if err := f.passwordStillValid(r, end.Flow); err != nil {
		return err
	}
	a = &end
	amr := AMR{}
	if !a.Flow.PasswordAt.IsZero() {
		amr = amr.With(PWD)
	}
	for _, m := range a.Flow.Factors {
		amr = amr.With(Method(m))
	}
	s := session.Session{UserID: u.ID, AuthTime: a.Flow.PasswordAt, FactorAt: a.Flow.VerifiedAt}
	if s.AuthTime.IsZero() {
		s.AuthTime = now
	}
	network := f.network(r)
	if old, err := f.Sessions.Load(r); err == nil && old.UserID == u.ID && old.AuthTime.Equal(s.AuthTime) {
		// The same sign-in goes on: its id, its end, the networks and
		// methods it verified.
		s.ID, s.CreatedAt, s.ExpiresAt = old.ID, old.CreatedAt, old.ExpiresAt
		if s.FactorAt.IsZero() {
			s.FactorAt = old.FactorAt
		}
		for _, m := range ParseAMR(old.AMR) {
			amr = amr.With(m)
		}
		s.Networks = old.Networks
	} else if err != nil && !errors.Is(err, session.ErrNoSession) {
		return web.Unavailable(err)
	}
	// The network joins those verified when a factor was verified from it
	// (or when the account has none yet: a grace period).
	if (!a.Flow.VerifiedAt.IsZero() || !amr.MultiFactor()) && !slices.Contains(s.Networks, network) {
		s.Networks = append(s.Networks, network)
		if len(s.Networks) > 16 {
			s.Networks = s.Networks[len(s.Networks)-16:]
		}
	}
	if s.ID == "" {
		s.ID = session.NewID()
	}
	s.AMR = amr.Names()
	s.ACR = string(ACROf(amr))
	if Required(a.ACRValues) == ACRPhishingResistant && ACR(s.ACR) != ACRPhishingResistant {
		// The last guard: never a code below the class the client asked
		// for (the pages send such flows to register a passkey first).
		return web.Forbidden()
	}
	a, err := f.update(r.Context(), a.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done {
			return errFlowMoved
		}
		if err := prepare(&a.Flow); err != nil {
			return err
		}
		a.Flow.Done = true
		a.Flow.Step = string(StepDone)
		a.Flow.Pending = nil
		a.Flow.AuthTime = s.AuthTime
		a.Flow.AMR = s.AMR
		a.Flow.ACR = s.ACR
		a.Flow.SessionID = s.ID
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := f.Sessions.Start(w, r, s); err != nil {
		return web.Unavailable(err)
	}
	if err := f.audit(r, store.AuditEvent{Type: "login.succeeded", ActorID: u.ID, UserID: u.ID, ClientID: a.ClientID,
		Details: map[string]string{"amr": joinSpace(s.AMR)}}); err != nil {
		return web.Unavailable(err)
	}
	f.toCallback(w, r, a)
	return nil
}

func joinSpace(v []string) string {
	out := ""
	for i, s := range v {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// toCallback sends the browser of a finished sign-in to the provider's
// callback, which issues the code: the only way there.
func (f *Flow) toCallback(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest) {
	http.Redirect(w, r, op.AuthCallbackURL(f.Provider)(r.Context(), a.ID), http.StatusFound)
}

// Guard lets the provider's callback run only for a finished sign-in, in
// the browser that did it: a forged or replayed callback URL gets an error
// page, never a code.
func (f *Flow) Guard(next http.Handler) http.Handler {
	return f.Web.Handle(func(w http.ResponseWriter, r *http.Request) error {
		a, err := f.Storage.AuthRequest(r.Context(), r.URL.Query().Get("id"))
		if err != nil {
			return f.storageErr(err)
		}
		if !a.Done() || a.Flow.Browser == "" || a.Flow.Browser != f.Sessions.BrowserHash(r) {
			return web.Expired()
		}
		next.ServeHTTP(w, r.WithContext(oidcstore.WithAuthRequest(r.Context(), a)))
		return nil
	})
}

// ---- signed-in browsers (the account pages) ----

// ErrSignInNeeded: no session verified from this network.
var ErrSignInNeeded = errors.New("flow: sign-in needed")

// SignedIn returns the browser's session when a second factor was verified
// from its current network, with its active user; ErrSignInNeeded
// otherwise.
func (f *Flow) SignedIn(r *http.Request) (*session.Session, store.User, error) {
	s, err := f.Sessions.Load(r)
	if errors.Is(err, session.ErrNoSession) {
		return nil, store.User{}, ErrSignInNeeded
	}
	if err != nil {
		return nil, store.User{}, web.Unavailable(err)
	}
	if !s.VerifiedOn(f.network(r)) {
		return nil, store.User{}, ErrSignInNeeded
	}
	u, err := f.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.User{}, ErrSignInNeeded
	}
	if err != nil {
		return nil, store.User{}, web.Unavailable(err)
	}
	if u.Status != store.StatusActive {
		return nil, store.User{}, ErrSignInNeeded
	}
	return s, u, nil
}

// Recent reports whether the session verified a second factor within the
// factor window (sensitive actions).
func (f *Flow) Recent(s *session.Session) bool {
	return !s.FactorAt.IsZero() && f.now().Sub(s.FactorAt) <= f.factorWindow()
}

// AddMethod turns a new auth request of the account pages into a flow
// that adds a method for the signed-in user (the session must be Recent),
// and sends the browser to the method choice.
func (f *Flow) AddMethod(w http.ResponseWriter, r *http.Request, a *oidcstore.AuthRequest, s *session.Session, u store.User) error {
	if !f.Recent(s) {
		return web.Forbidden()
	}
	f.Sessions.Browser(w, r)
	browser := f.Sessions.BrowserHash(r)
	a, err := f.update(r.Context(), a.ID, func(a *oidcstore.AuthRequest) error {
		if a.Flow.Done || a.Flow.UserID != "" {
			return errFlowMoved
		}
		a.Flow = oidcstore.Flow{Browser: browser, UserID: u.ID, PasswordAt: s.AuthTime, Step: string(StepVerified), AddMethod: true}
		return nil
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, f.URL(PathSetup, a), http.StatusSeeOther)
	return nil
}
