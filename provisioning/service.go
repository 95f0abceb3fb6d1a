package provisioning

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp/audit"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/templates"
)

// ScanningMandate is the one mandate of a scanning account.
const ScanningMandate = "scanning"

// Service is the account request service. Set the fields, then call its
// methods; it is safe for concurrent use.
type Service struct {
	Store     store.Store
	Config    config.Provisioning // zero: config.DefaultProvisioning()
	Templates *templates.Engine   // renders the emails
	// Issuer is the base of the activation link: Issuer + "/activate?token=…".
	Issuer string
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger
	// Poke, when set, is called after a commit that queued an email (the
	// outbox worker's Poke).
	Poke func()

	once    sync.Once
	initErr error
	cal     *Calendar
	occ     map[string]config.Occupation
	cfgv    config.Provisioning
}

func (s *Service) init() error {
	s.once.Do(func() {
		cfg := s.Config
		def := config.DefaultProvisioning()
		if cfg.TimeZone == "" {
			cfg.TimeZone = def.TimeZone
		}
		if cfg.Holidays == "" {
			cfg.Holidays = def.Holidays
		}
		if cfg.BusinessDays == 0 {
			cfg.BusinessDays = def.BusinessDays
		}
		if cfg.ActivationTTL == 0 {
			cfg.ActivationTTL = def.ActivationTTL
		}
		if cfg.CommentMaxLength == 0 {
			cfg.CommentMaxLength = def.CommentMaxLength
		}
		s.cfgv = cfg
		s.cal, s.initErr = NewCalendar(cfg)
		s.occ = map[string]config.Occupation{}
		for _, o := range cfg.OccupationList() {
			s.occ[o.Name] = o
		}
		if s.Templates == nil && s.initErr == nil {
			s.initErr = errors.New("provisioning: Service.Templates is nil")
		}
	})
	return s.initErr
}

func (s *Service) cfg() config.Provisioning { return s.cfgv }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) roleMailboxes() []string {
	if len(s.cfgv.RoleMailboxes) > 0 {
		return s.cfgv.RoleMailboxes
	}
	return DefaultRoleMailboxes
}

func (s *Service) occupation(name string) (config.Occupation, bool) {
	o, ok := s.occ[name]
	return o, ok
}

func (s *Service) isHealth(occupation string) bool {
	o, ok := s.occ[occupation]
	return ok && o.Health
}

// Occupations lists the occupations a request may name, in display order
// (for the form's select).
func (s *Service) Occupations() []config.Occupation {
	_ = s.init()
	return s.cfg().OccupationList()
}

// Features returns the features of an occupation (the "features" claim).
func (s *Service) Features(occupation string) []string {
	_ = s.init()
	return s.occ[occupation].Features
}

// DueAt is the due date of a request submitted at t: t plus the configured
// business days (3), Monday–Friday without holidays, in America/Toronto.
func (s *Service) DueAt(t time.Time) (time.Time, error) {
	if err := s.init(); err != nil {
		return time.Time{}, err
	}
	return s.cal.AddBusinessDays(t, s.cfg().BusinessDays), nil
}

// Institutions lists the institutions the actor may request accounts for:
// every one for an admin, those where the user holds account_requests
// otherwise (for the form's checkboxes).
func (s *Service) Institutions(ctx context.Context, actor Actor) ([]store.Institution, error) {
	all, err := s.Store.ListInstitutions(ctx)
	if err != nil || actor.Admin {
		return all, err
	}
	if actor.UserID == "" {
		return nil, nil
	}
	ms, err := s.Store.ListMemberships(ctx, actor.UserID)
	if err != nil {
		return nil, err
	}
	var out []store.Institution
	for _, in := range all {
		if slices.ContainsFunc(ms, func(m store.Membership) bool {
			return m.InstitutionID == in.ID && slices.Contains(m.Rights, store.RightAccountRequests)
		}) {
			out = append(out, in)
		}
	}
	return out, nil
}

