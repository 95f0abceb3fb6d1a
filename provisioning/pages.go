package provisioning

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// PagesClientID is Sésame's own client for the request pages and the
// support console: they sign in through /authorize like any relying
// party (the code is never exchanged; the pages use the browser session).
const PagesClientID = "sesame-requests"

// PagesClient is the registration of the pages' client.
func PagesClient(issuer string, now time.Time) store.Client {
	return users.PageClient(PagesClientID, issuer+"/requests/callback", now)
}

// UserAction is one action of the console's user lookup (disable, close,
// reset second factors…), done by idp/users under the user's lock.
type UserAction struct {
	Name    string // the path segment: POST /console/users/{id}/{Name}
	LabelFR string
	LabelEN string
	// Applies reports whether the action is offered for u (nil: always).
	Applies func(u store.User) bool
	// Do performs it; by is the audit event (actor, address) to record.
	Do func(ctx context.Context, userID string, by store.AuditEvent) error
}

// Pages serves the request forms (/requests/new, /requests/new-scanning),
// "my requests" (/requests) and the support console (/console/…). They
// know the signed-in user from the browser session (idp/session), the
// same way the Security page does, and send anyone else to sign in
// through /authorize with PagesClientID.
type Pages struct {
	Service  *Service
	Web      *web.Kit
	Store    store.Store
	Sessions *session.Manager
	Networks session.Networks
	Issuer   string
	// FactorWindow is how recent a second factor must be for a console
	// decision (session.factor_window; 10 min when zero).
	FactorWindow time.Duration
	// BurnCode discards the authorization code given to the callback.
	BurnCode func(ctx context.Context, code string)
	// Support reports whether u holds the support right (the console).
	// Nil: nobody does.
	Support func(ctx context.Context, u store.User) (bool, error)
	// UserActions are offered in the console's user lookup.
	UserActions []UserAction
	Logger      *slog.Logger
	Now         func() time.Time
}

func (h *Pages) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// Routes mounts the pages.
func (h *Pages) Routes(mux *http.ServeMux) {
	mux.Handle("GET /requests", h.Web.Handle(h.myRequests))
	mux.Handle("GET /requests/callback", h.Web.Handle(h.callback))
	mux.Handle("GET /requests/new", h.Web.Handle(h.newPerson))
	mux.Handle("POST /requests/new", h.Web.Handle(h.submitPerson))
	mux.Handle("GET /requests/new-scanning", h.Web.Handle(h.newScanning))
	mux.Handle("POST /requests/new-scanning", h.Web.Handle(h.submitScanning))
	mux.Handle("GET /console/requests", h.Web.Handle(h.queue))
	mux.Handle("GET /console/requests/{id}", h.Web.Handle(h.detail))
	mux.Handle("POST /console/requests/{id}/approve", h.Web.Handle(h.approve))
	mux.Handle("POST /console/requests/{id}/reject", h.Web.Handle(h.reject))
	mux.Handle("GET /console/users", h.Web.Handle(h.users))
	mux.Handle("POST /console/users/{id}/{action}", h.Web.Handle(h.userAction))
}

// ---- who is signed in ----

// errSignIn: the handler has sent the browser to sign in.
var errSignIn = errors.New("provisioning: sign-in started")

func handled(err error) error {
	if errors.Is(err, errSignIn) {
		return nil
	}
	return err
}

