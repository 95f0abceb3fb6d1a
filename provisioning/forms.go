package provisioning

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/templates"
)

// The form fields of DESIGN §5 (Pages), single-valued ones.
var personFields = []string{"given_name", "family_name", "email", "previously_had_account", "primary_institution",
	"occupation", "practice_number", "prescriber_number", "reference_given_name", "reference_family_name",
	"reference_id", "billing_name", "billing_customer_number", "comment"}

var scanningFields = []string{"institution", "station_name", "responsible_name", "responsible_email",
	"billing_name", "billing_customer_number", "comment"}

// minLabRows is how many laboratory rows the form offers at least.
const minLabRows = 2

// shown is a typed value made safe to show again: valid UTF-8, no control
// character, at most 2,000 characters. (html/template escapes it.)
func shown(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\r' {
			return -1
		}
		return r
	}, v)
	if utf8.RuneCountInString(v) > 2000 {
		v = string([]rune(v)[:2000])
	}
	return v
}

// formState is what was typed, for showing the form again.
type formState struct {
	values map[string]string
	insts  []string
	rights []string
	labs   []templates.LabPair
}

func readForm(f url.Values, scanning bool) formState {
	st := formState{values: map[string]string{}}
	fields := personFields
	if scanning {
		fields = scanningFields
	}
	for _, k := range fields {
		st.values[k] = shown(f.Get(k))
	}
	if !scanning {
		st.insts = f["institution"]
		st.rights = f["right"]
		labs, nums := f["lab_laboratory"], f["lab_number"]
		for i := 0; i < max(len(labs), len(nums)); i++ {
			var l templates.LabPair
			if i < len(labs) {
				l.Laboratory = shown(labs[i])
			}
			if i < len(nums) {
				l.Number = shown(nums[i])
			}
			if strings.TrimSpace(l.Laboratory) != "" || strings.TrimSpace(l.Number) != "" {
				st.labs = append(st.labs, l)
			}
		}
	}
	return st
}

// request builds the service's Request from the form (raw values: the
// service checks every one of them).
func request(f url.Values, scanning bool) (Request, []Problem) {
	var extra []Problem
	if scanning {
		req := Request{AccountType: store.AccountScanning,
			StationName: f.Get("station_name"), ResponsibleName: f.Get("responsible_name"),
			ResponsibleEmail: f.Get("responsible_email"),
			Billing:          Billing{Name: f.Get("billing_name"), CustomerNumber: f.Get("billing_customer_number")},
			Comment:          f.Get("comment"),
		}
		for _, id := range f["institution"] {
			req.Institutions = append(req.Institutions, InstitutionChoice{ID: id, Primary: true})
		}
		return req, nil
	}
	req := Request{AccountType: store.AccountPerson,
		NewUser:    NewUser{GivenName: f.Get("given_name"), FamilyName: f.Get("family_name"), Email: f.Get("email")},
		Occupation: f.Get("occupation"), PracticeNumber: f.Get("practice_number"),
		PrescriberNumber: f.Get("prescriber_number"),
		ReferenceAccount: ReferenceAccount{GivenName: f.Get("reference_given_name"),
			FamilyName: f.Get("reference_family_name"), ID: strings.TrimSpace(f.Get("reference_id"))},
		Billing:       Billing{Name: f.Get("billing_name"), CustomerNumber: f.Get("billing_customer_number")},
		SpecialRights: f["right"],
		Comment:       f.Get("comment"),
	}
	switch f.Get("previously_had_account") {
	case "yes":
		req.NewUser.PreviouslyHadAccount = true
	case "", "no":
	default:
		extra = append(extra, Problem{Field: "previously_had_account", Code: "invalid_choice",
			Message: "Answer yes or no.", MessageFR: "Répondez oui ou non."})
	}
	primary := f.Get("primary_institution")
	for _, id := range f["institution"] {
		req.Institutions = append(req.Institutions, InstitutionChoice{ID: id, Primary: id == primary})
	}
	if primary != "" && !slices.Contains(f["institution"], primary) {
		extra = append(extra, Problem{Field: "institutions", Code: "primary_not_named",
			Message:   "The primary institution must be one of the institutions ticked.",
			MessageFR: "L'établissement principal doit être l'un des établissements cochés."})
	}
	labs, nums := f["lab_laboratory"], f["lab_number"]
	for i := 0; i < max(len(labs), len(nums)); i++ {
		var l LabRegistration
		if i < len(labs) {
			l.Laboratory = labs[i]
		}
		if i < len(nums) {
			l.Number = nums[i]
		}
		if strings.TrimSpace(l.Laboratory) == "" && strings.TrimSpace(l.Number) == "" {
			continue
		}
		req.LabRegistrations = append(req.LabRegistrations, l)
	}
	return req, extra
}