// requester loads the actor's account (zero for a client token).
func (s *Service) requester(ctx context.Context, q store.Tx, actor Actor) (store.User, error) {
	if actor.UserID == "" {
		if !actor.Admin {
			return store.User{}, errNotAdmin
		}
		return store.User{}, nil
	}
	u, err := q.GetUser(ctx, actor.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, &ForbiddenError{Message: "Your account was not found.", MessageFR: "Votre compte est introuvable."}
	}
	if err == nil && u.Status != store.StatusActive {
		return store.User{}, &ForbiddenError{Message: "Your account is not active.", MessageFR: "Votre compte n'est pas actif."}
	}
	return u, err
}

// Submit validates req against every rule of the procedure and stores it
// as submitted, with its due date, an audit event ("account_request.submitted")
// and, when the primary institution auto-approves and nothing needs a
// look, its approval. Errors: *ForbiddenError (403: the requester lacks
// account_requests at an institution, named), *ValidationError (422: every
// problem at once; nothing stored), *PendingError (409: a submitted request
// for the same email exists). Warnings (missing lab numbers, an update of
// an existing account) come back in the Result.
func (s *Service) Submit(ctx context.Context, actor Actor, req Request) (Result, error) {
	if err := s.init(); err != nil {
		return Result{}, err
	}
	requester, err := s.requester(ctx, s.Store, actor)
	if err != nil {
		return Result{}, err
	}
	e, err := s.evaluate(ctx, s.Store, actor, requester, req)
	if err != nil {
		return Result{}, fmt.Errorf("provisioning: evaluate: %w", err)
	}
	if err := e.fail(); err != nil {
		return Result{}, err
	}
	r := e.draft
	if r.Email != "" && r.AccountType == store.AccountPerson {
		switch pending, err := s.Store.PendingAccountRequestByEmail(ctx, foldEmail(r.Email)); {
		case err == nil:
			return Result{}, &PendingError{RequestID: pending.ID}
		case !errors.Is(err, store.ErrNotFound):
			return Result{}, fmt.Errorf("provisioning: pending request: %w", err)
		}
	}
	now := s.now()
	r.ID = uuid.NewString()
	r.Status = store.RequestSubmitted
	r.RequesterID = actor.id()
	r.RequesterEmail = requester.Email
	r.RequesterName = strings.TrimSpace(requester.GivenName + " " + requester.FamilyName)
	r.RequesterLocale = requester.Locale
	r.CreatedAt, r.UpdatedAt = now, now
	if r.DueAt, err = s.DueAt(now); err != nil {
		return Result{}, err
	}
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccountRequest(ctx, r); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, actor, "account_request.submitted", e.target.ID, map[string]string{
			"request_id": r.ID, "kind": r.Kind, "account_type": r.AccountType,
			"institutions": strings.Join(instIDs(r.Institutions), ","),
		}))
	})
	if errors.Is(err, store.ErrConflict) {
		// Another submission for the same address won the race.
		if pending, perr := s.Store.PendingAccountRequestByEmail(ctx, foldEmail(r.Email)); perr == nil {
			return Result{}, &PendingError{RequestID: pending.ID}
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("provisioning: submit: %w", err)
	}
	res := Result{ID: r.ID, Status: r.Status, DueAt: r.DueAt, Kind: r.Kind, Warnings: e.warnings.list}
	if res.Warnings == nil {
		res.Warnings = []Problem{}
	}
	if prim := e.insts[r.PrimaryInstitution()]; prim.AutoApprove && autoApprovable(e) {
		system := Actor{Admin: true, RequestID: actor.RequestID, IP: actor.IP}
		d, err := s.Approve(ctx, system, r.ID, nil)
		if err != nil {
			s.logger().WarnContext(ctx, "account request auto-approval failed: left in the queue", "request_id", r.ID, "err", err)
		} else {
			res.Status, res.UserID = d.Status, d.UserID
		}
	}
	return res, nil
}

// autoApprovable: every check passed and nothing needs a person's look
// (no warning other than missing lab numbers, no special right asked for).
func autoApprovable(e *evaluation) bool {
	if len(e.draft.SpecialRights) > 0 {
		return false
	}
	for _, w := range e.warnings.list {
		if w.Code != "lab_registrations_missing" {
			return false
		}
	}
	return true
}

