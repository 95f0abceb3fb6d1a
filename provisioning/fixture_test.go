package provisioning

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/teststore"
	"github.com/sesame-idp/sesame/templates"
)

// t0 is a Tuesday, 10:00 in Montréal (EST).
var t0 = time.Date(2026, 11, 3, 15, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// eachStore runs f on SQLite and on PostgreSQL (skipped without
// SESAME_TEST_POSTGRES_URL, failed under SESAME_TEST_REQUIRE_ALL=1).
func eachStore(t *testing.T, f func(t *testing.T, s store.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, teststore.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, teststore.Postgres(t)) })
}

var engine = sync.OnceValues(func() (*templates.Engine, error) { return templates.New(nil) })

// fixture is a service on a store with two institutions (A, B) the
// requester may request for, one (C) they may not, a reference account
// and a few existing accounts for the matching rules.
type fixture struct {
	s     store.Store
	svc   *Service
	clock *clock

	requester, onlyA, reference   store.User
	closedNurse, physician, other store.User
}

const (
	instA = "inst-a"
	instB = "inst-b"
	instC = "inst-c"
)

var admin = Actor{UserID: "admin-1", Admin: true, IP: "192.0.2.1"}

func newFixture(t testing.TB, s store.Store) *fixture {
	t.Helper()
	ctx := t.Context()
	tm, err := engine()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s, clock: &clock{t: t0}}
	f.svc = &Service{Store: s, Templates: tm, Issuer: "https://sesame.example", Now: f.clock.Now}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []store.Institution{
		{ID: instA, Name: "Clinique A", BillingAccounts: []store.BillingAccount{{Name: "Clinique médicale A", CustomerNumber: "123"}},
			RoleMailboxPatterns: []string{`.*@frontdesk\.clinique-a\.example`}},
		{ID: instB, Name: "Clinique B", BillingAccounts: []store.BillingAccount{{Name: "Clinique B", CustomerNumber: "456"}}},
		{ID: instC, Name: "CLSC C", BillingAccounts: []store.BillingAccount{{Name: "CLSC C", CustomerNumber: "789"}}},
	} {
		in.CreatedAt, in.UpdatedAt = t0, t0
		must(s.CreateInstitution(ctx, in))
	}
	user := func(id, username, email, given, family, occupation, practice string, status store.UserStatus) store.User {
		u := store.User{ID: id, Username: username, Email: email, GivenName: given, FamilyName: family, Locale: "fr-CA",
			Status: status, AccountType: store.AccountPerson, Occupation: occupation, PracticeNumber: practice,
			CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour)}
		must(s.CreateUser(ctx, u))
		return u
	}
	member := func(u store.User, inst string, primary bool, mandates, rights []string) {
		must(s.PutMembership(ctx, store.Membership{UserID: u.ID, InstitutionID: inst, Primary: primary,
			Mandates: mandates, Rights: rights, CreatedAt: t0}))
	}
	f.requester = user("00000000-0000-4000-8000-000000000001", "gestionnaire", "gestion@clinique-a.example", "Louise", "Gestion", "administrative", "", store.StatusActive)
	member(f.requester, instA, true, nil, []string{store.RightAccountRequests})
	member(f.requester, instB, false, nil, []string{store.RightAccountRequests})
	member(f.requester, instC, false, []string{"reception"}, nil)
	f.onlyA = user("00000000-0000-4000-8000-000000000002", "adjointe", "adjointe@clinique-a.example", "Anne", "Adjointe", "administrative", "", store.StatusActive)
	member(f.onlyA, instA, true, nil, []string{store.RightAccountRequests})
	f.reference = user("00000000-0000-4000-8000-000000000003", "ref.nurse", "ref@clinique-a.example", "Julie", "Référence", "nurse", "7654321", store.StatusActive)
	member(f.reference, instA, true, []string{"nursing", "vaccination"}, []string{store.RightPatientMerge, store.RightAdminAccount})
	member(f.reference, instC, false, []string{"clsc-only"}, nil)
	f.closedNurse = user("00000000-0000-4000-8000-000000000004", "marie.gagnon", "marie.old@example.org", "Marie", "Gagnon", "nurse", "1111111", store.StatusClosed)
	f.physician = user("00000000-0000-4000-8000-000000000005", "paul.tremblay", "paul@example.org", "Paul", "Tremblay", "physician", "12345", store.StatusActive)
	member(f.physician, instB, true, []string{"physician"}, nil)
	user(admin.UserID, "support", "support@sesame.example", "Sam", "Soutien", "administrative", "", store.StatusActive)
	f.other = user("00000000-0000-4000-8000-000000000006", "jean.roy", "jean.roy@example.org", "Jean", "Roy", "administrative", "", store.StatusActive)
	return f
}

// actor is the requester's actor.
func (f *fixture) actor() Actor { return Actor{UserID: f.requester.ID, IP: "192.0.2.7"} }

// valid is a request every rule accepts: a nurse at A (primary) and B.
func (f *fixture) valid() Request {
	return Request{
		NewUser:      NewUser{GivenName: "Zoé", FamilyName: "O'Neil-Côté", Email: "zoe.oneil@example.org"},
		Institutions: []InstitutionChoice{{ID: instA, Primary: true}, {ID: instB}},
		Occupation:   "nurse", PracticeNumber: "2345678",
		LabRegistrations: []LabRegistration{{Laboratory: "Laboratoire CHUM", Number: "L-4455"}},
		ReferenceAccount: ReferenceAccount{GivenName: "Julie", FamilyName: "Référence", ID: f.reference.ID},
		Billing:          Billing{Name: "Clinique médicale A", CustomerNumber: "123"},
		SpecialRights:    []string{store.RightPatientMerge, store.RightAccountRequests},
		Comment:          "Commence lundi.\nFormation prévue mardi.",
	}
}

// count returns how many requests are stored.
func (f *fixture) count(t testing.TB) int {
	t.Helper()
	c, err := f.s.CountAccountRequests(t.Context(), t0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range c.ByStatus {
		n += int(v)
	}
	return int(n)
}

func validationProblems(err error) []Problem {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return nil
}
