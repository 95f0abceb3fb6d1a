package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// userJSON is a user as the API shows it: never a secret (no password
// hash, TOTP key or recovery code).
type userJSON struct {
	ID               string       `json:"id"`
	Username         string       `json:"username"`
	Email            string       `json:"email"`
	GivenName        string       `json:"given_name"`
	FamilyName       string       `json:"family_name"`
	Locale           string       `json:"locale"`
	Status           string       `json:"status"`
	AccountType      string       `json:"account_type"`
	Occupation       string       `json:"occupation"`
	PracticeNumber   string       `json:"practice_number"`
	PrescriberNumber string       `json:"prescriber_number"`
	Phone            string       `json:"phone"`
	Support          bool         `json:"support"`
	MFAGraceUntil    *time.Time   `json:"mfa_grace_until"`
	Methods          []methodJSON `json:"methods"`
	// Memberships are the user's institutions, with mandates and rights.
	Memberships      []membershipJSON        `json:"memberships"`
	LabRegistrations []store.LabRegistration `json:"lab_registrations"`
	CreatedAt        time.Time               `json:"created_at"`
	UpdatedAt        time.Time               `json:"updated_at"`
}

// methodJSON is one sign-in method of a user, without its secret.
type methodJSON struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	Verified   bool       `json:"verified"`
	Phone      string     `json:"phone,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// userOf builds a user's JSON with its methods.
func (h *Handler) userOf(ctx context.Context, u store.User) (userJSON, error) {
	creds, err := h.Store.ListCredentials(ctx, u.ID, "")
	if err != nil {
		return userJSON{}, err
	}
	methods := []methodJSON{}
	for _, c := range creds {
		methods = append(methods, methodJSON{
			ID: c.ID, Type: string(c.Type), Name: c.Name, Verified: c.Type == store.CredPassword || !c.VerifiedAt.IsZero(),
			Phone: users.CredentialPhone(c), CreatedAt: c.CreatedAt.UTC(), LastUsedAt: optTime(c.LastUsedAt),
		})
	}
	ms, err := h.Store.ListMemberships(ctx, u.ID)
	if err != nil {
		return userJSON{}, err
	}
	memberships := []membershipJSON{}
	names := map[string]string{}
	for _, m := range ms {
		j, err := h.membershipOf(ctx, m, names)
		if err != nil {
			return userJSON{}, err
		}
		memberships = append(memberships, j)
	}
	labs, err := h.Store.ListLabRegistrations(ctx, u.ID)
	if err != nil {
		return userJSON{}, err
	}
	if labs == nil {
		labs = []store.LabRegistration{}
	}
	return userJSON{
		Memberships: memberships, LabRegistrations: labs,
		ID: u.ID, Username: u.Username, Email: u.Email, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Locale: u.Locale, Status: string(u.Status), AccountType: u.AccountType, Occupation: u.Occupation,
		PracticeNumber: u.PracticeNumber, PrescriberNumber: u.PrescriberNumber, Phone: u.Phone,
		Support: u.Support, MFAGraceUntil: optTime(u.MFAGraceUntil), Methods: methods,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}, nil
}

// userCursor is where a page of users ended.
type userCursor struct {
	After string `json:"a"`
}

func (h *Handler) searchUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	var fields []web.FieldError
	n, fe := limit(r)
	if fe != nil {
		fields = append(fields, *fe)
	}
	var cur userCursor
	if _, fe := decodeCursor(r, &cur); fe != nil {
		fields = append(fields, *fe)
	}
	text, inst := strings.TrimSpace(q.Get("q")), q.Get("institution")
	if len(inst) > 64 {
		fields = append(fields, fieldError("institution", "too_long", "at most 64 bytes"))
	}
	if len(text) > 256 {
		fields = append(fields, fieldError("q", "too_long", "at most 256 bytes"))
	}
	if len(fields) > 0 {
		return fieldErrors(fields...)
	}
	found, err := h.Store.SearchUsers(r.Context(), store.UserQuery{Text: text, InstitutionID: inst, AfterUsername: cur.After, Limit: n + 1})
	if err != nil {
		return err
	}
	out := page[userJSON]{Items: []userJSON{}}
	if len(found) > n {
		found = found[:n]
		next := encodeCursor(userCursor{After: found[n-1].Username})
		out.NextCursor = &next
	}
	for _, u := range found {
		j, err := h.userOf(r.Context(), u)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, j)
	}
	return writeJSON(w, http.StatusOK, out)
}

// pathUser loads the user of {id}: a 404 for an id that is not a UUID.
func (h *Handler) pathUser(r *http.Request) (store.User, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return store.User{}, notFound()
	}
	return h.Store.GetUser(r.Context(), id)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := h.pathUser(r)
	if err != nil {
		return err
	}
	return h.answerUser(w, r, u)
}

func (h *Handler) answerUser(w http.ResponseWriter, r *http.Request, u store.User) error {
	j, err := h.userOf(r.Context(), u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

// reasonBody is the optional body of the actions: why, for the audit log.
type reasonBody struct {
	Reason string `json:"reason"`
}

// reason reads the optional {"reason"} (at most 1000 bytes) into the
// call's audit details.
func reason(w http.ResponseWriter, r *http.Request, c *call) (store.AuditEvent, error) {
	var b reasonBody
	if err := decode(w, r, &b, true); err != nil {
		return store.AuditEvent{}, err
	}
	if len(b.Reason) > 1000 {
		return store.AuditEvent{}, fieldErrors(fieldError("reason", "too_long", "at most 1000 bytes"))
	}
	by := c.by("")
	if b.Reason != "" {
		by.Details = map[string]string{"reason": b.Reason}
	}
	return by, nil
}

func (h *Handler) disableUser(w http.ResponseWriter, r *http.Request, c *call) error {
	return h.setStatus(w, r, c, users.ActionDisable, "email.account_changed.disabled")
}

func (h *Handler) enableUser(w http.ResponseWriter, r *http.Request, c *call) error {
	return h.setStatus(w, r, c, users.ActionEnable, "email.account_changed.enabled")
}

func (h *Handler) closeUser(w http.ResponseWriter, r *http.Request, c *call) error {
	return h.setStatus(w, r, c, users.ActionClose, "email.account_changed.closed")
}

func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request, c *call, action, change string) error {
	u, err := h.pathUser(r)
	if err != nil {
		return err
	}
	by, err := reason(w, r, c)
	if err != nil {
		return err
	}
	by.IP = h.ip(r)
	if u, err = h.changeStatus(r.Context(), u.ID, action, by, change); err != nil {
		return err
	}
	return h.answerUser(w, r, u)
}

// changeStatus is users.Service.SetStatus (which revokes the refresh
// tokens) with what only the server can end: once an account is disabled
// or closed, its browser sessions and access tokens (EndSessions), also
// when it already was (a retry finishes what failed); and again before a
// disabled account is enabled, so that nothing from before the disable
// comes back (an end that failed, a sign-in racing the disable). change is
// the message key of the user's email.
func (h *Handler) changeStatus(ctx context.Context, id, action string, by store.AuditEvent, change string) (store.User, error) {
	if action == users.ActionEnable && h.EndSessions != nil {
		u, err := h.Store.GetUser(ctx, id)
		if err != nil {
			return store.User{}, err
		}
		if u.Status == store.StatusDisabled {
			if err := h.EndSessions(ctx, id); err != nil {
				// Still disabled: the agent tries again.
				return store.User{}, web.Unavailable(fmt.Errorf("end the sessions of %s before enabling it: %w", id, err))
			}
		}
	}
	u, changed, err := h.Users.SetStatus(ctx, id, action, by, h.accountMail(change))
	h.forget("user", id)
	if err != nil {
		return store.User{}, err
	}
	if changed {
		h.notify()
	}
	if action != users.ActionEnable && h.EndSessions != nil {
		if err := h.EndSessions(ctx, id); err != nil {
			// The change is committed (the account cannot sign in, its
			// refresh tokens are revoked): the answer says so, not the
			// generic 503, hence the cause logged as text, not wrapped.
			return store.User{}, &web.PublicError{Status: http.StatusServiceUnavailable, Key: "api.sessions_not_ended",
				Retry: 5 * time.Second, Err: fmt.Errorf("end the sessions of %s after %s: %s", id, action, err)}
		}
	}
	return u, nil
}

func (h *Handler) resetFactors(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := h.pathUser(r)
	if err != nil {
		return err
	}
	by, err := reason(w, r, c)
	if err != nil {
		return err
	}
	by.IP = h.ip(r)
	u, _, err = h.Users.ResetSecondFactors(r.Context(), u.ID, by, h.accountMail("email.account_changed.factors_reset"))
	h.forget("user", u.ID)
	if err != nil {
		return err
	}
	h.notify()
	return h.answerUser(w, r, u)
}

// unlockUser voids the account's throttle counts: passwords are counted
// under the username, codes under the user id (as `sesame user unlock`).
func (h *Handler) unlockUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := h.pathUser(r)
	if err != nil {
		return err
	}
	by, err := reason(w, r, c)
	if err != nil {
		return err
	}
	for _, account := range []string{u.Username, u.ID} {
		if err := h.Unlock(r.Context(), account); err != nil {
			return web.Unavailable(err)
		}
	}
	by.Type, by.UserID, by.IP = "user.unlocked", u.ID, h.ip(r)
	if err := h.Store.AppendAuditEvent(r.Context(), h.event(r.Context(), by)); err != nil {
		return err
	}
	return h.answerUser(w, r, u)
}

func (h *Handler) resendActivation(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := h.pathUser(r)
	if err != nil {
		return err
	}
	if err := decode(w, r, &struct{}{}, true); err != nil {
		return err
	}
	by := c.by(h.ip(r))
	u, err = h.Users.ResendActivation(r.Context(), u.ID, by, h.activationMail())
	if err != nil {
		return err
	}
	h.notify()
	return h.answerUser(w, r, u)
}

// phoneBody is the body of PUT /users/{id}/phone.
type phoneBody struct {
	Phone *string `json:"phone"`
}

func (h *Handler) setPhone(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := h.pathUser(r)
	if err != nil {
		return err
	}
	var b phoneBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if b.Phone == nil {
		return fieldErrors(fieldError("phone", "required", h.Web.Templates.T(c.lang, "error.phone.required")))
	}
	u, err = h.Users.SetPhone(r.Context(), u.ID, *b.Phone, c.by(h.ip(r)), func(u store.User) (notify.Email, error) {
		l := templates.UserLang(u.Locale)
		subject, text, html, err := h.Web.Templates.Email(l, "phone_changed", templates.PhoneChangedEmail{
			GivenName: u.GivenName, Phone: users.MaskPhone(u.Phone), When: templates.FormatWhen(h.now(), l), SupportURL: h.SupportURL,
		})
		return notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: u.Locale}, err
	})
	if err != nil {
		return err
	}
	h.notify()
	return h.answerUser(w, r, u)
}

// accountMail builds the "account_changed" email saying change (a message
// key), in the user's language.
// activationMail writes the activation email, to the user's address only.
func (h *Handler) activationMail() users.ActivationMail {
	return func(u store.User, token string) (notify.Email, error) {
		l := templates.UserLang(u.Locale)
		subject, text, html, err := h.Web.Templates.Email(l, "activation", templates.ActivationEmail{
			GivenName: u.GivenName, Username: u.Username,
			Link:    strings.TrimSuffix(h.Issuer, "/") + "/activate?token=" + url.QueryEscape(token),
			Expires: templates.FormatWhen(h.now().Add(users.ActivationTTL), l),
		})
		return notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: u.Locale}, err
	}
}

func (h *Handler) accountMail(change string) users.Mail {
	return func(u store.User) (notify.Email, error) {
		l := templates.UserLang(u.Locale)
		subject, text, html, err := h.Web.Templates.Email(l, "account_changed", templates.AccountChangedEmail{
			GivenName: u.GivenName, Change: h.Web.Templates.T(l, change), When: templates.FormatWhen(h.now(), l), SupportURL: h.SupportURL,
		})
		return notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: u.Locale}, err
	}
}