func instIDs(in []store.RequestInstitution) []string {
	out := make([]string, len(in))
	for i, r := range in {
		out[i] = r.ID
	}
	return out
}

// event is an audit event of actor.
func (s *Service) event(ctx context.Context, actor Actor, typ, userID string, details map[string]string) store.AuditEvent {
	e := store.AuditEvent{Type: typ, ActorID: actor.id(), UserID: userID, ClientID: actor.ClientID,
		IP: actor.IP, RequestID: actor.RequestID, Details: details}
	return (&audit.Recorder{Now: s.now}).Event(ctx, e)
}

// ---- queue ----

type cursor struct {
	DueAt time.Time `json:"d"`
	ID    string    `json:"i"`
}

// List returns the requests matching f, oldest due first: every request
// for an admin, the actor's own otherwise. A bad cursor is a
// *ValidationError on "cursor".
func (s *Service) List(ctx context.Context, actor Actor, f Filter) (Page, error) {
	if err := s.init(); err != nil {
		return Page{}, err
	}
	var p problems
	sf := store.AccountRequestFilter{Status: f.Status, InstitutionID: f.InstitutionID}
	switch f.Status {
	case "", store.RequestSubmitted, store.RequestApproved, store.RequestRejected, store.RequestCompleted:
	default:
		p.add("status", "invalid_choice", "Must be submitted, approved, rejected or completed.",
			"Doit être submitted, approved, rejected ou completed.")
	}
	p.line("institution", f.InstitutionID, 64)
	if f.Cursor != "" {
		var c cursor
		b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || len(f.Cursor) > 512 || json.Unmarshal(b, &c) != nil || c.DueAt.IsZero() || c.ID == "" {
			p.add("cursor", "invalid_cursor", "Not a cursor of this list.", "Ce n'est pas un curseur de cette liste.")
		}
		sf.AfterDueAt, sf.AfterID = c.DueAt, c.ID
	}
	if err := p.err(); err != nil {
		return Page{}, err
	}
	now := s.now()
	if f.Overdue {
		sf.OverdueAt = now
	}
	if !actor.Admin {
		if actor.UserID == "" {
			return Page{}, errNotAdmin
		}
		sf.RequesterID = actor.UserID
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 200)
	sf.Limit = limit + 1
	list, err := s.Store.ListAccountRequests(ctx, sf)
	if err != nil {
		return Page{}, fmt.Errorf("provisioning: list: %w", err)
	}
	var page Page
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		b, _ := json.Marshal(cursor{DueAt: last.DueAt, ID: last.ID})
		page.Next = base64.RawURLEncoding.EncodeToString(b)
	}
	page.Requests = make([]Item, len(list))
	for i, r := range list {
		page.Requests[i] = Item{AccountRequest: r, Overdue: overdue(r, now)}
	}
	return page, nil
}

func overdue(r store.AccountRequest, now time.Time) bool {
	return r.Status == store.RequestSubmitted && r.DueAt.Before(now)
}

// Counts is the state of the queue now, for the metrics
// (sesame_account_requests{status}, sesame_account_requests_overdue).
func (s *Service) Counts(ctx context.Context) (store.AccountRequestCounts, error) {
	return s.Store.CountAccountRequests(ctx, s.now())
}

// get loads a request the actor may see.
func (s *Service) get(ctx context.Context, q store.Tx, actor Actor, id string) (store.AccountRequest, error) {
	if input := strings.TrimSpace(id); input == "" || len(id) > 64 || !isASCII(id) {
		return store.AccountRequest{}, ErrNotFound
	}
	r, err := q.GetAccountRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("provisioning: get %s: %w", id, err)
	}
	if !actor.Admin && (actor.UserID == "" || r.RequesterID != actor.UserID) {
		return store.AccountRequest{}, ErrNotFound
	}
	return r, nil
}

