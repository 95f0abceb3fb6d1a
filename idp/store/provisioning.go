package store

import "time"

// Special rights a user may hold at an institution. They are never copied
// from a reference account: an admin grants them one by one.
const (
	RightPatientMerge    = "patient_merge"
	RightAdminAccount    = "admin_account"
	RightAccountRequests = "account_requests"
)

// Rights lists the special rights, in display order.
var Rights = []string{RightPatientMerge, RightAdminAccount, RightAccountRequests}

// Institution is a clinic (or other organisation) whose staff sign in.
type Institution struct {
	ID   string
	Name string
	// BillingAccounts are the accounts a request may bill to ("Clinique
	// médicale Omnimed - 123").
	BillingAccounts []BillingAccount
	// AutoApprove: requests naming this institution as primary are approved
	// as soon as every check passes (off by default).
	AutoApprove bool
	// RoleMailboxPatterns are Go regular expressions, matched against the
	// whole folded address, of shared mailboxes of this institution that
	// requests must not use (added to the built-in list of role local parts).
	RoleMailboxPatterns []string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// BillingAccount is a name and customer number an institution is billed under.
type BillingAccount struct {
	Name           string
	CustomerNumber string
}

// Membership is what a user holds at one institution: access (the row),
// whether it is their primary one, mandates and special rights.
type Membership struct {
	UserID        string
	InstitutionID string
	Primary       bool
	// BillingCustomerNumber links the user to a billing account of the
	// institution ("" when none).
	BillingCustomerNumber string
	Mandates              []string // sorted
	Rights                []string // sorted; values of Rights
	CreatedAt             time.Time
}

// LabRegistration is a user's registration number at a laboratory, for the
// electronic delivery of results.
type LabRegistration struct {
	Laboratory string `json:"laboratory"`
	Number     string `json:"number"`
}

// AccountRequestStatus is the life cycle of an account request:
// submitted → approved | rejected; approved → completed once the welcome
// email has been sent.
type AccountRequestStatus string

const (
	RequestSubmitted AccountRequestStatus = "submitted"
	RequestApproved  AccountRequestStatus = "approved"
	RequestRejected  AccountRequestStatus = "rejected"
	RequestCompleted AccountRequestStatus = "completed"
)

// Kinds of account request.
const (
	RequestCreate = "create" // a new account
	RequestUpdate = "update" // an existing account gets institutions and mandates (reopened if closed)
)

// Account types.
const (
	AccountPerson   = "person"
	AccountScanning = "scanning"
)

// RequestInstitution is one institution named by a request.
type RequestInstitution struct {
	ID      string `json:"id"`
	Primary bool   `json:"primary"`
}

// AccountRequest is a request for an account, with every field of the
// form, and its decision.
type AccountRequest struct {
	ID          string
	Kind        string // RequestCreate | RequestUpdate
	AccountType string // AccountPerson | AccountScanning
	Status      AccountRequestStatus

	// The requester: a user id (or a client id for an admin token), and
	// where to write to them at each outcome.
	RequesterID     string
	RequesterEmail  string
	RequesterName   string
	RequesterLocale string

	GivenName             string
	FamilyName            string
	Email                 string // as typed; compared folded (EmailFolded)
	Locale                string // the new user's, fr-CA | en-CA
	PreviouslyHadAccount  bool
	Institutions          []RequestInstitution // in the order given
	Occupation            string
	PracticeNumber        string
	PrescriberNumber      string
	LabRegistrations      []LabRegistration
	ReferenceGivenName    string
	ReferenceFamilyName   string
	ReferenceID           string
	BillingName           string
	BillingCustomerNumber string
	SpecialRights         []string // asked for
	Comment               string
	StationName           string // scanning accounts
	ResponsibleName       string // scanning accounts (Email is the responsible's)

	TargetUserID string   // the existing account an update changes
	Warnings     []string // message keys, e.g. "warning.lab_registrations_missing"
	DueAt        time.Time

	ReviewerID      string
	DecisionReason  string
	DecidedAt       time.Time
	GrantedRights   []string
	UserID          string // the account created or updated
	WelcomeOutboxID string // the welcome email; its sending completes the request
	CompletedAt     time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// PrimaryInstitution returns the id of the institution marked primary, or "".
func (r AccountRequest) PrimaryInstitution() string {
	for _, in := range r.Institutions {
		if in.Primary {
			return in.ID
		}
	}
	return ""
}

// AccountRequestFilter selects account requests; zero fields match
// everything. Results are ordered by due date, then id (oldest due first).
type AccountRequestFilter struct {
	Status        AccountRequestStatus
	InstitutionID string
	RequesterID   string
	// OverdueAt, when set, keeps only submitted requests due before it.
	OverdueAt time.Time
	// After is a cursor: only requests after (DueAt, ID) in the order.
	AfterDueAt time.Time
	AfterID    string
	Limit      int // 0: 100
}

// AccountRequestCounts is the state of the queue, for the metrics.
type AccountRequestCounts struct {
	ByStatus map[AccountRequestStatus]int64
	Overdue  int64 // submitted and due before now
}
