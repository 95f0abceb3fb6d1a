package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func testCreateGetUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("user-1", "  Alice.Tremblay ")
	u.MFAGraceUntil = at(72 * time.Hour)
	must(t, s.CreateUser(ctx, u))

	want := u
	want.Username = "alice.tremblay" // stored folded
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	equal(t, got, want, "GetUser")

	for _, name := range []string{"alice.tremblay", "ALICE.Tremblay", " alice.tremblay\t"} {
		got, err := s.GetUserByUsername(ctx, name)
		must(t, err)
		equal(t, got, want, "GetUserByUsername("+name+")")
	}

	// A zero time round-trips as zero.
	v := newUser("user-2", "bob")
	v.UpdatedAt = time.Time{}
	must(t, s.CreateUser(ctx, v))
	got, err = s.GetUser(ctx, v.ID)
	must(t, err)
	equal(t, got, v, "GetUser with zero times")
}

func testUserNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("user-1", "alice")))

	_, err := s.GetUser(ctx, "user-2")
	wantErr(t, err, store.ErrNotFound, "GetUser unknown")
	_, err = s.GetUserByUsername(ctx, "bob")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername unknown")
	_, err = s.GetUserByUsername(ctx, "alice2")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername prefix")
	wantErr(t, s.UpdateUser(ctx, newUser("user-2", "bob")), store.ErrNotFound, "UpdateUser unknown")
}

func testUserConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("user-1", "alice")))

	wantErr(t, s.CreateUser(ctx, newUser("user-1", "bob")), store.ErrConflict, "CreateUser duplicate id")
	wantErr(t, s.CreateUser(ctx, newUser("user-2", " ALICE")), store.ErrConflict, "CreateUser duplicate folded username")
	_, err := s.GetUser(ctx, "user-2")
	wantErr(t, err, store.ErrNotFound, "GetUser after conflict")
}

func testLockUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.LockUser(ctx, u.ID))
	wantErr(t, s.LockUser(ctx, "user-2"), store.ErrNotFound, "LockUser unknown")

	// The holder of the lock goes on changing the user and its
	// credentials, also after inserting a row that references the user.
	must(t, s.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateCredential(ctx, totp("cred-0", u.ID, t0)); err != nil {
			return err
		}
		if err := tx.LockUser(ctx, u.ID); err != nil {
			return err
		}
		if err := tx.LockUser(ctx, u.ID); err != nil { // again: no self-deadlock
			return err
		}
		u.Email = "locked@example.org"
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return tx.CreateCredential(ctx, totp("cred-1", u.ID, t0))
	}))
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	equal(t, got.Email, "locked@example.org", "email changed under the lock")
	creds, err := s.ListCredentials(ctx, u.ID, store.CredTOTP)
	must(t, err)
	equal(t, ids(creds, credID), []string{"cred-0", "cred-1"}, "credentials created under the lock")

	// An unknown user does not spoil the transaction.
	must(t, s.InTx(ctx, func(tx store.Tx) error {
		wantErr(t, tx.LockUser(ctx, "user-2"), store.ErrNotFound, "LockUser unknown in a transaction")
		_, err := tx.GetUser(ctx, u.ID)
		return err
	}))
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("user-1", "alice")
	must(t, s.CreateUser(ctx, u))
	must(t, s.CreateUser(ctx, newUser("user-2", "bob")))

	changed := store.User{
		ID:               u.ID,
		Username:         "Alice.T",
		Email:            "alice.t@example.org",
		GivenName:        "Alice",
		FamilyName:       "T",
		Locale:           "en-CA",
		Status:           store.StatusDisabled,
		AccountType:      "scanning",
		Occupation:       "administrative",
		PracticeNumber:   "1",
		PrescriberNumber: "2",
		Phone:            "+15145550199",
		MFAGraceUntil:    at(24 * time.Hour),
		CreatedAt:        at(time.Hour), // ignored
		UpdatedAt:        at(2 * time.Hour),
	}
	must(t, s.UpdateUser(ctx, changed))
	want := changed
	want.Username = "alice.t"
	want.CreatedAt = u.CreatedAt
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	equal(t, got, want, "GetUser after UpdateUser")
	_, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername old name")

	// Back to a zero time.
	changed.MFAGraceUntil = time.Time{}
	must(t, s.UpdateUser(ctx, changed))
	got, err = s.GetUser(ctx, u.ID)
	must(t, err)
	if !got.MFAGraceUntil.IsZero() {
		t.Fatalf("MFAGraceUntil = %v, want zero", got.MFAGraceUntil)
	}

	changed.Username = "BOB"
	wantErr(t, s.UpdateUser(ctx, changed), store.ErrConflict, "UpdateUser to a taken username")
}

func testListUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Byte order, not a locale's: '.' < '_' < letters.
	for _, name := range []string{"c", "ab", "A_B", "a.z", "b"} {
		must(t, s.CreateUser(ctx, newUser("user-"+name, name)))
	}
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, []string{"user-a.z", "user-A_B", "user-ab", "user-b", "user-c"}},
		{"", 2, []string{"user-a.z", "user-A_B"}},
		{"a_b", 2, []string{"user-ab", "user-b"}},
		{"A_B", 2, []string{"user-ab", "user-b"}}, // the cursor is folded too
		{"b", 10, []string{"user-c"}},
		{"c", 10, []string{}},
		{"zzz", -1, []string{}},
	}
	for _, tt := range tests {
		got, err := s.ListUsers(ctx, tt.after, tt.limit)
		must(t, err)
		equal(t, ids(got, userID), tt.want, "ListUsers("+tt.after+")")
	}
	all, err := s.ListUsers(ctx, "", 0)
	must(t, err)
	equal(t, all[1].Username, "a_b", "listed username")
}

// Times go in at any precision and in any zone; they come back in UTC,
// within a microsecond.
func testTimesInUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	montreal := time.FixedZone("EST", -5*3600)
	created := time.Date(2024, 3, 10, 1, 59, 59, 999999999, montreal)
	u := newUser("user-1", "alice")
	u.CreatedAt = created
	u.MFAGraceUntil = created.Add(time.Nanosecond)
	must(t, s.CreateUser(ctx, u))

	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	for name, pair := range map[string][2]time.Time{
		"CreatedAt":     {got.CreatedAt, u.CreatedAt},
		"MFAGraceUntil": {got.MFAGraceUntil, u.MFAGraceUntil},
	} {
		g, w := pair[0], pair[1]
		if g.Location() != time.UTC {
			t.Errorf("%s in %v, want UTC", name, g.Location())
		}
		if d := w.Sub(g); d < 0 || d >= time.Microsecond {
			t.Errorf("%s = %v, want %v within a microsecond", name, g, w)
		}
	}
}

func testSearchUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	people := []store.User{
		newUser("user-1", "stremblay"), newUser("user-2", "jgagnon"), newUser("user-3", "mroy"), newUser("user-4", "x_y"),
	}
	people[0].GivenName, people[0].FamilyName, people[0].Email = "Sophie", "Tremblay", "Sophie.T@Clinic.example"
	people[1].GivenName, people[1].FamilyName, people[1].Email = "Julie", "Gagnon", "julie@clinic.example"
	people[2].GivenName, people[2].FamilyName, people[2].Email = "Marc", "Roy", "marc@other.example"
	people[3].GivenName, people[3].FamilyName, people[3].Email = "Xavier", "Yale", "xy@other.example"
	for _, u := range people {
		must(t, s.CreateUser(ctx, u))
	}
	must(t, s.CreateInstitution(ctx, store.Institution{ID: "inst-1", Name: "Clinique A", CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.CreateInstitution(ctx, store.Institution{ID: "inst-2", Name: "Clinique B", CreatedAt: t0, UpdatedAt: t0}))
	for _, id := range []string{"user-1", "user-3"} {
		must(t, s.PutMembership(ctx, store.Membership{UserID: id, InstitutionID: "inst-1", Primary: true, CreatedAt: t0}))
	}
	tests := []struct {
		q    store.UserQuery
		want []string
	}{
		{store.UserQuery{}, []string{"user-2", "user-3", "user-1", "user-4"}},
		{store.UserQuery{Text: "TREMB"}, []string{"user-1"}},
		{store.UserQuery{Text: "sophie tremblay"}, []string{"user-1"}},
		{store.UserQuery{Text: "clinic.example"}, []string{"user-2", "user-1"}},
		{store.UserQuery{Text: "user-3"}, []string{"user-3"}}, // the whole id
		{store.UserQuery{Text: "user-"}, []string{}},          // not a part of it
		{store.UserQuery{Text: "_"}, []string{"user-4"}},      // LIKE's wildcards are plain text
		{store.UserQuery{Text: "%"}, []string{}},
		{store.UserQuery{Text: "clinic", Limit: 1}, []string{"user-2"}},
		{store.UserQuery{Text: "clinic", AfterUsername: "jgagnon"}, []string{"user-1"}},
		{store.UserQuery{AfterUsername: "stremblay"}, []string{"user-4"}},
		{store.UserQuery{InstitutionID: "inst-1"}, []string{"user-3", "user-1"}},
		{store.UserQuery{InstitutionID: "inst-1", Text: "roy"}, []string{"user-3"}},
		{store.UserQuery{InstitutionID: "inst-2"}, []string{}},
	}
	for _, tt := range tests {
		got, err := s.SearchUsers(ctx, tt.q)
		must(t, err)
		equal(t, ids(got, userID), tt.want, fmt.Sprintf("SearchUsers(%+v)", tt.q))
	}
}

func testUserSupport(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("user-1", "agent")
	u.Support = true
	must(t, s.CreateUser(ctx, u))
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	equal(t, got.Support, true, "Support after CreateUser")
	u.Support = false
	must(t, s.UpdateUser(ctx, u))
	got, err = s.GetUser(ctx, u.ID)
	must(t, err)
	equal(t, got.Support, false, "Support after UpdateUser")
}