// Get returns one request (an admin's, or the requester's own: ErrNotFound
// otherwise) with each rule's verdict now and the reference account's
// mandates at the requested institutions.
func (s *Service) Get(ctx context.Context, actor Actor, id string) (Detail, error) {
	if err := s.init(); err != nil {
		return Detail{}, err
	}
	r, err := s.get(ctx, s.Store, actor, id)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{Item: Item{AccountRequest: r, Overdue: overdue(r, s.now())}}
	for _, in := range r.Institutions {
		if inst, err := s.Store.GetInstitution(ctx, in.ID); err == nil {
			d.Institutions = append(d.Institutions, inst)
		}
	}
	if r.ReferenceID != "" {
		if u, err := s.Store.GetUser(ctx, r.ReferenceID); err == nil {
			d.Reference = u
		}
	}
	if d.ReferenceMandates, err = s.referenceMandates(ctx, s.Store, d.Reference.ID, r.Institutions); err != nil {
		return Detail{}, err
	}
	if r.Status == store.RequestSubmitted {
		d.Verdicts, err = s.verdicts(ctx, s.Store, r)
		if err != nil {
			return Detail{}, err
		}
	}
	return d, nil
}

// asRequest is the stored request as the requester typed it.
func asRequest(r store.AccountRequest) Request {
	req := Request{
		AccountType: r.AccountType,
		NewUser: NewUser{GivenName: r.GivenName, FamilyName: r.FamilyName, Email: r.Email,
			PreviouslyHadAccount: r.PreviouslyHadAccount, Locale: r.Locale},
		Occupation: r.Occupation, PracticeNumber: r.PracticeNumber, PrescriberNumber: r.PrescriberNumber,
		LabRegistrations: r.LabRegistrations,
		ReferenceAccount: ReferenceAccount{GivenName: r.ReferenceGivenName, FamilyName: r.ReferenceFamilyName, ID: r.ReferenceID},
		Billing:          Billing{Name: r.BillingName, CustomerNumber: r.BillingCustomerNumber},
		SpecialRights:    r.SpecialRights, Comment: r.Comment,
	}
	for _, in := range r.Institutions {
		req.Institutions = append(req.Institutions, InstitutionChoice{ID: in.ID, Primary: in.Primary})
	}
	if r.AccountType == store.AccountScanning {
		req.NewUser = NewUser{Locale: r.Locale}
		req.StationName, req.ResponsibleName, req.ResponsibleEmail = r.StationName, r.ResponsibleName, r.Email
	}
	return req
}

// rules are the verdicts Get shows, with the fields each looks at.
var rules = []struct {
	rule   string
	fields []string
	okEN   string
	okFR   string
}{
	{"requester", []string{"requester"}, "The requester holds the right to request accounts at every institution.", "Le demandeur détient le droit de demander des comptes dans chaque établissement."},
	{"new_user", []string{"new_user.given_name", "new_user.family_name", "station_name", "responsible_name", "new_user"}, "Name given; no duplicate account.", "Nom indiqué; aucun compte en double."},
	{"email", []string{"new_user.email", "responsible_email"}, "A personal address, not the requester's, not shared, not used by another account.", "Une adresse personnelle, pas celle du demandeur, non partagée, non utilisée par un autre compte."},
	{"institutions", []string{"institutions"}, "Known institutions, exactly one primary.", "Établissements connus, un seul principal."},
	{"occupation", []string{"occupation"}, "Occupation from the list; no administrative account for a health professional.", "Profession de la liste; pas de compte administratif pour un professionnel de la santé."},
	{"numbers", []string{"practice_number", "prescriber_number"}, "Practice and prescriber numbers valid and not used by someone else.", "Numéros de pratique et de prescripteur valides et non utilisés par quelqu'un d'autre."},
	{"lab_registrations", []string{"lab_registrations"}, "Laboratory registration numbers given where they apply.", "Numéros d'inscription de laboratoire indiqués là où ils s'appliquent."},
	{"reference_account", []string{"reference_account"}, "An active reference account: its mandates at these institutions are copied (never its special rights).", "Un compte de référence actif : ses mandats dans ces établissements sont copiés (jamais ses droits spéciaux)."},
	{"billing", []string{"billing"}, "The billing account belongs to the primary institution.", "Le compte de facturation appartient à l'établissement principal."},
	{"special_rights", []string{"special_rights"}, "Special rights asked for are granted only if ticked at approval.", "Les droits spéciaux demandés ne sont accordés que s'ils sont cochés à l'approbation."},
	{"comment", []string{"comment"}, "Comment within the length limit.", "Commentaire dans la limite de longueur."},
}

