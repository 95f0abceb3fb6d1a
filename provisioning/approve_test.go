package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

func (f *fixture) submit(t testing.TB, req Request) Result {
	t.Helper()
	res, err := f.svc.Submit(t.Context(), f.actor(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return res
}

func (f *fixture) userByEmail(t testing.TB, email string) []store.User {
	t.Helper()
	us, err := f.s.ListUsersByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

func welcomeID(requestID string) string {
	return notify.OutboxID("account-request-welcome:" + requestID)
}
func doneID(requestID string) string { return notify.OutboxID("account-request-done:" + requestID) }

func (f *fixture) email(t testing.TB, id string) (notify.Email, bool) {
	t.Helper()
	m, err := f.s.GetOutboxMessage(t.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notify.Email{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var e notify.Email
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		t.Fatal(err)
	}
	return e, true
}

var tokenRE = regexp.MustCompile(`/activate\?token=([A-Za-z0-9_%-]+)`)

func TestApprove(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		res := f.submit(t, f.valid())

		// Only admins decide; only rights asked for can be granted.
		if _, err := f.svc.Approve(ctx, f.actor(), res.ID, nil); !errors.As(err, new(*ForbiddenError)) {
			t.Fatalf("a requester approved: %v", err)
		}
		_, err := f.svc.Approve(ctx, admin, res.ID, []string{store.RightAdminAccount})
		if p := validationProblems(err); len(p) != 1 || p[0].Code != "not_requested" {
			t.Fatalf("granting a right not asked for: %v", err)
		}
		if _, err := f.svc.Approve(ctx, admin, "no-such-request", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown request: %v", err)
		}

		f.clock.Set(t0.Add(time.Hour))
		d, err := f.svc.Approve(ctx, admin, res.ID, []string{store.RightPatientMerge})
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.GetUser(ctx, d.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Status != store.StatusPendingActivation || u.Email != "zoe.oneil@example.org" || u.Username != "zoe.o-neil-cote" ||
			u.Occupation != "nurse" || u.PracticeNumber != "2345678" || u.AccountType != store.AccountPerson || u.GivenName != "Zoé" {
			t.Fatalf("user %+v", u)
		}
		ms, _ := s.ListMemberships(ctx, u.ID)
		want := []store.Membership{
			// The reference's mandates at A; none of C (not requested), none of its rights.
			{UserID: u.ID, InstitutionID: instA, Primary: true, BillingCustomerNumber: "123", Mandates: []string{"nursing", "vaccination"},
				Rights: []string{store.RightPatientMerge}, CreatedAt: t0.Add(time.Hour)},
			{UserID: u.ID, InstitutionID: instB, Rights: []string{store.RightPatientMerge}, CreatedAt: t0.Add(time.Hour)},
		}
		if !slices.EqualFunc(ms, want, func(a, b store.Membership) bool {
			return a.InstitutionID == b.InstitutionID && a.Primary == b.Primary && a.BillingCustomerNumber == b.BillingCustomerNumber &&
				slices.Equal(a.Mandates, b.Mandates) && slices.Equal(a.Rights, b.Rights) && a.CreatedAt.Equal(b.CreatedAt)
		}) {
			t.Fatalf("memberships\n got %+v\nwant %+v", ms, want)
		}
		labs, _ := s.ListLabRegistrations(ctx, u.ID)
		if len(labs) != 1 || labs[0].Number != "L-4455" {
			t.Fatalf("lab registrations %+v", labs)
		}
		r, _ := s.GetAccountRequest(ctx, res.ID)
		if r.Status != store.RequestApproved || r.UserID != u.ID || r.ReviewerID != admin.UserID ||
			!slices.Equal(r.GrantedRights, []string{store.RightPatientMerge}) || r.WelcomeOutboxID != welcomeID(res.ID) {
			t.Fatalf("request %+v", r)
		}

		// The welcome: to the new user only, with the username and a
		// single-use link, never a password.
		e, ok := f.email(t, welcomeID(res.ID))
		if !ok || e.To != "zoe.oneil@example.org" || !strings.Contains(e.Text, u.Username) || !strings.Contains(e.HTML, u.Username) {
			t.Fatalf("welcome %+v", e)
		}
		if strings.Contains(strings.ToLower(e.Text), "mot de passe :") {
			t.Fatalf("the welcome carries a password:\n%s", e.Text)
		}
		m := tokenRE.FindStringSubmatch(e.Text)
		if m == nil {
			t.Fatalf("no activation link in\n%s", e.Text)
		}
		token, _ := url.QueryUnescape(m[1])
		tok, err := s.ConsumeActionToken(ctx, oidcstore.HashToken(token), users.ActivationKind, t0.Add(7*24*time.Hour))
		if err != nil || tok.UserID != u.ID || !tok.ExpiresAt.Equal(t0.Add(time.Hour+7*24*time.Hour)) {
			t.Fatalf("activation token: %+v %v", tok, err)
		}
		if _, err := s.ConsumeActionToken(ctx, oidcstore.HashToken(token), users.ActivationKind, t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("activation token used twice: %v", err)
		}
		// The confirmation waits for the welcome to be sent.
		if _, ok := f.email(t, doneID(res.ID)); ok {
			t.Fatal("the requester's confirmation was queued before the welcome was sent")
		}

		// Decided once.
		if _, err := f.svc.Approve(ctx, admin, res.ID, nil); !errors.Is(err, ErrDecided) {
			t.Fatalf("second approval: %v", err)
		}
		if err := f.svc.Reject(ctx, admin, res.ID, "trop tard"); !errors.Is(err, ErrDecided) {
			t.Fatalf("reject after approval: %v", err)
		}
		events, _ := s.ListAuditEvents(ctx, store.AuditFilter{Type: "account_request.approved"})
		if len(events) != 1 || events[0].ActorID != admin.UserID || events[0].UserID != u.ID || events[0].Details["request_id"] != res.ID {
			t.Fatalf("audit %+v", events)
		}
		events, _ = s.ListAuditEvents(ctx, store.AuditFilter{Type: "account_request.submitted"})
		if len(events) != 1 || events[0].ActorID != f.requester.ID {
			t.Fatalf("audit %+v", events)
		}
	})
}

func TestApproveUpdatesExistingAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		req := f.valid()
		req.NewUser = NewUser{GivenName: "Marie", FamilyName: "Gagnon", Email: "marie.gagnon@example.org", PreviouslyHadAccount: true}
		req.PracticeNumber = "1111111"
		// Links sent to the old address before the account was closed.
		var oldActivation string
		if err := s.InTx(ctx, func(tx store.Tx) error {
			var err error
			oldActivation, err = users.NewActivationToken(ctx, tx, f.closedNurse.ID, t0.Add(-time.Minute))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateActionToken(ctx, store.ActionToken{Hash: "old-reset", Kind: users.PasswordResetKind, UserID: f.closedNurse.ID,
			CreatedAt: t0.Add(-time.Minute), ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		res := f.submit(t, req)
		if res.Kind != store.RequestUpdate {
			t.Fatalf("kind %s", res.Kind)
		}
		d, err := f.svc.Approve(ctx, admin, res.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.UserID != f.closedNurse.ID {
			t.Fatalf("approval made user %s, want the existing %s", d.UserID, f.closedNurse.ID)
		}
		u, _ := s.GetUser(ctx, d.UserID)
		if u.Status != store.StatusPendingActivation || u.Email != "marie.gagnon@example.org" || u.Username != "marie.gagnon" {
			t.Fatalf("reopened user %+v", u)
		}
		if us, _ := s.ListUsersByPracticeNumber(ctx, "1111111"); len(us) != 1 {
			t.Fatalf("a duplicate account: %+v", us)
		}
		ms, _ := s.ListMemberships(ctx, u.ID)
		if len(ms) != 2 || !ms[0].Primary || ms[0].InstitutionID != instA {
			t.Fatalf("memberships %+v", ms)
		}

		// The address changed: the links sent to the old one no longer
		// work; the welcome's, to the new one, does.
		if _, err := s.ConsumeActionToken(ctx, oidcstore.HashToken(oldActivation), users.ActivationKind, t0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the activation link sent to the old address still works: %v", err)
		}
		if _, err := s.ConsumeActionToken(ctx, "old-reset", users.PasswordResetKind, t0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the forgotten-password link sent to the old address still works: %v", err)
		}
		e, ok := f.email(t, welcomeID(res.ID))
		m := tokenRE.FindStringSubmatch(e.Text)
		if !ok || e.To != "marie.gagnon@example.org" || m == nil {
			t.Fatalf("welcome %+v", e)
		}
		token, _ := url.QueryUnescape(m[1])
		if _, err := s.ConsumeActionToken(ctx, oidcstore.HashToken(token), users.ActivationKind, t0.Add(time.Minute)); err != nil {
			t.Fatalf("the welcome's activation link: %v", err)
		}
		events, _ := s.ListAuditEvents(ctx, store.AuditFilter{Type: "account_request.approved"})
		if len(events) != 1 || events[0].Details["email_changed"] != "true" {
			t.Fatalf("audit %+v", events)
		}
	})
}

func TestApproveScanning(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		res := f.submit(t, f.scanning())
		// A second station for the same responsible is not a duplicate.
		second := f.scanning()
		second.StationName = "Numériseur bureau 2"
		res2 := f.submit(t, second)
		d, err := f.svc.Approve(ctx, admin, res.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Approve(ctx, admin, res2.ID, nil); err != nil {
			t.Fatal(err)
		}
		u, _ := s.GetUser(ctx, d.UserID)
		ms, _ := s.ListMemberships(ctx, u.ID)
		if u.AccountType != store.AccountScanning || u.Username != "scan.numeriseur-accueil" || u.Email != "gestion@clinique-a.example" ||
			len(ms) != 1 || !ms[0].Primary || !slices.Equal(ms[0].Mandates, []string{ScanningMandate}) || len(ms[0].Rights) != 0 {
			t.Fatalf("scanning account %+v %+v", u, ms)
		}
	})
}

func TestReject(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		res := f.submit(t, f.valid())
		for _, bad := range []string{"", "  ", "<b>non</b>", "a\x00b", strings.Repeat("x", 2001)} {
			if p := validationProblems(f.svc.Reject(ctx, admin, res.ID, bad)); len(p) != 1 || p[0].Field != "reason" {
				t.Fatalf("reason %q: %v", bad, p)
			}
		}
		if err := f.svc.Reject(ctx, f.actor(), res.ID, "non"); !errors.As(err, new(*ForbiddenError)) {
			t.Fatalf("a requester rejected: %v", err)
		}
		if err := f.svc.Reject(ctx, admin, res.ID, "Adresse partagée : donnez l'adresse de la personne."); err != nil {
			t.Fatal(err)
		}
		r, _ := s.GetAccountRequest(ctx, res.ID)
		if r.Status != store.RequestRejected || r.DecisionReason != "Adresse partagée : donnez l'adresse de la personne." || r.ReviewerID != admin.UserID {
			t.Fatalf("request %+v", r)
		}
		e, ok := f.email(t, notify.OutboxID("account-request-rejected:"+res.ID))
		if !ok || e.To != f.requester.Email || !strings.Contains(e.Text, "Adresse partagée") || !strings.Contains(e.Text, "Zoé") {
			t.Fatalf("rejection email %+v", e)
		}
		if us := f.userByEmail(t, "zoe.oneil@example.org"); len(us) != 0 {
			t.Fatalf("a rejected request made a user: %+v", us)
		}
		if _, err := f.svc.Approve(ctx, admin, res.ID, nil); !errors.Is(err, ErrDecided) {
			t.Fatalf("approve after reject: %v", err)
		}
		// The address is free again.
		f.submit(t, f.valid())
	})
}

// TestApproveConcurrently: two admins at once → one user, one welcome.
func TestApproveConcurrently(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		for round := range 5 {
			req := f.valid()
			req.NewUser.Email = "concurrent" + string(rune('a'+round)) + "@example.org"
			res := f.submit(t, req)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = f.svc.Approve(t.Context(), admin, res.ID, []string{store.RightPatientMerge})
				}()
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, ErrDecided):
					t.Fatalf("concurrent approval: %v", err)
				}
			}
			if us := f.userByEmail(t, req.NewUser.Email); ok != 1 || len(us) != 1 {
				t.Fatalf("%d approvals succeeded, %d users", ok, len(us))
			}
			msgs, err := s.ClaimOutbox(t.Context(), t0.Add(time.Hour), time.Minute, 100)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, m := range msgs {
				var e notify.Email
				_ = json.Unmarshal(m.Payload, &e)
				if e.To == req.NewUser.Email {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d welcome emails, want 1", n)
			}
		}
	})
}

