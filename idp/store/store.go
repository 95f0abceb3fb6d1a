package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Sentinel errors. Implementations map driver errors to these in one helper
// per backend; callers compare with errors.Is.
var (
	// ErrNotFound: the row does not exist (or is no longer usable, for
	// single-use values).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a uniqueness constraint or a compare-and-set lost.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable marks a failure of the database itself (unreachable,
	// shutting down, timed out, out of connections): never a verdict about
	// the data asked for. Implementations wrap such driver errors with it
	// (errors.Is finds it; the driver's text stays in the chain for the
	// logs); callers answer 503 and never "not found" or "invalid".
	ErrUnavailable = errors.New("store: unavailable")
)

// Store is the durable data contract. Every method of Tx is also available
// outside a transaction.
type Store interface {
	Tx
	// InTx runs fn in one transaction: committed when fn returns nil,
	// rolled back otherwise (the error of fn is returned as is).
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Tx is the set of data operations. Timestamps are stored with at least
// microsecond precision and returned in UTC.
type Tx interface {
	// Users. Usernames are unique after FoldUsername.
	CreateUser(ctx context.Context, u User) error // ErrConflict on a duplicate id or username
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error) // folds the argument
	UpdateUser(ctx context.Context, u User) error                         // every field but ID and CreatedAt
	ListUsers(ctx context.Context, afterUsername string, limit int) ([]User, error)
	// SearchUsers returns the users q selects, by folded username.
	SearchUsers(ctx context.Context, q UserQuery) ([]User, error)
	// LockUser holds the user's lock until the transaction ends, so that
	// transactions that check, then change, the user's credentials (the
	// last second factor, a first enrollment) run one after the other:
	// call it before the check. ErrNotFound if there is no such user.
	// Outside a transaction it only checks that the user exists.
	LockUser(ctx context.Context, userID string) error

	// Credentials: password, totp, sms, webauthn. A user has at most one password.
	SetPassword(ctx context.Context, userID, phc string, at time.Time) error // upsert
	CreateCredential(ctx context.Context, c Credential) error
	GetCredential(ctx context.Context, id string) (Credential, error)
	// ListCredentials returns the user's credentials of the given type, or of
	// every type when typ is empty, oldest first.
	ListCredentials(ctx context.Context, userID string, typ CredentialType) ([]Credential, error)
	UpdateCredential(ctx context.Context, c Credential) error // Name, Secret, Data, VerifiedAt, LastUsedAt
	DeleteCredential(ctx context.Context, id string) error
	// AdvanceTOTPStep records step as the last accepted TOTP time step of the
	// credential, atomically, only if it is greater than the stored one:
	// ErrConflict otherwise (a replay), ErrNotFound if there is no such credential.
	AdvanceTOTPStep(ctx context.Context, credentialID string, step int64, at time.Time) error

	// Recovery codes, stored hashed.
	// ReplaceRecoveryCodes deletes the user's codes and stores the new set.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error
	ListRecoveryCodes(ctx context.Context, userID string) ([]RecoveryCode, error)
	// ConsumeRecoveryCode marks the unused code with this hash as used,
	// atomically: ErrNotFound if there is none (unknown or already used).
	ConsumeRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error

	// Action tokens: single-use, expiring links (account activation…), stored hashed.
	CreateActionToken(ctx context.Context, t ActionToken) error
	// ConsumeActionToken marks the token used and returns it, atomically;
	// ErrNotFound when unknown, of another kind, used or expired at now.
	ConsumeActionToken(ctx context.Context, hash string, kind string, now time.Time) (ActionToken, error)
	// ExpireActionTokens ends, at now, every token of the kind of the user
	// that is neither used nor expired (its ExpiresAt becomes now; UsedAt
	// stays empty: it was never used), and returns how many: a new link
	// supersedes the earlier ones.
	ExpireActionTokens(ctx context.Context, userID, kind string, now time.Time) (int64, error)

	// Clients.
	CreateClient(ctx context.Context, c Client) error // ErrConflict on a duplicate id
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, c Client) error
	DeleteClient(ctx context.Context, id string) error

	// Refresh tokens, stored by the hash of their value.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	GetRefreshToken(ctx context.Context, id string) (RefreshToken, error)
	GetRefreshTokenByHash(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken marks oldID rotated at next.CreatedAt and stores next,
	// atomically, only if oldID is neither rotated nor revoked: ErrConflict
	// otherwise (a reuse), ErrNotFound if there is no such token.
	RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken) error
	// ClaimRefreshToken finds the token whose hash is hash and, when it is
	// live at at (issued to clientID, neither rotated nor revoked, expiring
	// after at), rotates it atomically with the lookup (one statement on
	// PostgreSQL, one round trip): it is marked rotated at
	// at and its successor is stored with the ID and hash given, created at
	// at, and the rest copied from it (family, user, client, scopes,
	// audience, authentication, session, expiry; parent the claimed
	// token). It returns the token as found, with RotatedAt at when claimed.
	// A token found but not claimed (not live, another client's, or a
	// concurrent claim won) comes back as it is with claimed false: the
	// caller tells why. ErrNotFound when no token has that hash.
	ClaimRefreshToken(ctx context.Context, hash, clientID, nextID, nextHash string, at time.Time) (t RefreshToken, claimed bool, err error)
	// UnclaimRefreshToken undoes a claim whose successor never reached the
	// client: it deletes nextID, the successor of oldID, and clears
	// oldID's RotatedAt. Nothing happens when nextID is not oldID's
	// successor (no longer there). A revoked token stays revoked.
	UnclaimRefreshToken(ctx context.Context, oldID, nextID string) error
	RevokeRefreshToken(ctx context.Context, id string, at time.Time) error
	// RevokeRefreshFamily revokes every token of the family not yet revoked.
	RevokeRefreshFamily(ctx context.Context, family string, at time.Time) (int64, error)
	// RevokeRefreshTokensBySession revokes every token of the browser
	// session sessionID (the ID token's sid) not yet revoked, and returns
	// how many; an empty sessionID matches no token.
	RevokeRefreshTokensBySession(ctx context.Context, sessionID string, at time.Time) (int64, error)
	// RevokeUserRefreshTokens revokes every token of the user not yet
	// revoked, except those of the browser session exceptSession (none
	// when it is empty), and returns how many.
	RevokeUserRefreshTokens(ctx context.Context, userID, exceptSession string, at time.Time) (int64, error)
	DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error)

	// Signing keys.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error) // oldest first
	UpdateSigningKey(ctx context.Context, k SigningKey) error  // State, ActivatedAt, RetiredAt
	DeleteSigningKey(ctx context.Context, id string) error

	// Audit events.
	AppendAuditEvent(ctx context.Context, e AuditEvent) error
	// ListAuditEvents returns the newest events first.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Outbox.
	EnqueueOutbox(ctx context.Context, m OutboxMessage) error // ErrConflict on a duplicate idempotency key
	GetOutboxMessage(ctx context.Context, id string) (OutboxMessage, error)
	// ClaimOutbox leases up to limit unsent messages due at now: their
	// NextAttemptAt moves to now+lease and Attempts grows by one, so that no
	// other worker claims them until the lease ends. Oldest first.
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error)
	// MarkOutboxSent records the message sent and, in the same atomic step,
	// queues its follow-up (Then*, once: the follow-up's id and key are
	// unique) and completes the approved account request whose welcome
	// email it is.
	MarkOutboxSent(ctx context.Context, id string, at time.Time) error
	MarkOutboxFailed(ctx context.Context, id string, nextAttempt time.Time, lastError string) error

	// Institutions, with their billing accounts.
	CreateInstitution(ctx context.Context, in Institution) error // ErrConflict on a duplicate id
	GetInstitution(ctx context.Context, id string) (Institution, error)
	ListInstitutions(ctx context.Context) ([]Institution, error) // by name, then id
	// UpdateInstitution replaces Name, AutoApprove, RoleMailboxPatterns,
	// UpdatedAt and the billing accounts.
	UpdateInstitution(ctx context.Context, in Institution) error

	// Memberships, with their mandates and special rights.
	// PutMembership creates or replaces the user's membership at the
	// institution, its mandates and rights (CreatedAt is kept when it
	// exists). ErrNotFound when the user or institution does not exist;
	// ErrConflict when it is primary and the user has another primary one.
	PutMembership(ctx context.Context, m Membership) error
	GetMembership(ctx context.Context, userID, institutionID string) (Membership, error)
	ListMemberships(ctx context.Context, userID string) ([]Membership, error) // by institution id
	DeleteMembership(ctx context.Context, userID, institutionID string) error

	// Lab registrations.
	// AddLabRegistration stores r for the user; an existing identical one is kept.
	AddLabRegistration(ctx context.Context, userID string, r LabRegistration) error
	ListLabRegistrations(ctx context.Context, userID string) ([]LabRegistration, error)

	// Lookups of the account request rules. Emails compare case-insensitively
	// (ASCII folding); the others exactly. Oldest account first.
	ListUsersByEmail(ctx context.Context, email string) ([]User, error)
	ListUsersByPracticeNumber(ctx context.Context, number string) ([]User, error)
	ListUsersByPrescriberNumber(ctx context.Context, number string) ([]User, error)
	// ListUsersByNameAt: users with this given and family name
	// (case-insensitive) who are members of the institution.
	ListUsersByNameAt(ctx context.Context, givenName, familyName, institutionID string) ([]User, error)

	// Account requests.
	// CreateAccountRequest stores r with its institutions; ErrConflict on a
	// duplicate id or when a submitted request for the same email exists.
	CreateAccountRequest(ctx context.Context, r AccountRequest) error
	GetAccountRequest(ctx context.Context, id string) (AccountRequest, error)
	// PendingAccountRequestByEmail returns the submitted request for this
	// email (case-insensitive), ErrNotFound when there is none.
	PendingAccountRequestByEmail(ctx context.Context, email string) (AccountRequest, error)
	// UpdateAccountRequest writes the decision fields of r (Status, Kind,
	// TargetUserID, Warnings, ReviewerID, DecisionReason, DecidedAt,
	// GrantedRights, UserID, WelcomeOutboxID, CompletedAt, UpdatedAt),
	// atomically, only if the stored status is from: ErrConflict otherwise
	// (another decision won), ErrNotFound if there is no such request. On
	// PostgreSQL the row stays locked until the transaction ends.
	UpdateAccountRequest(ctx context.Context, r AccountRequest, from AccountRequestStatus) error
	ListAccountRequests(ctx context.Context, f AccountRequestFilter) ([]AccountRequest, error)
	// CountAccountRequests counts requests by status, and the submitted ones due before now.
	CountAccountRequests(ctx context.Context, now time.Time) (AccountRequestCounts, error)
}

