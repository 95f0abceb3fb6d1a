package provisioning

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// The support console: the queue, a request's detail with its decision,
// and the user lookup. Support users only (Pages.Support); decisions need
// a recent second factor.

var queueStatuses = []store.AccountRequestStatus{store.RequestSubmitted, store.RequestApproved,
	store.RequestRejected, store.RequestCompleted}

func (h *Pages) queue(w http.ResponseWriter, r *http.Request) error {
	u, lang, err := h.support(w, r, false)
	if err != nil {
		return handled(err)
	}
	q := r.URL.Query()
	status := store.RequestSubmitted
	if _, ok := q["status"]; ok {
		status = store.AccountRequestStatus(q.Get("status"))
		if status != "" && !slices.Contains(queueStatuses, status) {
			return web.BadRequest("error.bad_request.message")
		}
	}
	f := Filter{Status: status, Overdue: q.Get("overdue") == "1", Cursor: q.Get("cursor")}
	if len(f.Cursor) > 512 {
		return web.BadRequest("error.bad_request.message")
	}
	page, err := h.Service.List(r.Context(), h.actor(r, u, true), f)
	if err != nil {
		if f.Cursor != "" {
			return &web.PublicError{Status: http.StatusBadRequest, Key: "error.bad_request.message", Err: err}
		}
		return web.Unavailable(err)
	}
	names, err := h.institutionNames(r.Context())
	if err != nil {
		return web.Unavailable(err)
	}
	p := templates.ConsoleQueuePage{Base: h.Web.Base(w, r, lang), Status: string(status), Overdue: f.Overdue,
		UsersURL: h.Web.Path("/console/users")}
	p.Statuses = append(p.Statuses, templates.Option{Value: "", Label: h.text(lang, "console.all"), Checked: status == ""})
	for _, s := range queueStatuses {
		p.Statuses = append(p.Statuses, templates.Option{Value: string(s),
			Label: h.text(lang, "requests.status."+string(s)), Checked: s == status})
	}
	for _, it := range page.Requests {
		p.Requests = append(p.Requests, h.row(it, names))
	}
	if page.Next != "" {
		nq := url.Values{"status": {string(status)}, "cursor": {page.Next}}
		if f.Overdue {
			nq.Set("overdue", "1")
		}
		p.NextURL = h.Web.Path("/console/requests") + "?" + nq.Encode()
	}
	return h.Web.Templates.ConsoleQueue(w, http.StatusOK, p)
}

// requestID is the {id} of the path, when it looks like one.
func requestID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", &web.PublicError{Status: http.StatusNotFound, Key: "error.bad_request.message"}
	}
	return id, nil
}

func (h *Pages) detail(w http.ResponseWriter, r *http.Request) error {
	u, lang, err := h.support(w, r, false)
	if err != nil {
		return handled(err)
	}
	id, err := requestID(r)
	if err != nil {
		return err
	}
	p, err := h.detailPage(w, r, u, lang, id)
	if err != nil {
		return err
	}
	switch r.URL.Query().Get("done") {
	case "approved":
		p.Notice = "console.approved"
	case "rejected":
		p.Notice = "console.rejected"
	}
	return h.Web.Templates.ConsoleRequest(w, http.StatusOK, p)
}

