package storetest

import (
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func newInstitution(id, name string) store.Institution {
	return store.Institution{
		ID: id, Name: name,
		BillingAccounts:     []store.BillingAccount{{Name: name, CustomerNumber: "123"}, {Name: name + " Nord", CustomerNumber: "456"}},
		RoleMailboxPatterns: []string{`.*@` + id + `\.example`},
		CreatedAt:           t0, UpdatedAt: t0,
	}
}

func newAccountRequest(id, email string, due time.Time) store.AccountRequest {
	return store.AccountRequest{
		ID: id, Kind: store.RequestCreate, AccountType: store.AccountPerson, Status: store.RequestSubmitted,
		RequesterID: "user-1", RequesterEmail: "alice@example.org", RequesterName: "Alice T", RequesterLocale: "fr-CA",
		GivenName: "Zoé", FamilyName: "O'Neil", Email: email, Locale: "fr-CA", PreviouslyHadAccount: true,
		Institutions: []store.RequestInstitution{{ID: "inst-b", Primary: false}, {ID: "inst-a", Primary: true}},
		Occupation:   "nurse", PracticeNumber: "1234567",
		LabRegistrations:   []store.LabRegistration{{Laboratory: "CHUM", Number: "A-1"}},
		ReferenceGivenName: "Élise", ReferenceFamilyName: "Tremblay", ReferenceID: "user-1",
		BillingName: "Clinique A", BillingCustomerNumber: "123", SpecialRights: []string{"patient_merge"},
		Comment: "Ligne 1\nLigne 2 ; DROP TABLE users; --", Warnings: []string{"lab_registrations_missing"},
		DueAt: due, CreatedAt: t0, UpdatedAt: t0,
	}
}

func testInstitutions(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := newInstitution("inst-b", "Clinique B")
	a := newInstitution("inst-a", "Clinique A")
	a.AutoApprove = true
	must(t, s.CreateInstitution(ctx, b))
	must(t, s.CreateInstitution(ctx, a))
	wantErr(t, s.CreateInstitution(ctx, a), store.ErrConflict, "CreateInstitution duplicate")

	got, err := s.GetInstitution(ctx, "inst-a")
	must(t, err)
	equal(t, got, a, "GetInstitution")
	_, err = s.GetInstitution(ctx, "inst-x")
	wantErr(t, err, store.ErrNotFound, "GetInstitution unknown")

	list, err := s.ListInstitutions(ctx)
	must(t, err)
	equal(t, list, []store.Institution{a, b}, "ListInstitutions by name")

	a.Name, a.AutoApprove, a.RoleMailboxPatterns, a.UpdatedAt = "Clinique A2", false, nil, at(time.Hour)
	a.BillingAccounts = []store.BillingAccount{{Name: "Clinique A2", CustomerNumber: "789"}}
	must(t, s.UpdateInstitution(ctx, a))
	got, err = s.GetInstitution(ctx, "inst-a")
	must(t, err)
	equal(t, got, a, "GetInstitution after update")
	wantErr(t, s.UpdateInstitution(ctx, newInstitution("inst-x", "X")), store.ErrNotFound, "UpdateInstitution unknown")
}

func testMemberships(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateInstitution(ctx, newInstitution("inst-a", "Clinique A")))
	must(t, s.CreateInstitution(ctx, newInstitution("inst-b", "Clinique B")))

	ma := store.Membership{UserID: u.ID, InstitutionID: "inst-a", Primary: true, BillingCustomerNumber: "123",
		Mandates: []string{"nursing", "billing"}, Rights: []string{store.RightAccountRequests, store.RightPatientMerge}, CreatedAt: t0}
	must(t, s.PutMembership(ctx, ma))
	got, err := s.GetMembership(ctx, u.ID, "inst-a")
	must(t, err)
	want := ma
	want.Mandates = []string{"billing", "nursing"}
	want.Rights = []string{store.RightAccountRequests, store.RightPatientMerge}
	equal(t, got, want, "GetMembership (sorted)")

	// A second primary is refused; the first stays.
	mb := store.Membership{UserID: u.ID, InstitutionID: "inst-b", Primary: true, CreatedAt: at(time.Minute)}
	wantErr(t, s.PutMembership(ctx, mb), store.ErrConflict, "PutMembership second primary")
	mb.Primary = false
	must(t, s.PutMembership(ctx, mb))
	list, err := s.ListMemberships(ctx, u.ID)
	must(t, err)
	equal(t, list, []store.Membership{want, mb}, "ListMemberships")

	// Replace: mandates and rights replaced, CreatedAt kept.
	ma2 := store.Membership{UserID: u.ID, InstitutionID: "inst-a", Primary: true, Mandates: []string{"reception"}, CreatedAt: at(time.Hour)}
	must(t, s.PutMembership(ctx, ma2))
	got, err = s.GetMembership(ctx, u.ID, "inst-a")
	must(t, err)
	equal(t, []any{got.Mandates, got.Rights, got.CreatedAt, got.BillingCustomerNumber}, []any{[]string{"reception"}, []string(nil), t0, ""}, "replaced membership")

	// Unknown user, institution or right.
	wantErr(t, s.PutMembership(ctx, store.Membership{UserID: "nobody", InstitutionID: "inst-a", CreatedAt: t0}), store.ErrNotFound, "PutMembership unknown user")
	wantErr(t, s.PutMembership(ctx, store.Membership{UserID: u.ID, InstitutionID: "inst-x", CreatedAt: t0}), store.ErrNotFound, "PutMembership unknown institution")
	if err := s.PutMembership(ctx, store.Membership{UserID: u.ID, InstitutionID: "inst-b", Rights: []string{"superuser"}, CreatedAt: t0}); err == nil {
		t.Fatal("PutMembership accepted an unknown right")
	}
	got, err = s.GetMembership(ctx, u.ID, "inst-b")
	must(t, err)
	equal(t, got, mb, "membership after a refused right (nothing half-done)")

	must(t, s.DeleteMembership(ctx, u.ID, "inst-b"))
	wantErr(t, s.DeleteMembership(ctx, u.ID, "inst-b"), store.ErrNotFound, "DeleteMembership twice")
	_, err = s.GetMembership(ctx, u.ID, "inst-b")
	wantErr(t, err, store.ErrNotFound, "GetMembership deleted")
	list, err = s.ListMemberships(ctx, "nobody")
	must(t, err)
	equal(t, len(list), 0, "ListMemberships of nobody")
}

