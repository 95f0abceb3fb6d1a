package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
)

// Requests is the account-request service as the API needs it: the
// provisioning package's Service, adapted in package idp (the API does not
// import the provisioning package, a handler package of its own). Errors
// are *web.PublicError (422 with every field's problem, 403 naming the
// institution, 404, 409) or *PendingError; the messages are in lang.
type Requests interface {
	Submit(ctx context.Context, who RequestActor, body RequestBody, lang string) (SubmitResult, error)
	List(ctx context.Context, who RequestActor, f RequestFilter, lang string) ([]RequestItem, string, error)
	Get(ctx context.Context, who RequestActor, id, lang string) (RequestDetail, error)
	Approve(ctx context.Context, who RequestActor, id string, grantRights []string, lang string) (Decision, error)
	Reject(ctx context.Context, who RequestActor, id, reason, lang string) error
}

// RequestActor is who calls the account-request service.
type RequestActor struct {
	UserID    string // "" for a client's own token
	ClientID  string
	Admin     bool
	IP        string
	RequestID string
}

// PendingError: a submitted request for the same email exists (409, with
// Location pointing to it).
type PendingError struct {
	RequestID string
	Message   string // in the request's language
}

func (e *PendingError) Error() string {
	return "api: a request for this email is pending: " + e.RequestID
}

// RequestBody is the body of POST /account-requests (DESIGN §5).
type RequestBody struct {
	AccountType      string                     `json:"account_type"`
	NewUser          NewUserBody                `json:"new_user"`
	Institutions     []store.RequestInstitution `json:"institutions"`
	Occupation       string                     `json:"occupation"`
	PracticeNumber   string                     `json:"practice_number"`
	PrescriberNumber string                     `json:"prescriber_number"`
	LabRegistrations []store.LabRegistration    `json:"lab_registrations"`
	ReferenceAccount ReferenceBody              `json:"reference_account"`
	Billing          BillingBody                `json:"billing"`
	SpecialRights    []string                   `json:"special_rights"`
	Comment          string                     `json:"comment"`
	// Scanning accounts: the station and the person responsible for it.
	StationName      string `json:"station_name,omitempty"`
	ResponsibleName  string `json:"responsible_name,omitempty"`
	ResponsibleEmail string `json:"responsible_email,omitempty"`
}

// NewUserBody is the person the account is for.
type NewUserBody struct {
	GivenName            string `json:"given_name"`
	FamilyName           string `json:"family_name"`
	Email                string `json:"email"`
	PreviouslyHadAccount bool   `json:"previously_had_account"`
	Locale               string `json:"locale,omitempty"`
}

// ReferenceBody names the reference account whose mandates are copied.
type ReferenceBody struct {
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	ID         string `json:"id"`
}

// BillingBody names the primary institution's billing account.
type BillingBody struct {
	Name           string `json:"name"`
	CustomerNumber string `json:"customer_number"`
}

// SubmitResult is the answer to a submission (201).
type SubmitResult struct {
	ID       string           `json:"id"`
	Status   string           `json:"status"`
	DueAt    time.Time        `json:"due_at"`
	Kind     string           `json:"kind"`
	Warnings []web.FieldError `json:"warnings"`
	UserID   string           `json:"user_id,omitempty"`
}

// RequestFilter selects requests for List.
type RequestFilter struct {
	Status        string
	InstitutionID string
	Overdue       bool
	Cursor        string
	Limit         int
}

// RequestItem is a request in a list.
type RequestItem struct {
	Request store.AccountRequest
	Overdue bool
}

// RequestDetail is one request with each rule's verdict now, and the
// reference account's mandates at the requested institutions.
type RequestDetail struct {
	RequestItem
	Verdicts          []Verdict
	Reference         store.User // zero when none or unknown
	ReferenceMandates map[string][]string
	Institutions      []store.Institution
}

// Verdict is the outcome of one rule on a request.
type Verdict struct {
	Rule    string `json:"rule"`
	OK      bool   `json:"ok"`
	Warning bool   `json:"warning"`
	Message string `json:"message"`
}

// Decision is the answer to an approval.
type Decision struct {
	Status string `json:"status"`
	UserID string `json:"user_id"`
}