// signIn sends the browser to /authorize with the pages' client; back at
// the callback, it returns to the page it asked for. fresh forces the
// password and a second factor again (prompt=login, max_age=0).
func (h *Pages) signIn(w http.ResponseWriter, r *http.Request, fresh bool) error {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	q := url.Values{
		"client_id":             {PagesClientID},
		"redirect_uri":          {h.Issuer + "/requests/callback"},
		"response_type":         {"code"},
		"scope":                 {"openid"},
		"state":                 {base64.RawURLEncoding.EncodeToString(secret[:9]) + "." + pageOf(r)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if l := h.Web.Lang(w, r, nil, ""); l != "" {
		q.Set("ui_locales", l)
	}
	if fresh {
		q.Set("prompt", "login")
		q.Set("max_age", "0")
	}
	http.Redirect(w, r, h.Web.Path("/authorize")+"?"+q.Encode(), http.StatusSeeOther)
	return errSignIn
}

// pageOf is the page to come back to after a sign-in started by r: the
// page itself, or for a POST the page its form was on.
func pageOf(r *http.Request) string {
	p := r.URL.Path
	if r.Method == http.MethodGet {
		if r.URL.RawQuery != "" && len(r.URL.RawQuery) < 512 {
			return p + "?" + r.URL.RawQuery
		}
		return p
	}
	switch {
	case strings.HasSuffix(p, "/approve"), strings.HasSuffix(p, "/reject"):
		return p[:strings.LastIndexByte(p, '/')]
	case strings.Contains(p, "/console/users/"):
		return p[:strings.Index(p, "/console/users/")] + "/console/users"
	}
	return p
}

// returnPath is the page a sign-in started from, when it is one of ours.
func (h *Pages) returnPath(state string) string {
	_, p, ok := strings.Cut(state, ".")
	p, query, _ := strings.Cut(p, "?")
	if !ok || strings.Contains(p, "//") || strings.ContainsAny(p, "\\#%") || strings.ContainsAny(query, "#\\") {
		return h.Web.Path("/requests")
	}
	if query != "" {
		query = "?" + query
	}
	for _, prefix := range []string{"/requests", "/console/"} {
		if strings.HasPrefix(p, h.Web.Path(prefix)) {
			return p + query
		}
	}
	return h.Web.Path("/requests")
}

// callback burns the code (the pages use the session) and returns to the
// page that asked for a sign-in.
func (h *Pages) callback(w http.ResponseWriter, r *http.Request) error {
	if code := r.URL.Query().Get("code"); code != "" && len(code) < 1024 && h.BurnCode != nil {
		h.BurnCode(r.Context(), code)
	}
	http.Redirect(w, r, h.returnPath(r.URL.Query().Get("state")), http.StatusSeeOther)
	return nil
}

// signedIn returns the signed-in user (a second factor verified on this
// network, an active account), or sends the browser to sign in.
func (h *Pages) signedIn(w http.ResponseWriter, r *http.Request) (*session.Session, store.User, error) {
	s, err := h.Sessions.Load(r)
	if errors.Is(err, session.ErrNoSession) {
		return nil, store.User{}, h.signIn(w, r, false)
	}
	if err != nil {
		return nil, store.User{}, web.Unavailable(err)
	}
	if !s.VerifiedOn(h.Networks.Of(h.Networks.ClientIP(r))) {
		return nil, store.User{}, h.signIn(w, r, false)
	}
	u, err := h.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.User{}, h.signIn(w, r, false)
	}
	if err != nil {
		return nil, store.User{}, web.Unavailable(err)
	}
	if u.Status != store.StatusActive {
		return nil, store.User{}, h.signIn(w, r, false)
	}
	return s, u, nil
}

// recent reports a second factor verified within the factor window.
func (h *Pages) recent(s *session.Session) bool {
	window := h.FactorWindow
	if window <= 0 {
		window = 10 * time.Minute
	}
	return !s.FactorAt.IsZero() && h.now().Sub(s.FactorAt) <= window
}

// support returns the signed-in support user: 403 for anyone else. A
// decision (fresh) also needs a recent second factor, else the browser is
// sent to sign in again.
func (h *Pages) support(w http.ResponseWriter, r *http.Request, fresh bool) (store.User, string, error) {
	s, u, err := h.signedIn(w, r)
	if err != nil {
		return store.User{}, "", err
	}
	lang := h.Web.Lang(w, r, nil, u.Locale)
	ok := false
	if h.Support != nil {
		if ok, err = h.Support(r.Context(), u); err != nil {
			return store.User{}, "", web.Unavailable(err)
		}
	}
	if !ok {
		return store.User{}, "", &web.PublicError{Status: http.StatusForbidden, Lang: lang,
			Title: "error.forbidden.title", Key: "console.support_only"}
	}
	if fresh && !h.recent(s) {
		return store.User{}, "", h.signIn(w, r, true)
	}
	return u, lang, nil
}

func (h *Pages) actor(r *http.Request, u store.User, admin bool) Actor {
	return Actor{UserID: u.ID, Admin: admin, IP: h.Networks.ClientIP(r).String(),
		RequestID: r.Header.Get("X-Request-Id")}
}

func (h *Pages) event(r *http.Request, typ string, actor store.User, userID string) store.AuditEvent {
	return store.AuditEvent{ID: uuid.NewString(), At: h.now(), Type: typ, ActorID: actor.ID, UserID: userID,
		IP: h.Networks.ClientIP(r).String(), RequestID: r.Header.Get("X-Request-Id")}
}

// ---- formatting ----

var toronto = func() *time.Location {
	if loc, err := time.LoadLocation("America/Toronto"); err == nil {
		return loc
	}
	return time.FixedZone("EST", -5*3600)
}()

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(toronto).Format("2006-01-02 15:04")
}

func label(lang, fr, en string) string {
	if lang == "en" && en != "" {
		return en
	}
	if fr != "" {
		return fr
	}
	return en
}

func (h *Pages) text(lang, key string, args ...any) string {
	return h.Web.Templates.T(lang, key, args...)
}

// row is a request in a list.
func (h *Pages) row(it Item, names map[string]string) templates.RequestRow {
	r := it.AccountRequest
	name := strings.TrimSpace(r.GivenName + " " + r.FamilyName)
	if r.AccountType == store.AccountScanning {
		name = r.StationName
	}
	var insts []string
	for _, in := range r.Institutions {
		n := names[in.ID]
		if n == "" {
			n = in.ID
		}
		insts = append(insts, n)
	}
	row := templates.RequestRow{
		ID: r.ID, Name: name, Email: r.Email, Institutions: strings.Join(insts, ", "),
		Status: string(r.Status), Due: formatTime(r.DueAt), Submitted: formatTime(r.CreatedAt),
		Overdue: it.Overdue, Scanning: r.AccountType == store.AccountScanning, Update: r.Kind == store.RequestUpdate,
		URL: h.Web.Path("/console/requests/" + url.PathEscape(r.ID)),
	}
	if r.Status == store.RequestRejected {
		row.Reason = r.DecisionReason
	}
	return row
}

func (h *Pages) institutionNames(ctx context.Context) (map[string]string, error) {
	all, err := h.Store.ListInstitutions(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(all))
	for _, in := range all {
		out[in.ID] = in.Name
	}
	return out, nil
}

// ---- my requests ----

func (h *Pages) myRequests(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.signedIn(w, r)
	if err != nil {
		return handled(err)
	}
	lang := h.Web.Lang(w, r, nil, u.Locale)
	page, err := h.Service.List(r.Context(), h.actor(r, u, false), Filter{Limit: 200})
	if err != nil {
		return web.Unavailable(err)
	}
	names, err := h.institutionNames(r.Context())
	if err != nil {
		return web.Unavailable(err)
	}
	p := templates.MyRequestsPage{Base: h.Web.Base(w, r, lang),
		NewURL: h.Web.Path("/requests/new"), NewScanningURL: h.Web.Path("/requests/new-scanning")}
	for _, it := range page.Requests {
		p.Requests = append(p.Requests, h.row(it, names))
	}
	return h.Web.Templates.MyRequests(w, http.StatusOK, p)
}