func fieldIn(field string, prefixes []string) bool {
	for _, p := range prefixes {
		if field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(field, p+"[") {
			return true
		}
	}
	return false
}

// verdicts re-applies the rules to a stored request, against the accounts
// as they are now.
func (s *Service) verdicts(ctx context.Context, q store.Tx, r store.AccountRequest) ([]Verdict, error) {
	actor := Actor{UserID: r.RequesterID, Admin: strings.HasPrefix(r.RequesterID, "client:") || r.RequesterID == "system"}
	requester := store.User{}
	if !actor.Admin {
		u, err := q.GetUser(ctx, r.RequesterID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		requester = u
	}
	e, err := s.evaluate(ctx, q, actor, requester, asRequest(r))
	if err != nil {
		return nil, err
	}
	var out []Verdict
	for _, rule := range rules {
		v := Verdict{Rule: rule.rule, OK: true, Message: rule.okEN, MessageFR: rule.okFR}
		if rule.rule == "requester" && e.forbidden != nil {
			v.OK, v.Message, v.MessageFR = false, e.forbidden.Message, e.forbidden.MessageFR
		}
		var en, fr []string
		for _, p := range e.problems.list {
			if fieldIn(p.Field, rule.fields) {
				en, fr = append(en, p.Message), append(fr, p.MessageFR)
			}
		}
		if len(en) > 0 {
			v.OK, v.Message, v.MessageFR = false, strings.Join(en, " "), strings.Join(fr, " ")
		} else {
			for _, w := range e.warnings.list {
				if fieldIn(w.Field, rule.fields) {
					en, fr = append(en, w.Message), append(fr, w.MessageFR)
				}
			}
			if len(en) > 0 {
				v.Warning, v.Message, v.MessageFR = true, strings.Join(en, " "), strings.Join(fr, " ")
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// ---- decisions ----

// Approve creates the account (pending activation) or updates the
// existing one (reopened if closed), in one transaction with the request's
// decision: memberships with the primary institution, the reference
// account's mandates at the requested institutions (the scanning mandate
// for a scanning account), the special rights among those requested that
// grantRights ticks, lab registrations, the billing link, an audit event
// ("account_request.approved"), and the welcome email to the new user's
// address only (username and a single-use activation link, never a
// password), whose sending then queues the requester's confirmation and
// completes the request. The account's earlier activation links stop
// working, and so do its forgotten-password links when its address
// changes. Errors: *ForbiddenError (not an admin),
// ErrNotFound, ErrDecided (another decision came first: one user, one
// email), *ValidationError (a right not requested, or a rule that fails
// now: e.g. the reference account was closed since).
func (s *Service) Approve(ctx context.Context, actor Actor, id string, grantRights []string) (Decision, error) {
	if err := s.init(); err != nil {
		return Decision{}, err
	}
	if !actor.Admin {
		return Decision{}, errNotAdmin
	}
	var d Decision
	var welcomeQueued bool
	var err error
	// A username taken at the same moment by another approval: again, with
	// the next free one (the transaction is gone on PostgreSQL).
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.approveTx(ctx, actor, id, grantRights, &d, &welcomeQueued); !errors.Is(err, errUsernameRace) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Decision{}, ErrDecided
		}
		var ve *ValidationError
		var fe *ForbiddenError
		if errors.As(err, &ve) || errors.As(err, &fe) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrDecided) {
			return Decision{}, err
		}
		return Decision{}, fmt.Errorf("provisioning: approve %s: %w", id, err)
	}
	if welcomeQueued && s.Poke != nil {
		s.Poke()
	}
	return d, nil
}

var errUsernameRace = errors.New("provisioning: username taken meanwhile")

func (s *Service) approveTx(ctx context.Context, actor Actor, id string, grantRights []string, d *Decision, welcomeQueued *bool) error {
	return s.Store.InTx(ctx, func(tx store.Tx) error {
		r, err := s.get(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if r.Status != store.RequestSubmitted {
			return ErrDecided
		}
		var p problems
		var granted []string
		for i, g := range grantRights {
			switch {
			case !slices.Contains(r.SpecialRights, g):
				p.add(fmt.Sprintf("grant_rights[%d]", i), "not_requested", "Only special rights the requester asked for can be granted.",
					"Seuls les droits spéciaux demandés par le demandeur peuvent être accordés.")
			case !slices.Contains(granted, g):
				granted = append(granted, g)
			}
		}
		if err := p.err(); err != nil {
			return err
		}
		slices.Sort(granted)

		// Claim the request first: on PostgreSQL the row lock makes a
		// concurrent approval wait here, then lose (ErrConflict).
		now := s.now()
		r.Status, r.ReviewerID, r.DecidedAt, r.GrantedRights, r.UpdatedAt = store.RequestApproved, actor.id(), now, granted, now
		if err := tx.UpdateAccountRequest(ctx, r, store.RequestSubmitted); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ErrDecided
			}
			return err
		}

		// The rules again, against the accounts as they are now (the
		// requester's rights were checked at submission).
		requester, err := tx.GetUser(ctx, r.RequesterID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e, err := s.evaluate(ctx, tx, Actor{UserID: r.RequesterID, Admin: true}, requester, asRequest(r))
		if err != nil {
			return err
		}
		if err := e.problems.err(); err != nil {
			return err
		}
		u, err := s.applyApproval(ctx, tx, actor, &r, e, granted, now)
		if err != nil {
			return err
		}
		*welcomeQueued = true
		*d = Decision{Status: store.RequestApproved, UserID: u.ID}
		return nil
	})
}

// applyApproval writes the account and its access, and queues the welcome.
func (s *Service) applyApproval(ctx context.Context, tx store.Tx, actor Actor, r *store.AccountRequest, e *evaluation,
	granted []string, now time.Time) (store.User, error) {
	var u store.User
	emailChanged := false
	if e.target.ID != "" {
		if err := tx.LockUser(ctx, e.target.ID); err != nil {
			return u, err
		}
		var err error
		if u, err = tx.GetUser(ctx, e.target.ID); err != nil {
			return u, err
		}
		if u.Status == store.StatusClosed || u.Status == store.StatusDisabled {
			u.Status = store.StatusPendingActivation
		}
		if r.Occupation != "" {
			u.Occupation = r.Occupation
		}
		if r.PracticeNumber != "" {
			u.PracticeNumber = r.PracticeNumber
		}
		if r.PrescriberNumber != "" {
			u.PrescriberNumber = r.PrescriberNumber
		}
		emailChanged = r.Email != "" && r.Email != u.Email
		if r.Email != "" {
			u.Email = r.Email
		}
		u.UpdatedAt = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return u, err
		}
		if emailChanged {
			// The links sent to the old address stop working; the welcome
			// below carries a new activation link to the new one.
			if _, err := users.ExpireEmailedLinks(ctx, tx, u.ID, now); err != nil {
				return u, err
			}
		}
	} else {
		username, err := s.username(ctx, tx, r)
		if err != nil {
			return u, err
		}
		u = store.User{
			ID: uuid.NewString(), Username: username, Email: r.Email, GivenName: r.GivenName, FamilyName: r.FamilyName,
			Locale: r.Locale, Status: store.StatusPendingActivation, AccountType: r.AccountType,
			Occupation: r.Occupation, PracticeNumber: r.PracticeNumber, PrescriberNumber: r.PrescriberNumber,
			CreatedAt: now, UpdatedAt: now,
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return u, errUsernameRace
			}
			return u, err
		}
	}

	// Memberships: the requested institutions, the primary one; mandates
	// copied from the reference account at these institutions only.
	mandates, err := s.referenceMandates(ctx, tx, e.reference.ID, r.Institutions)
	if err != nil {
		return u, err
	}
	existing, err := tx.ListMemberships(ctx, u.ID)
	if err != nil {
		return u, err
	}
	prim := r.PrimaryInstitution()
	// Demote the old primary first (at most one primary at any time).
	for _, m := range existing {
		if m.Primary && m.InstitutionID != prim {
			m.Primary = false
			if err := tx.PutMembership(ctx, m); err != nil {
				return u, err
			}
		}
	}
	for _, in := range r.Institutions {
		m := store.Membership{UserID: u.ID, InstitutionID: in.ID, Primary: in.ID == prim, CreatedAt: now}
		if i := slices.IndexFunc(existing, func(x store.Membership) bool { return x.InstitutionID == in.ID }); i >= 0 {
			old := existing[i]
			m.CreatedAt, m.Mandates, m.Rights, m.BillingCustomerNumber = old.CreatedAt, old.Mandates, old.Rights, old.BillingCustomerNumber
		}
		if r.AccountType == store.AccountScanning {
			m.Mandates = []string{ScanningMandate}
		} else {
			m.Mandates = union(m.Mandates, mandates[in.ID])
			m.Rights = union(m.Rights, granted)
		}
		if in.ID == prim {
			m.BillingCustomerNumber = r.BillingCustomerNumber
		}
		if err := tx.PutMembership(ctx, m); err != nil {
			return u, err
		}
	}
	for _, l := range r.LabRegistrations {
		if err := tx.AddLabRegistration(ctx, u.ID, l); err != nil {
			return u, err
		}
	}

	// The welcome, to the new user's address only; its sending queues the
	// requester's confirmation.
	token, err := users.NewActivationTokenTTL(ctx, tx, u.ID, now, s.cfg().ActivationTTL)
	if err != nil {
		return u, err
	}
	welcomeKey := "account-request-welcome:" + r.ID
	welcome, err := s.welcomeEmail(u, token, now)
	if err != nil {
		return u, err
	}
	var then *store.OutboxMessage
	if r.RequesterEmail != "" {
		confirm, err := s.doneEmail(*r, u)
		if err != nil {
			return u, err
		}
		b, err := json.Marshal(confirm)
		if err != nil {
			return u, err
		}
		key := "account-request-done:" + r.ID
		then = &store.OutboxMessage{ID: notify.OutboxID(key), Kind: notify.KindEmail, IdempotencyKey: key, Payload: b}
	}
	if err := notify.EnqueueEmailThen(ctx, tx, welcomeKey, welcome, then, now); err != nil {
		return u, err
	}

	r.UserID, r.WelcomeOutboxID, r.Kind, r.TargetUserID = u.ID, notify.OutboxID(welcomeKey), e.draft.Kind, e.target.ID
	if err := tx.UpdateAccountRequest(ctx, *r, store.RequestApproved); err != nil {
		return u, err
	}
	details := map[string]string{"request_id": r.ID, "kind": r.Kind, "institutions": strings.Join(instIDs(r.Institutions), ",")}
	if len(granted) > 0 {
		details["granted_rights"] = strings.Join(granted, ",")
	}
	if emailChanged {
		details["email_changed"] = "true"
	}
	return u, tx.AppendAuditEvent(ctx, s.event(ctx, actor, "account_request.approved", u.ID, details))
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// username is given.family (ASCII, lower case), with a number when taken.
func (s *Service) username(ctx context.Context, tx store.Tx, r *store.AccountRequest) (string, error) {
	base := asciiSlug(r.GivenName) + "." + asciiSlug(r.FamilyName)
	if r.AccountType == store.AccountScanning {
		base = "scan." + asciiSlug(r.StationName)
	}
	base = strings.Trim(base, ".")
	if len(base) < 2 {
		base = "user"
	}
	if len(base) > 56 {
		base = base[:56]
	}
	for i := 1; i < 1000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s%d", base, i)
		}
		_, err := tx.GetUserByUsername(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return name, nil
		}
		if err != nil {
			return "", err
		}
	}
	return base + "." + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), nil
}