// requestJSON is an account request as the API shows it.
type requestJSON struct {
	ID               string                     `json:"id"`
	Kind             string                     `json:"kind"`
	AccountType      string                     `json:"account_type"`
	Status           string                     `json:"status"`
	Requester        personJSON                 `json:"requester"`
	NewUser          NewUserBody                `json:"new_user"`
	Institutions     []store.RequestInstitution `json:"institutions"`
	Occupation       string                     `json:"occupation"`
	PracticeNumber   string                     `json:"practice_number"`
	PrescriberNumber string                     `json:"prescriber_number"`
	LabRegistrations []store.LabRegistration    `json:"lab_registrations"`
	ReferenceAccount ReferenceBody              `json:"reference_account"`
	Billing          BillingBody                `json:"billing"`
	SpecialRights    []string                   `json:"special_rights"`
	Comment          string                     `json:"comment"`
	StationName      string                     `json:"station_name"`
	ResponsibleName  string                     `json:"responsible_name"`
	Warnings         []string                   `json:"warnings"`
	DueAt            time.Time                  `json:"due_at"`
	Overdue          bool                       `json:"overdue"`
	ReviewerID       string                     `json:"reviewer_id"`
	DecisionReason   string                     `json:"decision_reason"`
	DecidedAt        *time.Time                 `json:"decided_at"`
	GrantedRights    []string                   `json:"granted_rights"`
	UserID           string                     `json:"user_id"`
	CompletedAt      *time.Time                 `json:"completed_at"`
	CreatedAt        time.Time                  `json:"created_at"`
	UpdatedAt        time.Time                  `json:"updated_at"`
}

type personJSON struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// requestDetailJSON is one request with the verdicts of its rules.
type requestDetailJSON struct {
	requestJSON
	Verdicts          []Verdict           `json:"verdicts"`
	Reference         *referenceJSON      `json:"reference"`
	ReferenceMandates map[string][]string `json:"reference_mandates"`
	InstitutionInfo   []institutionJSON   `json:"institution_details"`
}

