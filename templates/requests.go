package templates

import "net/http"

// The pages of account requests (provisioning): the request forms, "my
// requests" and the support console (DESIGN §5 Pages).
const (
	pageRequestForm    = "request_form"
	pageRequestSent    = "request_sent"
	pageMyRequests     = "my_requests"
	pageConsoleQueue   = "console_queue"
	pageConsoleRequest = "console_request"
	pageConsoleUsers   = "console_users"
)

var requestPages = []string{pageRequestForm, pageRequestSent, pageMyRequests, pageConsoleQueue, pageConsoleRequest, pageConsoleUsers}

// Option is one choice of a select, a set of checkboxes or radios.
type Option struct {
	Value   string
	Label   string // already in the page's language
	Checked bool
}

// InstitutionOption is an institution the requester may name: a checkbox
// (institution) and a radio (primary_institution).
type InstitutionOption struct {
	ID      string
	Name    string
	Billing []string // "Name - number", to help fill the billing fields
	Checked bool
	Primary bool
}

// LabPair is one laboratory registration row of the form.
type LabPair struct {
	Laboratory string
	Number     string
}

// FieldProblem is one problem of the form, for the summary at its top.
type FieldProblem struct {
	Field   string // the form field's id ("email"), "" when not about one field
	Message string // in the page's language
}

// ReferenceInfo is what the reference-account lookup found.
type ReferenceInfo struct {
	Found    bool
	ID       string
	Name     string
	Username string
	Active   bool
}

// RequestFormPage is form#account-request (or form#scanning-request when
// Scanning): every field, what was typed (Values, by field name), the
// message beside each field (Errors, by field name) and a summary.
type RequestFormPage struct {
	Base
	Action       string
	Scanning     bool
	Values       map[string]string
	Errors       map[string]string
	Problems     []FieldProblem
	Institutions []InstitutionOption
	Occupations  []Option
	Labs         []LabPair
	Rights       []Option
	// LookupAction is the reference-account lookup (GET, same form values).
	LookupAction string
	Reference    *ReferenceInfo
	// Forbidden names the institution where the requester lacks the right.
	Forbidden       string
	PendingURL      string // a pending request for the same email
	MyRequestsURL   string
	OtherFormURL    string // the scanning form from the person form and back
	NoInstitutionOK bool   // the requester may request for no institution
}

// RequestSentPage follows a submitted request: #request-id, #request-due.
type RequestSentPage struct {
	Base
	ID            string
	Due           string
	Update        bool     // the request updates an existing account
	Warnings      []string // in the page's language
	MyRequestsURL string
	NewURL        string
}

// RequestRow is one request in a list.
type RequestRow struct {
	ID           string
	Name         string
	Email        string
	Institutions string
	Status       string // submitted | approved | rejected | completed
	Due          string
	Submitted    string
	Overdue      bool
	Reason       string // the decision's reason when rejected
	URL          string // the console's detail page
	Scanning     bool
	Update       bool
}

// MyRequestsPage is table#my-requests.
type MyRequestsPage struct {
	Base
	Requests       []RequestRow
	NewURL         string
	NewScanningURL string
}

// ConsoleQueuePage is table#request-queue.
type ConsoleQueuePage struct {
	Base
	Requests []RequestRow
	Status   string   // the filter
	Statuses []Option // the filter's choices
	Overdue  bool
	NextURL  string
	UsersURL string
}

// KV is a labelled value of a detail page (Label already translated).
type KV struct {
	Label string
	Value string
}

// VerdictRow is one rule's verdict.
type VerdictRow struct {
	Rule    string
	OK      bool
	Warning bool
	Message string
}

// ConsoleInstitution is a requested institution beside the reference
// account's mandates there.
type ConsoleInstitution struct {
	Name              string
	Primary           bool
	ReferenceMandates []string
}

// ConsoleRequestPage is a request's detail in the console.
type ConsoleRequestPage struct {
	Base
	Request       RequestRow
	Fields        []KV
	Verdicts      []VerdictRow
	Institutions  []ConsoleInstitution
	Reference     *ReferenceInfo
	ReferenceID   string
	Rights        []Option // asked for: the grant checkboxes
	Decided       bool
	ApproveAction string
	RejectAction  string
	Reason        string // typed reason, kept when refused
	ReasonError   string
	QueueURL      string
	UserID        string   // the account created or updated
	Problems      []string // why a decision was refused, in the page's language
}

// ConsoleUser is one user found by the console's lookup.
type ConsoleUser struct {
	ID          string
	Username    string
	Name        string
	Email       string
	Status      string
	Occupation  string
	Memberships []string // "Institution (primary): mandates; rights"
	Methods     []string
	Actions     []Option // Value: the action's path; Label: its name
}

// ConsoleUsersPage is the user lookup (form#user-lookup).
type ConsoleUsersPage struct {
	Base
	Action   string
	Query    string
	Searched bool
	Users    []ConsoleUser
	QueueURL string
}

// RequestForm renders form#account-request or form#scanning-request.
func (e *Engine) RequestForm(w http.ResponseWriter, status int, p RequestFormPage) error {
	return e.render(w, status, pageRequestForm, &p.Base, &p)
}

// RequestSent renders the page after a submitted request.
func (e *Engine) RequestSent(w http.ResponseWriter, status int, p RequestSentPage) error {
	return e.render(w, status, pageRequestSent, &p.Base, &p)
}

// MyRequests renders table#my-requests.
func (e *Engine) MyRequests(w http.ResponseWriter, status int, p MyRequestsPage) error {
	return e.render(w, status, pageMyRequests, &p.Base, &p)
}

// ConsoleQueue renders the support console's queue.
func (e *Engine) ConsoleQueue(w http.ResponseWriter, status int, p ConsoleQueuePage) error {
	return e.render(w, status, pageConsoleQueue, &p.Base, &p)
}

// ConsoleRequest renders a request's detail with form#approve and form#reject.
func (e *Engine) ConsoleRequest(w http.ResponseWriter, status int, p ConsoleRequestPage) error {
	return e.render(w, status, pageConsoleRequest, &p.Base, &p)
}

// ConsoleUsers renders the user lookup.
func (e *Engine) ConsoleUsers(w http.ResponseWriter, status int, p ConsoleUsersPage) error {
	return e.render(w, status, pageConsoleUsers, &p.Base, &p)
}

// sampleRequestPage is a zero page of a request page (nil for others).
func sampleRequestPage(name string, b Base) any {
	switch name {
	case pageRequestForm:
		return &RequestFormPage{Base: b}
	case pageRequestSent:
		return &RequestSentPage{Base: b}
	case pageMyRequests:
		return &MyRequestsPage{Base: b}
	case pageConsoleQueue:
		return &ConsoleQueuePage{Base: b}
	case pageConsoleRequest:
		return &ConsoleRequestPage{Base: b}
	case pageConsoleUsers:
		return &ConsoleUsersPage{Base: b}
	}
	return nil
}

func init() { pageNames = append(pageNames, requestPages...) }