// asciiSlug: letters without accents, digits, and "-" for the rest.
func asciiSlug(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ', r == '-', r == '\'', r == '’', r == '.':
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

func (s *Service) welcomeEmail(u store.User, token string, now time.Time) (notify.Email, error) {
	lang := templates.UserLang(u.Locale)
	data := templates.ActivationEmail{
		GivenName: u.GivenName, Username: u.Username,
		Link:    strings.TrimRight(s.Issuer, "/") + "/activate?token=" + url.QueryEscape(token),
		Expires: now.Add(s.cfg().ActivationTTL).In(s.cal.loc).Format("2006-01-02 15:04"),
	}
	subject, text, html, err := s.Templates.Email(lang, "activation", data)
	if err != nil {
		return notify.Email{}, err
	}
	return notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: u.Locale}, nil
}

func (s *Service) doneEmail(r store.AccountRequest, u store.User) (notify.Email, error) {
	lang := templates.UserLang(r.RequesterLocale)
	data := templates.AccountRequestDoneEmail{
		RequesterName: r.RequesterName, UserName: strings.TrimSpace(u.GivenName + " " + u.FamilyName),
		Username: u.Username, RequestID: r.ID, Update: r.Kind == store.RequestUpdate,
	}
	subject, text, html, err := s.Templates.Email(lang, "account_request_done", data)
	if err != nil {
		return notify.Email{}, err
	}
	return notify.Email{To: r.RequesterEmail, Subject: subject, Text: text, HTML: html, Lang: localeOf(r.RequesterLocale)}, nil
}