var errInjected = errors.New("injected failure")

// failStore fails (or cancels the context at) the n-th store call made
// inside a transaction.
type failStore struct {
	store.Store
	mu     sync.Mutex
	calls  int
	failAt int
	cancel context.CancelFunc // when set, cancel instead of failing
}

func (f *failStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return f.Store.InTx(ctx, func(tx store.Tx) error { return fn(failTx{Tx: tx, f: f, ctx: ctx}) })
}

type failTx struct {
	store.Tx
	f   *failStore
	ctx context.Context
}

func (t failTx) step() error {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.f.calls++
	if t.f.calls == t.f.failAt {
		if t.f.cancel != nil {
			t.f.cancel()
			return t.ctx.Err()
		}
		return errInjected
	}
	return nil
}

func (t failTx) CreateUser(ctx context.Context, u store.User) error {
	return errors.Join(t.step(), t.Tx.CreateUser(ctx, u))
}
func (t failTx) UpdateUser(ctx context.Context, u store.User) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.UpdateUser(ctx, u)
}
func (t failTx) PutMembership(ctx context.Context, m store.Membership) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.PutMembership(ctx, m)
}
func (t failTx) AddLabRegistration(ctx context.Context, id string, r store.LabRegistration) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.AddLabRegistration(ctx, id, r)
}
func (t failTx) CreateActionToken(ctx context.Context, a store.ActionToken) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.CreateActionToken(ctx, a)
}
func (t failTx) EnqueueOutbox(ctx context.Context, m store.OutboxMessage) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.EnqueueOutbox(ctx, m)
}
func (t failTx) UpdateAccountRequest(ctx context.Context, r store.AccountRequest, from store.AccountRequestStatus) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.UpdateAccountRequest(ctx, r, from)
}
func (t failTx) AppendAuditEvent(ctx context.Context, e store.AuditEvent) error {
	if err := t.step(); err != nil {
		return err
	}
	return t.Tx.AppendAuditEvent(ctx, e)
}
func (t failTx) ListMemberships(ctx context.Context, id string) ([]store.Membership, error) {
	if err := t.step(); err != nil {
		return nil, err
	}
	return t.Tx.ListMemberships(ctx, id)
}