func (h *Pages) detailPage(w http.ResponseWriter, r *http.Request, u store.User, lang, id string) (templates.ConsoleRequestPage, error) {
	d, err := h.Service.Get(r.Context(), h.actor(r, u, true), id)
	if errors.Is(err, ErrNotFound) {
		return templates.ConsoleRequestPage{}, &web.PublicError{Status: http.StatusNotFound, Lang: lang, Key: "error.bad_request.message"}
	}
	if err != nil {
		return templates.ConsoleRequestPage{}, web.Unavailable(err)
	}
	names, err := h.institutionNames(r.Context())
	if err != nil {
		return templates.ConsoleRequestPage{}, web.Unavailable(err)
	}
	for _, in := range d.Institutions {
		names[in.ID] = in.Name
	}
	req := d.AccountRequest
	base := h.Web.Path("/console/requests/" + url.PathEscape(req.ID))
	p := templates.ConsoleRequestPage{
		Base: h.Web.Base(w, r, lang), Request: h.row(d.Item, names),
		Decided:       req.Status != store.RequestSubmitted,
		ApproveAction: base + "/approve", RejectAction: base + "/reject",
		QueueURL: h.Web.Path("/console/requests"), UserID: req.UserID, ReferenceID: req.ReferenceID,
	}
	if p.Request.Reason == "" {
		p.Request.Reason = req.DecisionReason
	}
	add := func(key, v string) {
		if strings.TrimSpace(v) != "" {
			p.Fields = append(p.Fields, templates.KV{Label: h.text(lang, key), Value: v})
		}
	}
	kind := "console.field.kind_create"
	if req.Kind == store.RequestUpdate {
		kind = "console.field.kind_update"
	}
	add("console.field.kind", h.text(lang, kind))
	add("console.field.requester", strings.TrimSpace(req.RequesterName+" <"+req.RequesterEmail+">"))
	add("console.field.station", req.StationName)
	add("console.field.email", req.Email)
	var insts []string
	for _, in := range req.Institutions {
		n := names[in.ID]
		if in.Primary {
			n += " (" + h.text(lang, "request.primary") + ")"
		}
		insts = append(insts, n)
	}
	add("console.field.institutions", strings.Join(insts, ", "))
	occ := req.Occupation
	if o, ok := h.Service.occupation(req.Occupation); ok {
		occ = label(lang, o.LabelFR, o.LabelEN)
	}
	add("console.field.occupation", occ)
	add("console.field.practice_number", req.PracticeNumber)
	add("console.field.prescriber_number", req.PrescriberNumber)
	var labs []string
	for _, l := range req.LabRegistrations {
		labs = append(labs, l.Laboratory+" : "+l.Number)
	}
	add("console.field.labs", strings.Join(labs, " · "))
	add("console.field.reference", strings.TrimSpace(req.ReferenceGivenName+" "+req.ReferenceFamilyName+" "+req.ReferenceID))
	add("console.field.billing", strings.TrimSpace(req.BillingName+" - "+req.BillingCustomerNumber))
	var rights []string
	for _, right := range req.SpecialRights {
		rights = append(rights, h.text(lang, "request.right."+right))
		p.Rights = append(p.Rights, templates.Option{Value: right, Label: h.text(lang, "request.right."+right)})
	}
	add("console.field.rights", strings.Join(rights, ", "))
	add("console.field.comment", req.Comment)

	for _, v := range d.Verdicts {
		p.Verdicts = append(p.Verdicts, templates.VerdictRow{Rule: v.Rule, OK: v.OK, Warning: v.Warning, Message: v.Text(lang)})
	}
	if d.Reference.ID != "" {
		p.Reference = &templates.ReferenceInfo{Found: true, ID: d.Reference.ID, Username: d.Reference.Username,
			Name:   strings.TrimSpace(d.Reference.GivenName + " " + d.Reference.FamilyName),
			Active: d.Reference.Status == store.StatusActive}
	}
	for _, in := range req.Institutions {
		p.Institutions = append(p.Institutions, templates.ConsoleInstitution{Name: names[in.ID], Primary: in.Primary,
			ReferenceMandates: d.ReferenceMandates[in.ID]})
	}
	return p, nil
}

func (h *Pages) approve(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	u, lang, err := h.support(w, r, true)
	if err != nil {
		return handled(err)
	}
	id, err := requestID(r)
	if err != nil {
		return err
	}
	_, err = h.Service.Approve(r.Context(), h.actor(r, u, true), id, r.PostForm["grant"])
	return h.decided(w, r, u, lang, id, "approved", err, "")
}

func (h *Pages) reject(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	u, lang, err := h.support(w, r, true)
	if err != nil {
		return handled(err)
	}
	id, err := requestID(r)
	if err != nil {
		return err
	}
	reason := r.PostForm.Get("reason")
	if strings.TrimSpace(reason) == "" {
		p, err := h.detailPage(w, r, u, lang, id)
		if err != nil {
			return err
		}
		p.ReasonError = h.text(lang, "console.reason_required")
		return h.Web.Templates.ConsoleRequest(w, http.StatusUnprocessableEntity, p)
	}
	err = h.Service.Reject(r.Context(), h.actor(r, u, true), id, reason)
	return h.decided(w, r, u, lang, id, "rejected", err, reason)
}

// decided answers a decision: back to the detail page, or the page again
// with why it was refused.
func (h *Pages) decided(w http.ResponseWriter, r *http.Request, u store.User, lang, id, done string, err error, reason string) error {
	if err == nil {
		http.Redirect(w, r, h.Web.Path("/console/requests/"+url.PathEscape(id))+"?done="+done, http.StatusSeeOther)
		return nil
	}
	var (
		ve *ValidationError
		fe *ForbiddenError
	)
	status := http.StatusConflict
	switch {
	case errors.Is(err, ErrNotFound):
		return &web.PublicError{Status: http.StatusNotFound, Lang: lang, Key: "error.bad_request.message"}
	case errors.Is(err, ErrDecided):
	case errors.As(err, &ve):
		status = http.StatusUnprocessableEntity
	case errors.As(err, &fe):
		status = http.StatusForbidden
	default:
		return web.Unavailable(err)
	}
	p, perr := h.detailPage(w, r, u, lang, id)
	if perr != nil {
		return perr
	}
	p.Reason = shown(reason)
	switch {
	case errors.Is(err, ErrDecided):
		p.Error = "console.decided"
	case ve != nil:
		for _, q := range ve.Problems {
			if q.Field == "reason" {
				p.ReasonError = q.Text(lang)
				continue
			}
			p.Problems = append(p.Problems, q.Text(lang))
		}
	case fe != nil:
		p.Problems = append(p.Problems, fe.Text(lang))
	}
	return h.Web.Templates.ConsoleRequest(w, status, p)
}