// formField is the form field a problem of the service is about ("" when
// it is about none in particular).
func formField(field string, scanning bool) string {
	switch {
	case strings.HasPrefix(field, "institutions"):
		return "institution"
	case strings.HasPrefix(field, "lab_registrations"):
		return "lab"
	case strings.HasPrefix(field, "special_rights"):
		return "right"
	case strings.HasPrefix(field, "reference_account."):
		return "reference_" + strings.TrimPrefix(field, "reference_account.")
	case field == "reference_account":
		return "reference_id"
	case strings.HasPrefix(field, "billing."):
		return "billing_" + strings.TrimPrefix(field, "billing.")
	case field == "new_user.email" && scanning:
		return "responsible_email"
	case strings.HasPrefix(field, "new_user."):
		f := strings.TrimPrefix(field, "new_user.")
		if slices.Contains(personFields, f) {
			return f
		}
		return ""
	}
	fields := personFields
	if scanning {
		fields = scanningFields
	}
	if slices.Contains(fields, field) {
		return field
	}
	return ""
}

// parseForm reads a POSTed form (at most web.MaxFormBytes) and checks its
// CSRF token. Field values are checked by the service, each with its
// message beside the field.
func (h *Pages) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, web.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return &web.PublicError{Status: http.StatusRequestEntityTooLarge, Key: "error.bad_request.message"}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return &web.PublicError{Status: http.StatusRequestTimeout, Key: "error.bad_request.message", Err: err}
		}
		return web.BadRequest("error.bad_request.message")
	}
	if !h.Sessions.CheckCSRF(r) {
		return &web.PublicError{Status: http.StatusForbidden, Title: "error.bad_request.title", Key: "error.csrf"}
	}
	return nil
}

// formPage builds the form page: the institutions the requester may name,
// the occupations, and what was typed.
func (h *Pages) formPage(w http.ResponseWriter, r *http.Request, u store.User, lang string, scanning bool, st formState) (templates.RequestFormPage, error) {
	insts, err := h.Service.Institutions(r.Context(), h.actor(r, u, false))
	if err != nil {
		return templates.RequestFormPage{}, web.Unavailable(err)
	}
	p := templates.RequestFormPage{
		Base: h.Web.Base(w, r, lang), Scanning: scanning,
		Values: st.values, Errors: map[string]string{}, Labs: st.labs,
		MyRequestsURL: h.Web.Path("/requests"),
	}
	if p.Values == nil {
		p.Values = map[string]string{}
	}
	if scanning {
		p.Action, p.OtherFormURL = h.Web.Path("/requests/new-scanning"), h.Web.Path("/requests/new")
	} else {
		p.Action, p.OtherFormURL = h.Web.Path("/requests/new"), h.Web.Path("/requests/new-scanning")
	}
	primary := p.Values["primary_institution"]
	for i, in := range insts {
		o := templates.InstitutionOption{ID: in.ID, Name: in.Name}
		for _, b := range in.BillingAccounts {
			o.Billing = append(o.Billing, b.Name+" - "+b.CustomerNumber)
		}
		if scanning {
			o.Checked = p.Values["institution"] == in.ID || (len(insts) == 1 && p.Values["institution"] == "")
		} else {
			o.Checked = slices.Contains(st.insts, in.ID) || (len(insts) == 1 && st.insts == nil)
			o.Primary = primary == in.ID || (len(insts) == 1 && primary == "") || (primary == "" && i == 0 && st.insts == nil)
		}
		p.Institutions = append(p.Institutions, o)
	}
	for _, o := range h.Service.Occupations() {
		p.Occupations = append(p.Occupations, templates.Option{Value: o.Name, Label: label(lang, o.LabelFR, o.LabelEN),
			Checked: p.Values["occupation"] == o.Name})
	}
	for _, right := range store.Rights {
		p.Rights = append(p.Rights, templates.Option{Value: right, Label: h.text(lang, "request.right."+right),
			Checked: slices.Contains(st.rights, right)})
	}
	for len(p.Labs) < minLabRows || len(p.Labs) < len(st.labs)+1 {
		p.Labs = append(p.Labs, templates.LabPair{})
	}
	if len(p.Labs) > maxLabs {
		p.Labs = p.Labs[:maxLabs]
	}
	return p, nil
}

// problems puts the problems beside their fields and in the summary.
func addProblems(p *templates.RequestFormPage, lang string, list []Problem) {
	for _, q := range list {
		f := formField(q.Field, p.Scanning)
		msg := q.Text(lang)
		if f != "" {
			if old := p.Errors[f]; old != "" {
				if strings.Contains(old, msg) {
					continue
				}
				msg = old + " " + msg
			}
			p.Errors[f] = msg
		}
		p.Problems = append(p.Problems, templates.FieldProblem{Field: f, Message: q.Text(lang)})
	}
}

func (h *Pages) newPerson(w http.ResponseWriter, r *http.Request) error {
	return h.showForm(w, r, false)
}

func (h *Pages) newScanning(w http.ResponseWriter, r *http.Request) error {
	return h.showForm(w, r, true)
}

func (h *Pages) showForm(w http.ResponseWriter, r *http.Request, scanning bool) error {
	_, u, err := h.signedIn(w, r)
	if err != nil {
		return handled(err)
	}
	lang := h.Web.Lang(w, r, nil, u.Locale)
	p, err := h.formPage(w, r, u, lang, scanning, formState{})
	if err != nil {
		return err
	}
	return h.Web.Templates.RequestForm(w, http.StatusOK, p)
}