// TestApproveCrash: a failure, or a cancelled context, at any step of the
// approval leaves nothing half-done: no user without mandates, no email
// without a user, the request still submitted; the approval then works.
func TestApproveCrash(t *testing.T) {
	for _, mode := range []string{"fail", "cancel"} {
		t.Run(mode, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s store.Store) {
				f := newFixture(t, s)
				fs := &failStore{Store: s}
				svc := &Service{Store: fs, Templates: f.svc.Templates, Issuer: f.svc.Issuer, Now: f.svc.Now}
				req := f.valid()
				res := f.submit(t, req)
				for n := 1; ; n++ {
					if n > 60 {
						t.Fatal("the approval never succeeded")
					}
					ctx, cancel := context.WithCancel(t.Context())
					fs.mu.Lock()
					fs.calls, fs.failAt, fs.cancel = 0, n, nil
					if mode == "cancel" {
						fs.cancel = cancel
					}
					fs.mu.Unlock()
					d, err := svc.Approve(ctx, admin, res.ID, []string{store.RightPatientMerge})
					cancel()
					if err == nil {
						us := f.userByEmail(t, req.NewUser.Email)
						if len(us) != 1 || us[0].ID != d.UserID {
							t.Fatalf("after success: %+v", us)
						}
						if _, ok := f.email(t, welcomeID(res.ID)); !ok {
							t.Fatal("approved without a welcome")
						}
						if n < 5 {
							t.Fatalf("succeeded at step %d: the injection did not reach the approval", n)
						}
						return
					}
					if !errors.Is(err, errInjected) && !errors.Is(err, context.Canceled) {
						t.Fatalf("step %d: %v", n, err)
					}
					r, _ := s.GetAccountRequest(t.Context(), res.ID)
					if r.Status != store.RequestSubmitted || r.UserID != "" {
						t.Fatalf("step %d: request %s / %s left behind", n, r.Status, r.UserID)
					}
					if us := f.userByEmail(t, req.NewUser.Email); len(us) != 0 {
						t.Fatalf("step %d: a user without the rest: %+v", n, us)
					}
					if _, ok := f.email(t, welcomeID(res.ID)); ok {
						t.Fatalf("step %d: an email without a user", n)
					}
				}
			})
		})
	}
}