func testLabRegistrations(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.AddLabRegistration(ctx, u.ID, store.LabRegistration{Laboratory: "CHUM", Number: "B2"}))
	must(t, s.AddLabRegistration(ctx, u.ID, store.LabRegistration{Laboratory: "Biron", Number: "77"}))
	must(t, s.AddLabRegistration(ctx, u.ID, store.LabRegistration{Laboratory: "CHUM", Number: "B2"})) // kept once
	list, err := s.ListLabRegistrations(ctx, u.ID)
	must(t, err)
	equal(t, list, []store.LabRegistration{{Laboratory: "Biron", Number: "77"}, {Laboratory: "CHUM", Number: "B2"}}, "ListLabRegistrations")
	wantErr(t, s.AddLabRegistration(ctx, "nobody", store.LabRegistration{Laboratory: "X", Number: "1"}), store.ErrNotFound, "AddLabRegistration unknown user")
}

func testUserLookups(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s) // alice@example.org, practice 12345, prescriber 67890
	v := newUser("user-2", "bob")
	v.Email, v.GivenName, v.FamilyName, v.PracticeNumber, v.PrescriberNumber, v.CreatedAt = "Alice@Example.ORG", "ÉLISE", "tremblay", "", "", at(time.Second)
	must(t, s.CreateUser(ctx, v))
	w := newUser("user-3", "carol")
	w.Email, w.PracticeNumber, w.PrescriberNumber = "", "", ""
	must(t, s.CreateUser(ctx, w))

	list, err := s.ListUsersByEmail(ctx, "ALICE@example.org")
	must(t, err)
	equal(t, ids(list, userID), []string{u.ID, v.ID}, "ListUsersByEmail folds ASCII")
	list, err = s.ListUsersByEmail(ctx, "")
	must(t, err)
	equal(t, len(list), 0, "ListUsersByEmail empty")
	list, err = s.ListUsersByPracticeNumber(ctx, "12345")
	must(t, err)
	equal(t, ids(list, userID), []string{u.ID}, "ListUsersByPracticeNumber")
	list, err = s.ListUsersByPracticeNumber(ctx, "")
	must(t, err)
	equal(t, len(list), 0, "ListUsersByPracticeNumber empty")
	list, err = s.ListUsersByPrescriberNumber(ctx, "67890")
	must(t, err)
	equal(t, ids(list, userID), []string{u.ID}, "ListUsersByPrescriberNumber")

	must(t, s.CreateInstitution(ctx, newInstitution("inst-a", "A")))
	must(t, s.PutMembership(ctx, store.Membership{UserID: u.ID, InstitutionID: "inst-a", Primary: true, CreatedAt: t0}))
	list, err = s.ListUsersByNameAt(ctx, "élise", "TREMBLAY", "inst-a")
	must(t, err)
	// ASCII folding only: "élise" does not match "Élise" on either backend.
	equal(t, len(list), 0, "ListUsersByNameAt non-ASCII case")
	list, err = s.ListUsersByNameAt(ctx, "Élise", "TREMBLAY", "inst-a")
	must(t, err)
	equal(t, ids(list, userID), []string{u.ID}, "ListUsersByNameAt (members only)")
}

func testAccountRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := newAccountRequest("req-1", "Zoe@Example.org", at(72*time.Hour))
	must(t, s.CreateAccountRequest(ctx, r1))
	got, err := s.GetAccountRequest(ctx, "req-1")
	must(t, err)
	equal(t, got, r1, "GetAccountRequest")
	equal(t, got.PrimaryInstitution(), "inst-a", "PrimaryInstitution")

	// One submitted request per address; the same id twice.
	wantErr(t, s.CreateAccountRequest(ctx, newAccountRequest("req-2", "zoe@example.ORG", t0)), store.ErrConflict, "second pending request")
	_, err = s.GetAccountRequest(ctx, "req-2")
	wantErr(t, err, store.ErrNotFound, "nothing stored after the conflict")
	wantErr(t, s.CreateAccountRequest(ctx, newAccountRequest("req-1", "other@example.org", t0)), store.ErrConflict, "duplicate id")

	p, err := s.PendingAccountRequestByEmail(ctx, "ZOE@example.org")
	must(t, err)
	equal(t, p.ID, "req-1", "PendingAccountRequestByEmail")
	_, err = s.PendingAccountRequestByEmail(ctx, "nobody@example.org")
	wantErr(t, err, store.ErrNotFound, "PendingAccountRequestByEmail unknown")

	// Scanning requests do not hold the address.
	sc := newAccountRequest("req-s1", "zoe@example.org", at(time.Hour))
	sc.AccountType, sc.StationName, sc.Institutions = store.AccountScanning, "Scanner 1", []store.RequestInstitution{{ID: "inst-b", Primary: true}}
	must(t, s.CreateAccountRequest(ctx, sc))

	// Decision: a compare-and-set on the status.
	r1.Status, r1.ReviewerID, r1.DecidedAt, r1.GrantedRights, r1.UserID = store.RequestApproved, "admin", at(time.Hour), []string{"patient_merge"}, "user-9"
	r1.WelcomeOutboxID, r1.Kind, r1.TargetUserID, r1.UpdatedAt, r1.Warnings = "msg-w", store.RequestUpdate, "user-9", at(time.Hour), nil
	must(t, s.UpdateAccountRequest(ctx, r1, store.RequestSubmitted))
	wantErr(t, s.UpdateAccountRequest(ctx, r1, store.RequestSubmitted), store.ErrConflict, "second decision")
	wantErr(t, s.UpdateAccountRequest(ctx, newAccountRequest("req-x", "", t0), store.RequestSubmitted), store.ErrNotFound, "UpdateAccountRequest unknown")
	got, err = s.GetAccountRequest(ctx, "req-1")
	must(t, err)
	equal(t, got, r1, "GetAccountRequest after the decision")
	// Once decided, the address is free for a new request.
	must(t, s.CreateAccountRequest(ctx, newAccountRequest("req-2", "zoe@example.org", at(2*time.Hour))))
}

func testListAccountRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	var all []string
	for i, id := range seq("r", 6) {
		r := newAccountRequest(id, id+"@example.org", at(time.Duration(6-i)*time.Hour)) // r05 is due first
		if i%2 == 1 {
			r.Institutions = []store.RequestInstitution{{ID: "inst-c", Primary: true}}
			r.RequesterID = "user-2"
		}
		if i == 0 {
			r.Status = store.RequestRejected
		}
		must(t, s.CreateAccountRequest(ctx, r))
		all = append([]string{id}, all...)
	}
	list, err := s.ListAccountRequests(ctx, store.AccountRequestFilter{})
	must(t, err)
	equal(t, ids(list, reqID), all, "oldest due first")

	list, err = s.ListAccountRequests(ctx, store.AccountRequestFilter{Status: store.RequestSubmitted})
	must(t, err)
	equal(t, ids(list, reqID), all[:5], "by status")
	list, err = s.ListAccountRequests(ctx, store.AccountRequestFilter{InstitutionID: "inst-c"})
	must(t, err)
	equal(t, ids(list, reqID), []string{"r05", "r03", "r01"}, "by institution")
	list, err = s.ListAccountRequests(ctx, store.AccountRequestFilter{InstitutionID: "inst-a"})
	must(t, err)
	equal(t, ids(list, reqID), []string{"r04", "r02", "r00"}, "by institution (not primary)")
	list, err = s.ListAccountRequests(ctx, store.AccountRequestFilter{RequesterID: "user-2"})
	must(t, err)
	equal(t, ids(list, reqID), []string{"r05", "r03", "r01"}, "by requester")
	// Overdue at t0+3h30: submitted and due before (r05 1h, r04 2h, r03 3h).
	list, err = s.ListAccountRequests(ctx, store.AccountRequestFilter{OverdueAt: at(3*time.Hour + 30*time.Minute)})
	must(t, err)
	equal(t, ids(list, reqID), []string{"r05", "r04", "r03"}, "overdue")

	// Cursor pages.
	var paged []string
	f := store.AccountRequestFilter{Limit: 4}
	for {
		page, err := s.ListAccountRequests(ctx, f)
		must(t, err)
		paged = append(paged, ids(page, reqID)...)
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.AfterDueAt, f.AfterID = last.DueAt, last.ID
	}
	equal(t, paged, all, "paged")

	c, err := s.CountAccountRequests(ctx, at(3*time.Hour+30*time.Minute))
	must(t, err)
	equal(t, c, store.AccountRequestCounts{ByStatus: map[store.AccountRequestStatus]int64{
		store.RequestSubmitted: 5, store.RequestRejected: 1, store.RequestApproved: 0, store.RequestCompleted: 0,
	}, Overdue: 3}, "CountAccountRequests")
}

func reqID(r store.AccountRequest) string { return r.ID }

func testOutboxFollowUp(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newAccountRequest("req-1", "zoe@example.org", at(time.Hour))
	must(t, s.CreateAccountRequest(ctx, r))
	r.Status, r.WelcomeOutboxID, r.UserID, r.UpdatedAt = store.RequestApproved, "welcome-1", "user-9", at(time.Minute)
	must(t, s.UpdateAccountRequest(ctx, r, store.RequestSubmitted))

	welcome := newMessage("welcome-1", "welcome:req-1", t0)
	welcome.Then = &store.OutboxMessage{ID: "done-1", Kind: "email", IdempotencyKey: "done:req-1", Payload: []byte(`{"to":"alice@example.org"}`)}
	must(t, s.EnqueueOutbox(ctx, welcome))
	got, err := s.GetOutboxMessage(ctx, "welcome-1")
	must(t, err)
	equal(t, got, welcome, "message with a follow-up")

	// Not before the welcome is sent.
	claimed, err := s.ClaimOutbox(ctx, at(time.Second), time.Minute, 10)
	must(t, err)
	equal(t, ids(claimed, messageID), []string{"welcome-1"}, "only the welcome is due")
	_, err = s.GetOutboxMessage(ctx, "done-1")
	wantErr(t, err, store.ErrNotFound, "follow-up before the welcome is sent")
	req, err := s.GetAccountRequest(ctx, "req-1")
	must(t, err)
	equal(t, req.Status, store.RequestApproved, "request before the welcome is sent")

	must(t, s.MarkOutboxSent(ctx, "welcome-1", at(2*time.Second)))
	done, err := s.GetOutboxMessage(ctx, "done-1")
	must(t, err)
	equal(t, []any{done.Kind, done.IdempotencyKey, string(done.Payload), done.CreatedAt, done.SentAt.IsZero(), done.Then == nil},
		[]any{"email", "done:req-1", `{"to":"alice@example.org"}`, at(2 * time.Second), true, true}, "follow-up queued")
	req, err = s.GetAccountRequest(ctx, "req-1")
	must(t, err)
	equal(t, []any{req.Status, req.CompletedAt}, []any{store.RequestCompleted, at(2 * time.Second)}, "request completed")

	// Marked sent again (after a lost lease): one follow-up, still.
	must(t, s.MarkOutboxSent(ctx, "welcome-1", at(3*time.Second)))
	claimed, err = s.ClaimOutbox(ctx, at(time.Hour), time.Minute, 10)
	must(t, err)
	equal(t, ids(claimed, messageID), []string{"done-1"}, "one follow-up")
	req, err = s.GetAccountRequest(ctx, "req-1")
	must(t, err)
	equal(t, req.CompletedAt, at(2*time.Second), "completed once")
}