// FoldUsername is the canonical form of a username: trimmed and lower-cased.
func FoldUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// UserStatus is the life cycle of an account.
type UserStatus string

const (
	StatusPendingActivation UserStatus = "pending_activation"
	StatusActive            UserStatus = "active"
	StatusDisabled          UserStatus = "disabled"
	StatusClosed            UserStatus = "closed"
)

// User is a person (or a scanning station) who signs in. ID is a UUID and
// the OIDC subject.
type User struct {
	ID               string
	Username         string
	Email            string
	GivenName        string
	FamilyName       string
	Locale           string // fr-CA | en-CA
	Status           UserStatus
	AccountType      string // person | scanning
	Occupation       string
	PracticeNumber   string
	PrescriberNumber string
	Phone            string // E.164, set by support only
	// Support: the user holds the support right (the management API as an
	// administrator, with a second factor; `sesame user grant --support`).
	Support       bool
	MFAGraceUntil time.Time // zero: no grace period for enrolling a second factor
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// CredentialType names a kind of credential.
type CredentialType string

const (
	CredPassword CredentialType = "password"
	CredTOTP     CredentialType = "totp"
	CredSMS      CredentialType = "sms"
	CredWebAuthn CredentialType = "webauthn"
)

// Credential is one authentication method of a user. Secret holds the
// password's PHC string or the sealed TOTP secret; Data holds type-specific
// JSON (phone number, WebAuthn credential…).
type Credential struct {
	ID           string
	UserID       string
	Type         CredentialType
	Name         string // device name
	Secret       []byte
	Data         []byte
	TOTPLastStep int64
	VerifiedAt   time.Time // zero while enrollment is unfinished
	LastUsedAt   time.Time
	CreatedAt    time.Time
}

// RecoveryCode is one single-use recovery code, stored as a hash.
type RecoveryCode struct {
	ID        string
	UserID    string
	Hash      string
	CreatedAt time.Time
	UsedAt    time.Time
}

// ActionToken is a single-use, expiring secret sent by email.
type ActionToken struct {
	Hash      string
	Kind      string // e.g. "activation"
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// Client is an OAuth 2 / OIDC relying party.
type Client struct {
	ID              string
	Name            string
	SecretHash      string // empty for public clients
	Public          bool
	RedirectURIs    []string
	PostLogoutURIs  []string
	GrantTypes      []string
	Scopes          []string
	AuthMethod      string // client_secret_basic | client_secret_post | none | private_key_jwt
	PKCERequired    bool
	TokenFormat     string // opaque | jwt
	IDTokenAlg      string // RS256 | ES256
	AccessTokenTTL  time.Duration
	IDTokenTTL      time.Duration
	RefreshTokenTTL time.Duration
	BackchannelURI  string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// RefreshToken is one link of a rotation chain (a family).
type RefreshToken struct {
	ID        string
	Hash      string
	Family    string
	ParentID  string
	UserID    string
	ClientID  string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	SessionID string
	CreatedAt time.Time
	ExpiresAt time.Time
	RotatedAt time.Time // zero until used
	RevokedAt time.Time // zero unless revoked
}

// KeyState is the life cycle of a signing key: next → active → retired.
type KeyState string

const (
	KeyNext    KeyState = "next"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
)

// SigningKey is a token-signing key; the private key (PKCS #8 DER) is sealed.
type SigningKey struct {
	ID          string // kid
	Alg         string // RS256 | ES256
	Sealed      []byte
	State       KeyState
	CreatedAt   time.Time
	ActivatedAt time.Time
	RetiredAt   time.Time
}

// AuditEvent records something security-relevant that happened.
type AuditEvent struct {
	ID        string
	At        time.Time
	Type      string // e.g. "login.succeeded", "mfa.enrolled"
	ActorID   string // who did it (a user id, a client id, "system")
	UserID    string // whose account it concerns
	ClientID  string
	IP        string
	RequestID string
	Details   map[string]string
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	UserID  string
	ActorID string
	Type    string
	Since   time.Time // only events at or after
	Before  time.Time // only events strictly older…
	// BeforeID, with Before, also keeps the events of time Before whose id
	// sorts before it: (Before, BeforeID) is the last event of a page.
	BeforeID string
	Limit    int // 0: 100
}

// UserQuery selects users for SearchUsers; zero fields match everything.
type UserQuery struct {
	// Text matches, ignoring ASCII case, a part of the username, the email,
	// the given, family or full name, or the whole id.
	Text string
	// AfterUsername: only users whose folded username sorts after it (the
	// last one of the previous page).
	AfterUsername string
	// InstitutionID: only members of this institution.
	InstitutionID string
	Limit         int // 0: 100
}

// OutboxMessage is an email or SMS to deliver, written in the same
// transaction as the change that causes it.
type OutboxMessage struct {
	ID             string
	Kind           string // email | sms
	IdempotencyKey string
	Payload        []byte // JSON, interpreted by the sender of Kind
	Attempts       int
	NextAttemptAt  time.Time
	SentAt         time.Time
	LastError      string
	CreatedAt      time.Time

	// Then is a follow-up queued when this message is marked sent (the
	// requester's confirmation after the new user's welcome): Kind,
	// IdempotencyKey, Payload and ID only (nil: none).
	Then *OutboxMessage
}

// LikePattern is the SQL LIKE pattern (ESCAPE '\') that matches text
// anywhere, lower-cased: "" for empty text.
func LikePattern(text string) string {
	if text == "" {
		return ""
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(text)) + "%"
}