func (h *Pages) submitPerson(w http.ResponseWriter, r *http.Request) error {
	return h.submit(w, r, false)
}

func (h *Pages) submitScanning(w http.ResponseWriter, r *http.Request) error {
	return h.submit(w, r, true)
}

func (h *Pages) submit(w http.ResponseWriter, r *http.Request, scanning bool) error {
	if err := h.parseForm(w, r); err != nil {
		return err
	}
	_, u, err := h.signedIn(w, r)
	if err != nil {
		return handled(err)
	}
	lang := h.Web.Lang(w, r, nil, u.Locale)
	st := readForm(r.PostForm, scanning)
	p, err := h.formPage(w, r, u, lang, scanning, st)
	if err != nil {
		return err
	}
	if !scanning && r.PostForm.Get("lookup") != "" {
		ref, err := h.lookupReference(r, u, r.PostForm.Get("reference_id"))
		if err != nil {
			return err
		}
		p.Reference = ref
		if ref.Found {
			p.Values["reference_id"] = ref.ID
		}
		return h.Web.Templates.RequestForm(w, http.StatusOK, p)
	}
	req, extra := request(r.PostForm, scanning)
	actor := h.actor(r, u, false)
	var res Result
	if len(extra) == 0 {
		res, err = h.Service.Submit(r.Context(), actor, req)
	} else {
		// The form's own problems, with every other one; nothing stored.
		err = h.Service.check(r.Context(), actor, req)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			ve.Problems = append(extra, ve.Problems...)
		case err == nil:
			err = &ValidationError{Problems: extra}
		}
	}
	var (
		ve *ValidationError
		fe *ForbiddenError
		pe *PendingError
	)
	switch {
	case errors.As(err, &ve):
		addProblems(&p, lang, ve.Problems)
		return h.Web.Templates.RequestForm(w, http.StatusUnprocessableEntity, p)
	case errors.As(err, &fe):
		p.Forbidden = fe.Text(lang)
		return h.Web.Templates.RequestForm(w, http.StatusForbidden, p)
	case errors.As(err, &pe):
		p.PendingURL = h.Web.Path("/requests")
		if field := map[bool]string{true: "responsible_email", false: "email"}[scanning]; field != "" {
			p.Errors[field] = h.text(lang, "request.pending")
		}
		return h.Web.Templates.RequestForm(w, http.StatusConflict, p)
	case err != nil:
		return web.Unavailable(err)
	}
	sent := templates.RequestSentPage{Base: h.Web.Base(w, r, lang), ID: res.ID, Due: formatTime(res.DueAt),
		Update: res.Kind == store.RequestUpdate, MyRequestsURL: h.Web.Path("/requests"), NewURL: p.Action}
	for _, wr := range res.Warnings {
		sent.Warnings = append(sent.Warnings, wr.Text(lang))
	}
	return h.Web.Templates.RequestSent(w, http.StatusCreated, sent)
}

// check applies every rule to req, as Submit does, and stores nothing.
func (s *Service) check(ctx context.Context, actor Actor, req Request) error {
	if err := s.init(); err != nil {
		return err
	}
	requester, err := s.requester(ctx, s.Store, actor)
	if err != nil {
		return err
	}
	e, err := s.evaluate(ctx, s.Store, actor, requester, req)
	if err != nil {
		return fmt.Errorf("provisioning: evaluate: %w", err)
	}
	return e.fail()
}

// lookupReference finds the reference account by id or username, among
// the accounts of the institutions where the requester may request
// accounts (nobody else's name is shown).
func (h *Pages) lookupReference(r *http.Request, u store.User, q string) (*templates.ReferenceInfo, error) {
	q = strings.TrimSpace(q)
	info := &templates.ReferenceInfo{}
	if q == "" || len(q) > maxRefID || !utf8.ValidString(q) || strings.ContainsFunc(q, unicode.IsControl) {
		return info, nil
	}
	ref, err := h.Store.GetUser(r.Context(), q)
	if errors.Is(err, store.ErrNotFound) {
		ref, err = h.Store.GetUserByUsername(r.Context(), q)
	}
	if errors.Is(err, store.ErrNotFound) {
		return info, nil
	}
	if err != nil {
		return nil, web.Unavailable(err)
	}
	mine, err := h.Service.Institutions(r.Context(), h.actor(r, u, false))
	if err != nil {
		return nil, web.Unavailable(err)
	}
	ms, err := h.Store.ListMemberships(r.Context(), ref.ID)
	if err != nil {
		return nil, web.Unavailable(err)
	}
	shared := false
	for _, m := range ms {
		if slices.ContainsFunc(mine, func(in store.Institution) bool { return in.ID == m.InstitutionID }) {
			shared = true
		}
	}
	if !shared {
		return info, nil
	}
	info.Found, info.Active, info.ID = true, ref.Status == store.StatusActive, ref.ID
	info.Name = strings.TrimSpace(ref.GivenName + " " + ref.FamilyName)
	info.Username = ref.Username
	return info, nil
}