// ---- user lookup ----

func (h *Pages) users(w http.ResponseWriter, r *http.Request) error {
	u, lang, err := h.support(w, r, false)
	if err != nil {
		return handled(err)
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 254 {
		return web.BadRequest("error.bad_request.message")
	}
	p := templates.ConsoleUsersPage{Base: h.Web.Base(w, r, lang), Action: h.Web.Path("/console/users"),
		Query: q, QueueURL: h.Web.Path("/console/requests")}
	if q != "" {
		p.Searched = true
		found, err := h.findUsers(r, q)
		if err != nil {
			return web.Unavailable(err)
		}
		for _, f := range found {
			cu, err := h.consoleUser(r, lang, f)
			if err != nil {
				return web.Unavailable(err)
			}
			p.Users = append(p.Users, cu)
		}
	}
	_ = u
	return h.Web.Templates.ConsoleUsers(w, http.StatusOK, p)
}

// findUsers finds users by id, username or email.
func (h *Pages) findUsers(r *http.Request, q string) ([]store.User, error) {
	ctx := r.Context()
	if _, err := uuid.Parse(q); err == nil {
		u, err := h.Store.GetUser(ctx, q)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return []store.User{u}, err
	}
	if strings.Contains(q, "@") {
		return h.Store.ListUsersByEmail(ctx, foldEmail(q))
	}
	u, err := h.Store.GetUserByUsername(ctx, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return []store.User{u}, err
}

func (h *Pages) consoleUser(r *http.Request, lang string, u store.User) (templates.ConsoleUser, error) {
	cu := templates.ConsoleUser{ID: u.ID, Username: u.Username, Email: u.Email, Status: string(u.Status),
		Name: strings.TrimSpace(u.GivenName + " " + u.FamilyName)}
	if o, ok := h.Service.occupation(u.Occupation); ok {
		cu.Occupation = label(lang, o.LabelFR, o.LabelEN)
	}
	names, err := h.institutionNames(r.Context())
	if err != nil {
		return cu, err
	}
	ms, err := h.Store.ListMemberships(r.Context(), u.ID)
	if err != nil {
		return cu, err
	}
	for _, m := range ms {
		s := names[m.InstitutionID]
		if m.Primary {
			s += " (" + h.text(lang, "request.primary") + ")"
		}
		if len(m.Mandates) > 0 {
			s += " : " + strings.Join(m.Mandates, ", ")
		}
		if len(m.Rights) > 0 {
			var rs []string
			for _, right := range m.Rights {
				rs = append(rs, h.text(lang, "request.right."+right))
			}
			s += " · " + strings.Join(rs, ", ")
		}
		cu.Memberships = append(cu.Memberships, s)
	}
	factors, err := users.SecondFactors(r.Context(), h.Store, u.ID)
	if err != nil {
		return cu, err
	}
	for _, c := range factors {
		n := h.text(lang, "method."+string(c.Type))
		if c.Name != "" {
			n += " « " + c.Name + " »"
		}
		cu.Methods = append(cu.Methods, n)
	}
	for _, a := range h.UserActions {
		if a.Applies == nil || a.Applies(u) {
			cu.Actions = append(cu.Actions, templates.Option{
				Value: h.Web.Path("/console/users/" + url.PathEscape(u.ID) + "/" + url.PathEscape(a.Name)),
				Label: label(lang, a.LabelFR, a.LabelEN)})
		}
	}
	return cu, nil
}

func (h *Pages) userAction(w http.ResponseWriter, r *http.Request) error {
	if err := h.Web.CheckPost(w, r); err != nil {
		return err
	}
	u, lang, err := h.support(w, r, true)
	if err != nil {
		return handled(err)
	}
	i := slices.IndexFunc(h.UserActions, func(a UserAction) bool { return a.Name == r.PathValue("action") })
	id := r.PathValue("id")
	if _, perr := uuid.Parse(id); perr != nil || i < 0 {
		return &web.PublicError{Status: http.StatusNotFound, Lang: lang, Key: "error.bad_request.message"}
	}
	a := h.UserActions[i]
	target, err := h.Store.GetUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Applies != nil && !a.Applies(target)) {
		return &web.PublicError{Status: http.StatusNotFound, Lang: lang, Key: "error.bad_request.message"}
	}
	if err != nil {
		return web.Unavailable(err)
	}
	if err := a.Do(r.Context(), id, h.event(r, "user."+a.Name, u, id)); err != nil {
		var pe *web.PublicError
		if errors.As(err, &pe) {
			return err
		}
		return web.Unavailable(err)
	}
	http.Redirect(w, r, h.Web.Path("/console/users")+"?q="+url.QueryEscape(id), http.StatusSeeOther)
	return nil
}