func localeOf(locale string) string {
	if locale == "en-CA" {
		return locale
	}
	return "fr-CA"
}

// Reject records the decision with its reason (required, one paragraph),
// an audit event ("account_request.rejected") and an email of the reason
// to the requester, in one transaction. Errors as Approve's.
func (s *Service) Reject(ctx context.Context, actor Actor, id, reason string) error {
	if err := s.init(); err != nil {
		return err
	}
	if !actor.Admin {
		return errNotAdmin
	}
	var p problems
	reason = p.comment("reason", reason, maxReason)
	if !p.has("reason") {
		p.required("reason", reason)
	}
	if err := p.err(); err != nil {
		return err
	}
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		r, err := s.get(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if r.Status != store.RequestSubmitted {
			return ErrDecided
		}
		now := s.now()
		r.Status, r.ReviewerID, r.DecisionReason, r.DecidedAt, r.UpdatedAt = store.RequestRejected, actor.id(), reason, now, now
		if err := tx.UpdateAccountRequest(ctx, r, store.RequestSubmitted); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ErrDecided
			}
			return err
		}
		if r.RequesterEmail != "" {
			lang := templates.UserLang(r.RequesterLocale)
			name := strings.TrimSpace(r.GivenName + " " + r.FamilyName)
			if r.AccountType == store.AccountScanning {
				name = r.StationName
			}
			subject, text, html, err := s.Templates.Email(lang, "account_request_rejected", templates.AccountRequestRejectedEmail{
				RequesterName: r.RequesterName, UserName: name, RequestID: r.ID, Reason: reason,
			})
			if err != nil {
				return err
			}
			if err := notify.EnqueueEmail(ctx, tx, "account-request-rejected:"+r.ID, notify.Email{
				To: r.RequesterEmail, Subject: subject, Text: text, HTML: html, Lang: localeOf(r.RequesterLocale),
			}, now); err != nil {
				return err
			}
		}
		return tx.AppendAuditEvent(ctx, s.event(ctx, actor, "account_request.rejected", r.TargetUserID,
			map[string]string{"request_id": r.ID}))
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ErrDecided
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrDecided) {
			return err
		}
		return fmt.Errorf("provisioning: reject %s: %w", id, err)
	}
	if s.Poke != nil {
		s.Poke()
	}
	return nil
}
