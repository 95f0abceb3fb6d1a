package provisioning

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// Actor is who calls the service: a signed-in user (a requester, or a
// support admin), or a client token with sesame:admin.
type Actor struct {
	// UserID is the signed-in user, "" for a client-credentials token.
	UserID string
	// ClientID is the OAuth client of the token, when there is one.
	ClientID string
	// Admin: the caller checked that the actor is a support admin (scope
	// sesame:admin, or a support user's token or session). Admins may
	// request for any institution, see every request and decide.
	Admin bool
	// IP and RequestID go into the audit events.
	IP        string
	RequestID string
}

// id is the actor's id in audit events and in AccountRequest.RequesterID.
func (a Actor) id() string {
	if a.UserID != "" {
		return a.UserID
	}
	if a.ClientID != "" {
		return "client:" + a.ClientID
	}
	return "system"
}

// Request is an account request as a requester fills it in: the JSON body
// of POST /api/v1/account-requests (DESIGN §5) and the fields of the
// forms /requests/new and /requests/new-scanning.
type Request struct {
	// AccountType is "person" (when empty) or "scanning".
	AccountType      string              `json:"account_type"`
	NewUser          NewUser             `json:"new_user"`
	Institutions     []InstitutionChoice `json:"institutions"`
	Occupation       string              `json:"occupation"`
	PracticeNumber   string              `json:"practice_number"`
	PrescriberNumber string              `json:"prescriber_number"`
	LabRegistrations []LabRegistration   `json:"lab_registrations"`
	ReferenceAccount ReferenceAccount    `json:"reference_account"`
	Billing          Billing             `json:"billing"`
	// SpecialRights asked for (patient_merge, admin_account,
	// account_requests): granted only if the approving admin ticks them.
	SpecialRights []string `json:"special_rights"`
	Comment       string   `json:"comment"`

	// Scanning accounts (AccountType "scanning"): the station's name and
	// the person responsible for it, who receives the welcome email.
	StationName      string `json:"station_name,omitempty"`
	ResponsibleName  string `json:"responsible_name,omitempty"`
	ResponsibleEmail string `json:"responsible_email,omitempty"`
}

// NewUser is the person the account is for.
type NewUser struct {
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Email      string `json:"email"`
	// PreviouslyHadAccount: "to your knowledge, has this user ever had an
	// account?" Yes makes the request an update of that account.
	PreviouslyHadAccount bool `json:"previously_had_account"`
	// Locale of the new user's emails and pages: fr-CA (when empty) or en-CA.
	Locale string `json:"locale,omitempty"`
}

// InstitutionChoice is one workplace of the new user.
type InstitutionChoice struct {
	ID      string `json:"id"`
	Primary bool   `json:"primary"`
}

// LabRegistration is a laboratory and the user's registration number there.
type LabRegistration = store.LabRegistration

// ReferenceAccount is an active account whose mandates at the requested
// institutions are copied (never its special rights).
type ReferenceAccount struct {
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	ID         string `json:"id"`
}

// Billing names the billing account of the primary institution.
type Billing struct {
	Name           string `json:"name"`
	CustomerNumber string `json:"customer_number"`
}

// Result is the answer to Submit (201).
type Result struct {
	ID     string                     `json:"id"`
	Status store.AccountRequestStatus `json:"status"`
	DueAt  time.Time                  `json:"due_at"`
	// Kind is "create", or "update" when the request updates an existing
	// account (previously had one, or a match was found).
	Kind string `json:"kind"`
	// Warnings are accepted problems the requester should see (missing lab
	// registration numbers: results will not be delivered; an update).
	Warnings []Problem `json:"warnings"`
	// UserID is set when the institution auto-approves and it was approved.
	UserID string `json:"user_id,omitempty"`
}

// Problem is one field's problem (an error, or a warning), in English and
// French. Field is the JSON path of the input ("new_user.email",
// "institutions[1].id", "lab_registrations"); the forms map it to their
// field names.
type Problem struct {
	Field     string `json:"field"`
	Code      string `json:"code"` // stable, e.g. "role_mailbox", "required"
	Message   string `json:"message"`
	MessageFR string `json:"-"`
}

