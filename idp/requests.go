package idp

import (
	"context"
	"errors"
	"net/http"

	"github.com/sesame-idp/sesame/idp/api"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
	"github.com/sesame-idp/sesame/provisioning"
)

// apiRequests adapts the account-request service (provisioning) to the
// management API, which does not import it (both are handler packages):
// it converts the API's types and turns the service's errors into
// problem details in the caller's language.
type apiRequests struct {
	s *provisioning.Service
}

var _ api.Requests = apiRequests{}

func actorOf(a api.RequestActor) provisioning.Actor {
	return provisioning.Actor{UserID: a.UserID, ClientID: a.ClientID, Admin: a.Admin, IP: a.IP, RequestID: a.RequestID}
}

func (q apiRequests) Submit(ctx context.Context, who api.RequestActor, b api.RequestBody, lang string) (api.SubmitResult, error) {
	res, err := q.s.Submit(ctx, actorOf(who), provisioning.Request{
		AccountType: b.AccountType,
		NewUser: provisioning.NewUser{GivenName: b.NewUser.GivenName, FamilyName: b.NewUser.FamilyName, Email: b.NewUser.Email,
			PreviouslyHadAccount: b.NewUser.PreviouslyHadAccount, Locale: b.NewUser.Locale},
		Institutions:     choices(b.Institutions),
		Occupation:       b.Occupation,
		PracticeNumber:   b.PracticeNumber,
		PrescriberNumber: b.PrescriberNumber,
		LabRegistrations: b.LabRegistrations,
		ReferenceAccount: provisioning.ReferenceAccount{GivenName: b.ReferenceAccount.GivenName,
			FamilyName: b.ReferenceAccount.FamilyName, ID: b.ReferenceAccount.ID},
		Billing:          provisioning.Billing{Name: b.Billing.Name, CustomerNumber: b.Billing.CustomerNumber},
		SpecialRights:    b.SpecialRights,
		Comment:          b.Comment,
		StationName:      b.StationName,
		ResponsibleName:  b.ResponsibleName,
		ResponsibleEmail: b.ResponsibleEmail,
	})
	if err != nil {
		return api.SubmitResult{}, requestError(err, lang)
	}
	out := api.SubmitResult{ID: res.ID, Status: string(res.Status), DueAt: res.DueAt.UTC(), Kind: res.Kind,
		Warnings: fieldsOf(res.Warnings, lang), UserID: res.UserID}
	return out, nil
}

func choices(in []store.RequestInstitution) []provisioning.InstitutionChoice {
	out := make([]provisioning.InstitutionChoice, len(in))
	for i, c := range in {
		out[i] = provisioning.InstitutionChoice{ID: c.ID, Primary: c.Primary}
	}
	return out
}

func fieldsOf(ps []provisioning.Problem, lang string) []web.FieldError {
	out := []web.FieldError{}
	for _, p := range ps {
		out = append(out, web.FieldError{Field: p.Field, Code: p.Code, Message: p.Text(lang)})
	}
	return out
}

func (q apiRequests) List(ctx context.Context, who api.RequestActor, f api.RequestFilter, lang string) ([]api.RequestItem, string, error) {
	p, err := q.s.List(ctx, actorOf(who), provisioning.Filter{Status: store.AccountRequestStatus(f.Status),
		InstitutionID: f.InstitutionID, Overdue: f.Overdue, Cursor: f.Cursor, Limit: f.Limit})
	if err != nil {
		return nil, "", requestError(err, lang)
	}
	out := make([]api.RequestItem, len(p.Requests))
	for i, it := range p.Requests {
		out[i] = api.RequestItem{Request: it.AccountRequest, Overdue: it.Overdue}
	}
	return out, p.Next, nil
}