// TestApproveSameNameConcurrently: two people of the same name approved at
// once both get an account, with different usernames.
func TestApproveSameNameConcurrently(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		a := f.valid()
		b := f.valid()
		b.NewUser.Email, b.PracticeNumber = "zoe.autre@example.org", "2345679"
		b.Institutions = []InstitutionChoice{{ID: instC, Primary: true}}
		b.Billing = Billing{Name: "CLSC C", CustomerNumber: "789"}
		b.ReferenceAccount = ReferenceAccount{}
		ra, err := f.svc.Submit(t.Context(), admin, a)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := f.svc.Submit(t.Context(), admin, b)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var da, db Decision
		var ea, eb error
		wg.Add(2)
		go func() { defer wg.Done(); da, ea = f.svc.Approve(t.Context(), admin, ra.ID, nil) }()
		go func() { defer wg.Done(); db, eb = f.svc.Approve(t.Context(), admin, rb.ID, nil) }()
		wg.Wait()
		if ea != nil || eb != nil || da.UserID == db.UserID {
			t.Fatalf("approvals: %v %v %+v %+v", ea, eb, da, db)
		}
		ua, _ := s.GetUser(t.Context(), da.UserID)
		ub, _ := s.GetUser(t.Context(), db.UserID)
		if ua.Username == ub.Username || !strings.HasPrefix(ub.Username, "zoe.o-neil-cote") {
			t.Fatalf("usernames %q %q", ua.Username, ub.Username)
		}
	})
}