// Text is the message in lang ("fr…" or anything else: English).
func (p Problem) Text(lang string) string {
	if strings.HasPrefix(lang, "fr") && p.MessageFR != "" {
		return p.MessageFR
	}
	return p.Message
}

// ValidationError is every problem of a request at once (422). Nothing was
// stored.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return "provisioning: invalid request: " + strings.Join(parts, "; ")
}

// Field returns the first problem of the field, if any.
func (e *ValidationError) Field(name string) (Problem, bool) {
	for _, p := range e.Problems {
		if p.Field == name {
			return p, true
		}
	}
	return Problem{}, false
}

// ForbiddenError: the requester lacks the account_requests right at an
// institution (403), or the actor may not do this.
type ForbiddenError struct {
	InstitutionID   string // "" when not about an institution
	InstitutionName string
	Message         string
	MessageFR       string
}

func (e *ForbiddenError) Error() string { return "provisioning: forbidden: " + e.Message }

// Text is the message in lang.
func (e *ForbiddenError) Text(lang string) string {
	if strings.HasPrefix(lang, "fr") {
		return e.MessageFR
	}
	return e.Message
}

func forbiddenAt(in store.Institution) *ForbiddenError {
	name := in.Name
	if name == "" {
		name = in.ID
	}
	return &ForbiddenError{
		InstitutionID: in.ID, InstitutionName: name,
		Message:   fmt.Sprintf("You are not authorized to request accounts for %s.", name),
		MessageFR: fmt.Sprintf("Vous n'êtes pas autorisé(e) à demander des comptes pour %s.", name),
	}
}

var errNotAdmin = &ForbiddenError{
	Message:   "Only support administrators can do this.",
	MessageFR: "Seuls les administrateurs du soutien peuvent faire ceci.",
}

// PendingError: a submitted request for the same email exists (409).
type PendingError struct {
	RequestID string
}

func (e *PendingError) Error() string {
	return "provisioning: a request for this email is already pending: " + e.RequestID
}

// Is makes errors.Is(err, ErrPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

// Sentinel errors, compared with errors.Is.
var (
	// ErrPending: see PendingError.
	ErrPending = errors.New("provisioning: a request for this email is already pending")
	// ErrNotFound: no such request (or not the actor's own) (404).
	ErrNotFound = errors.New("provisioning: no such request")
	// ErrDecided: the request is no longer submitted: another admin
	// approved or rejected it first (409).
	ErrDecided = errors.New("provisioning: the request has already been decided")
)

// Filter selects requests for List. Zero fields match everything.
type Filter struct {
	Status        store.AccountRequestStatus
	InstitutionID string
	Overdue       bool   // only submitted requests past their due date
	Cursor        string // from Page.Next
	Limit         int    // 0: 50; at most 200
}

// Page is one page of List, oldest due first.
type Page struct {
	Requests []Item
	Next     string // cursor of the next page, "" at the end
}

// Item is a request with what the queue shows about it.
type Item struct {
	store.AccountRequest
	Overdue bool
}

// Detail is one request with each rule's verdict (Get), and the
// reference account's mandates at the requested institutions.
type Detail struct {
	Item
	Verdicts []Verdict
	// Reference is the reference account (zero when none or unknown), and
	// ReferenceMandates its mandates by requested institution id.
	Reference         store.User
	ReferenceMandates map[string][]string
	// Institutions are the requested institutions (name and billing accounts).
	Institutions []store.Institution
}

// Verdict is the outcome of one rule on a request, now.
type Verdict struct {
	Rule      string `json:"rule"` // e.g. "email.role_mailbox"
	OK        bool   `json:"ok"`
	Warning   bool   `json:"warning,omitempty"` // accepted, but to look at
	Message   string `json:"message"`
	MessageFR string `json:"-"`
}

// Text is the message in lang.
func (v Verdict) Text(lang string) string {
	if strings.HasPrefix(lang, "fr") && v.MessageFR != "" {
		return v.MessageFR
	}
	return v.Message
}

// Decision is the answer to Approve.
type Decision struct {
	Status store.AccountRequestStatus `json:"status"`
	UserID string                     `json:"user_id"`
}