// referenceJSON is the reference account, as found now.
type referenceJSON struct {
	ID         string `json:"id"`
	Username   string `json:"username"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Status     string `json:"status"`
}

func requestOf(it RequestItem) requestJSON {
	r := it.Request
	insts := r.Institutions
	if insts == nil {
		insts = []store.RequestInstitution{}
	}
	labs := r.LabRegistrations
	if labs == nil {
		labs = []store.LabRegistration{}
	}
	return requestJSON{
		ID: r.ID, Kind: r.Kind, AccountType: r.AccountType, Status: string(r.Status),
		Requester: personJSON{ID: r.RequesterID, Name: r.RequesterName, Email: r.RequesterEmail},
		NewUser: NewUserBody{GivenName: r.GivenName, FamilyName: r.FamilyName, Email: r.Email,
			PreviouslyHadAccount: r.PreviouslyHadAccount, Locale: r.Locale},
		Institutions: insts, Occupation: r.Occupation, PracticeNumber: r.PracticeNumber,
		PrescriberNumber: r.PrescriberNumber, LabRegistrations: labs,
		ReferenceAccount: ReferenceBody{GivenName: r.ReferenceGivenName, FamilyName: r.ReferenceFamilyName, ID: r.ReferenceID},
		Billing:          BillingBody{Name: r.BillingName, CustomerNumber: r.BillingCustomerNumber},
		SpecialRights:    nonNil(r.SpecialRights), Comment: r.Comment, StationName: r.StationName,
		ResponsibleName: r.ResponsibleName, Warnings: nonNil(r.Warnings), DueAt: r.DueAt.UTC(), Overdue: it.Overdue,
		ReviewerID: r.ReviewerID, DecisionReason: r.DecisionReason, DecidedAt: optTime(r.DecidedAt),
		GrantedRights: nonNil(r.GrantedRights), UserID: r.UserID, CompletedAt: optTime(r.CompletedAt),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// requestActor is the caller for the service.
func (h *Handler) requestActor(r *http.Request, c *call) RequestActor {
	// The request id comes with the context (audit.WithRequestID).
	return RequestActor{UserID: c.actor.UserID, ClientID: c.actor.ClientID, Admin: c.actor.Admin, IP: h.ip(r)}
}

func (h *Handler) submitRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	if h.Requests == nil {
		return notFound()
	}
	var b RequestBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	res, err := h.Requests.Submit(r.Context(), h.requestActor(r, c), b, c.lang)
	var pe *PendingError
	if errors.As(err, &pe) {
		w.Header().Set("Location", h.Web.Path(Prefix+"/account-requests/"+pe.RequestID))
		c.details = map[string]string{"account_request_id": pe.RequestID}
		return &web.PublicError{Status: http.StatusConflict, Key: "api.conflict", Args: []any{pe.Message},
			Fields: []web.FieldError{fieldError("new_user.email", "pending", pe.Message)}, Err: err}
	}
	if err != nil {
		return err
	}
	if res.Warnings == nil {
		res.Warnings = []web.FieldError{}
	}
	c.details = map[string]string{"account_request_id": res.ID}
	w.Header().Set("Location", h.Web.Path(Prefix+"/account-requests/"+res.ID))
	return writeJSON(w, http.StatusCreated, res)
}

var requestStatuses = []string{"submitted", "approved", "rejected", "completed"}

func (h *Handler) listRequests(w http.ResponseWriter, r *http.Request, c *call) error {
	if h.Requests == nil {
		return notFound()
	}
	q := r.URL.Query()
	var fields []web.FieldError
	n, fe := limit(r)
	if fe != nil {
		fields = append(fields, *fe)
	}
	f := RequestFilter{Status: q.Get("status"), InstitutionID: q.Get("institution"), Cursor: q.Get("cursor"), Limit: n}
	if f.Status != "" && !slices.Contains(requestStatuses, f.Status) {
		fields = append(fields, fieldError("status", "invalid", "must be submitted, approved, rejected or completed"))
	}
	if len(f.InstitutionID) > 64 {
		fields = append(fields, fieldError("institution", "too_long", "at most 64 bytes"))
	}
	if s := q.Get("overdue"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			fields = append(fields, fieldError("overdue", "invalid", "must be true or false"))
		}
		f.Overdue = v
	}
	if len(fields) > 0 {
		return fieldErrors(fields...)
	}
	items, next, err := h.Requests.List(r.Context(), h.requestActor(r, c), f, c.lang)
	if err != nil {
		return err
	}
	out := page[requestJSON]{Items: []requestJSON{}}
	for _, it := range items {
		out.Items = append(out.Items, requestOf(it))
	}
	if next != "" {
		out.NextCursor = &next
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	if h.Requests == nil {
		return notFound()
	}
	id := r.PathValue("id")
	c.details = map[string]string{"account_request_id": id}
	d, err := h.Requests.Get(r.Context(), h.requestActor(r, c), id, c.lang)
	if err != nil {
		return err
	}
	out := requestDetailJSON{requestJSON: requestOf(d.RequestItem), Verdicts: d.Verdicts,
		ReferenceMandates: d.ReferenceMandates, InstitutionInfo: []institutionJSON{}}
	if out.Verdicts == nil {
		out.Verdicts = []Verdict{}
	}
	if out.ReferenceMandates == nil {
		out.ReferenceMandates = map[string][]string{}
	}
	if d.Reference.ID != "" {
		out.Reference = &referenceJSON{ID: d.Reference.ID, Username: d.Reference.Username, GivenName: d.Reference.GivenName,
			FamilyName: d.Reference.FamilyName, Status: string(d.Reference.Status)}
	}
	for _, in := range d.Institutions {
		out.InstitutionInfo = append(out.InstitutionInfo, institutionOf(in))
	}
	return writeJSON(w, http.StatusOK, out)
}

// approveBody is the body of POST /account-requests/{id}/approve.
type approveBody struct {
	GrantRights []string `json:"grant_rights"`
}

func (h *Handler) approveRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	if h.Requests == nil {
		return notFound()
	}
	id := r.PathValue("id")
	c.details = map[string]string{"account_request_id": id}
	var b approveBody
	if err := decode(w, r, &b, true); err != nil {
		return err
	}
	d, err := h.Requests.Approve(r.Context(), h.requestActor(r, c), id, b.GrantRights, c.lang)
	if err != nil {
		return err
	}
	c.userID = d.UserID
	return writeJSON(w, http.StatusOK, d)
}

// rejectBody is the body of POST /account-requests/{id}/reject.
type rejectBody struct {
	Reason *string `json:"reason"`
}

func (h *Handler) rejectRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	if h.Requests == nil {
		return notFound()
	}
	id := r.PathValue("id")
	c.details = map[string]string{"account_request_id": id}
	var b rejectBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if b.Reason == nil {
		return fieldErrors(fieldError("reason", "required", "say why, for the requester"))
	}
	if err := h.Requests.Reject(r.Context(), h.requestActor(r, c), id, *b.Reason, c.lang); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "rejected"})
}