func (q apiRequests) Get(ctx context.Context, who api.RequestActor, id, lang string) (api.RequestDetail, error) {
	d, err := q.s.Get(ctx, actorOf(who), id)
	if err != nil {
		return api.RequestDetail{}, requestError(err, lang)
	}
	out := api.RequestDetail{
		RequestItem:       api.RequestItem{Request: d.AccountRequest, Overdue: d.Overdue},
		Reference:         d.Reference,
		ReferenceMandates: d.ReferenceMandates,
		Institutions:      d.Institutions,
	}
	for _, v := range d.Verdicts {
		out.Verdicts = append(out.Verdicts, api.Verdict{Rule: v.Rule, OK: v.OK, Warning: v.Warning, Message: v.Text(lang)})
	}
	return out, nil
}

func (q apiRequests) Approve(ctx context.Context, who api.RequestActor, id string, grant []string, lang string) (api.Decision, error) {
	d, err := q.s.Approve(ctx, actorOf(who), id, grant)
	if err != nil {
		return api.Decision{}, requestError(err, lang)
	}
	return api.Decision{Status: string(d.Status), UserID: d.UserID}, nil
}

func (q apiRequests) Reject(ctx context.Context, who api.RequestActor, id, reason, lang string) error {
	return requestError(q.s.Reject(ctx, actorOf(who), id, reason), lang)
}

// requestError turns the service's errors into the API's: every field's
// problem (422), the institution the requester may not request for (403),
// the pending request for the same email (409), an unknown request (404),
// a request decided first by someone else (409).
func requestError(err error, lang string) error {
	if err == nil {
		return nil
	}
	var ve *provisioning.ValidationError
	var fe *provisioning.ForbiddenError
	var pe *provisioning.PendingError
	switch {
	case errors.As(err, &ve):
		return &web.PublicError{Status: http.StatusUnprocessableEntity, Key: "api.invalid", Fields: fieldsOf(ve.Problems, lang), Err: err}
	case errors.As(err, &fe):
		field := []web.FieldError{}
		if fe.InstitutionID != "" {
			field = append(field, web.FieldError{Field: "institutions", Code: "forbidden", Message: fe.Text(lang)})
		}
		return &web.PublicError{Status: http.StatusForbidden, Key: "api.message", Args: []any{fe.Text(lang)}, Fields: field, Err: err}
	case errors.As(err, &pe):
		msg := "A request for this email is already pending: " + pe.RequestID
		if lang == "fr" {
			msg = "Une demande pour cette adresse est déjà en attente : " + pe.RequestID
		}
		return &api.PendingError{RequestID: pe.RequestID, Message: msg}
	case errors.Is(err, provisioning.ErrNotFound):
		return &web.PublicError{Status: http.StatusNotFound, Key: "api.not_found", Err: err}
	case errors.Is(err, provisioning.ErrDecided):
		return &web.PublicError{Status: http.StatusConflict, Key: "api.decided", Err: err}
	}
	return err
}

// consoleActions are the user actions of the support console's lookup:
// Server.UserActions when set, else the management API's own (the same
// operations, emails and audit events as POST /api/v1/users/{id}/…).
func (s *Server) consoleActions() []provisioning.UserAction {
	if s.UserActions != nil {
		return s.UserActions
	}
	labels := map[string][2]string{
		"disable":           {"Désactiver le compte", "Disable the account"},
		"enable":            {"Réactiver le compte", "Enable the account"},
		"close":             {"Fermer le compte", "Close the account"},
		"unlock":            {"Débloquer (tentatives échouées)", "Unlock (failed attempts)"},
		"reset-factors":     {"Réinitialiser les méthodes de validation", "Reset the second-factor methods"},
		"resend-activation": {"Renvoyer le lien d'activation", "Resend the activation link"},
	}
	var out []provisioning.UserAction
	for _, a := range s.API.Actions() {
		l := labels[a.Name]
		out = append(out, provisioning.UserAction{Name: a.Name, LabelFR: l[0], LabelEN: l[1], Applies: a.Applies, Do: a.Do})
	}
	return out
}
