package provisioning

import (
	"errors"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
)

// ruleCase is one rule of the procedure: a change to the valid request
// and what Submit must answer.
type ruleCase struct {
	name  string
	actor func(f *fixture) Actor // nil: the requester
	edit  func(f *fixture, r *Request)
	// One of: forbidden (the institution named), field+code (a 422
	// problem), or ok (with kind and warning codes).
	forbidden string
	field     string
	code      string
	kind      string
	warnings  []string
}

var ruleCases = []ruleCase{
	{name: "valid request", kind: "create"},

	// Requester.
	{name: "no right at an institution", edit: func(f *fixture, r *Request) {
		r.Institutions = append(r.Institutions, InstitutionChoice{ID: instC})
	}, forbidden: "CLSC C"},
	{name: "right at A only, asks for B", actor: func(f *fixture) Actor { return Actor{UserID: f.onlyA.ID} }, forbidden: "Clinique B"},
	{name: "a token that is not an admin's", actor: func(f *fixture) Actor { return Actor{ClientID: "emr"} }, forbidden: "-"},
	{name: "admin token may request anywhere", actor: func(f *fixture) Actor { return Actor{ClientID: "support-bot", Admin: true} },
		edit: func(f *fixture, r *Request) { r.Institutions = append(r.Institutions, InstitutionChoice{ID: instC}) }, kind: "create"},

	// Email.
	{name: "requester's own address", edit: func(f *fixture, r *Request) { r.NewUser.Email = "GESTION@clinique-a.example" },
		field: "new_user.email", code: "requester_email"},
	{name: "role mailbox reception", edit: func(f *fixture, r *Request) { r.NewUser.Email = "reception@clinique-a.example" },
		field: "new_user.email", code: "role_mailbox"},
	{name: "role mailbox info2", edit: func(f *fixture, r *Request) { r.NewUser.Email = "info2@gmail.example" },
		field: "new_user.email", code: "role_mailbox"},
	{name: "role mailbox rendez-vous", edit: func(f *fixture, r *Request) { r.NewUser.Email = "Rendez-Vous@clinique.example" },
		field: "new_user.email", code: "role_mailbox"},
	{name: "role mailbox accueil.clinique", edit: func(f *fixture, r *Request) { r.NewUser.Email = "accueil.clinique@clinique.example" },
		field: "new_user.email", code: "role_mailbox"},
	{name: "role mailbox noreply+tag", edit: func(f *fixture, r *Request) { r.NewUser.Email = "no-reply+x@clinique.example" },
		field: "new_user.email", code: "role_mailbox"},
	{name: "a family name that is a role word is fine", edit: func(f *fixture, r *Request) { r.NewUser.Email = "julie.bureau@clinique.example" },
		kind: "create"},
	{name: "institution's pattern", edit: func(f *fixture, r *Request) { r.NewUser.Email = "zoe@frontdesk.clinique-a.example" },
		field: "new_user.email", code: "role_mailbox"},
	{name: "another person's active account", edit: func(f *fixture, r *Request) { r.NewUser.Email = "Jean.Roy@example.org" },
		field: "new_user.email", code: "email_in_use"},
	{name: "homoglyph email (Cyrillic а)", edit: func(f *fixture, r *Request) { r.NewUser.Email = "zоe@example.org" },
		field: "new_user.email", code: "email_non_ascii"},
	{name: "not an address", edit: func(f *fixture, r *Request) { r.NewUser.Email = "zoe@localhost" },
		field: "new_user.email", code: "email_invalid"},
	{name: "email required", edit: func(f *fixture, r *Request) { r.NewUser.Email = " " },
		field: "new_user.email", code: "required"},

	// Names.
	{name: "given name required", edit: func(f *fixture, r *Request) { r.NewUser.GivenName = "" },
		field: "new_user.given_name", code: "required"},
	{name: "homoglyph name (Latin and Cyrillic)", edit: func(f *fixture, r *Request) { r.NewUser.FamilyName = "Trеmblay" },
		field: "new_user.family_name", code: "mixed_scripts"},
	{name: "one non-Latin script is fine", edit: func(f *fixture, r *Request) { r.NewUser.GivenName = "Αλέξανδρος" }, kind: "create"},

	// Existing account: update, never a duplicate.
	{name: "previously had an account, found by practice number and name (closed)", edit: func(f *fixture, r *Request) {
		r.NewUser.GivenName, r.NewUser.FamilyName, r.NewUser.PreviouslyHadAccount, r.PracticeNumber = "Marie", "Gagnon", true, "1111111"
	}, kind: "update", warnings: []string{"update_existing"}},
	{name: "match by email and name, without saying so", edit: func(f *fixture, r *Request) {
		r.NewUser.GivenName, r.NewUser.FamilyName, r.NewUser.Email = "Marie", "GAGNON", "marie.old@example.org"
	}, kind: "update", warnings: []string{"update_existing"}},
	{name: "match by name at a requested institution", edit: func(f *fixture, r *Request) {
		r.NewUser.GivenName, r.NewUser.FamilyName, r.Occupation, r.PracticeNumber = "Paul", "Tremblay", "physician", "12345"
		r.LabRegistrations = nil
	}, kind: "update", warnings: []string{"update_existing"}},
	{name: "previously had an account, none found", edit: func(f *fixture, r *Request) { r.NewUser.PreviouslyHadAccount = true },
		kind: "create", warnings: []string{"previous_account_not_found"}},

	// Workplace.
	{name: "no institution", edit: func(f *fixture, r *Request) { r.Institutions = nil }, field: "institutions", code: "required"},
	{name: "no primary", edit: func(f *fixture, r *Request) { r.Institutions[0].Primary = false }, field: "institutions", code: "primary_required"},
	{name: "two primaries", edit: func(f *fixture, r *Request) { r.Institutions[1].Primary = true }, field: "institutions", code: "one_primary"},
	{name: "unknown institution", actor: func(f *fixture) Actor { return admin },
		edit: func(f *fixture, r *Request) { r.Institutions[1].ID = "nope" }, field: "institutions[1].id", code: "unknown"},
	{name: "same institution twice", edit: func(f *fixture, r *Request) { r.Institutions[1].ID = instA }, field: "institutions[1].id", code: "duplicate"},

	// Occupation.
	{name: "occupation required", edit: func(f *fixture, r *Request) { r.Occupation = "" }, field: "occupation", code: "required"},
	{name: "occupation not in the list", edit: func(f *fixture, r *Request) { r.Occupation = "astronaut" }, field: "occupation", code: "invalid_choice"},
	{name: "administrative with a practice number", edit: func(f *fixture, r *Request) {
		r.Occupation, r.LabRegistrations = "administrative", nil
	}, field: "occupation", code: "health_professional_administrative"},
	{name: "administrative for a known physician", edit: func(f *fixture, r *Request) {
		r.NewUser.GivenName, r.NewUser.FamilyName, r.Occupation, r.PracticeNumber, r.LabRegistrations = "Paul", "Tremblay", "administrative", "", nil
	}, field: "occupation", code: "health_professional_administrative"},

	// Numbers.
	{name: "practice number required", edit: func(f *fixture, r *Request) { r.PracticeNumber = "" }, field: "practice_number", code: "required"},
	{name: "practice number format", edit: func(f *fixture, r *Request) { r.PracticeNumber = "12" }, field: "practice_number", code: "format"},
	{name: "no prescriber number for a nurse", edit: func(f *fixture, r *Request) { r.PrescriberNumber = "1234567" },
		field: "prescriber_number", code: "not_applicable"},
	{name: "prescriber number required for a nurse practitioner", edit: func(f *fixture, r *Request) { r.Occupation = "nurse_practitioner" },
		field: "prescriber_number", code: "required"},
	{name: "practice number of another nurse", edit: func(f *fixture, r *Request) { r.PracticeNumber = "7654321" },
		field: "practice_number", code: "number_taken"},
	{name: "same number in another profession is not taken", edit: func(f *fixture, r *Request) {
		r.Occupation, r.PracticeNumber, r.LabRegistrations = "physician", "12346", nil
	}, kind: "create"},

	// Lab registrations.
	{name: "no lab numbers: accepted with a warning", edit: func(f *fixture, r *Request) { r.LabRegistrations = nil },
		kind: "create", warnings: []string{"lab_registrations_missing"}},
	{name: "lab numbers for a physician", edit: func(f *fixture, r *Request) { r.Occupation, r.PracticeNumber = "physician", "54321" },
		field: "lab_registrations", code: "not_applicable"},
	{name: "lab number missing in a pair", edit: func(f *fixture, r *Request) { r.LabRegistrations[0].Number = "" },
		field: "lab_registrations[0].number", code: "required"},

	// Reference account.
	{name: "reference unknown", edit: func(f *fixture, r *Request) { r.ReferenceAccount.ID = "nobody" },
		field: "reference_account.id", code: "unknown"},
	{name: "reference not active", edit: func(f *fixture, r *Request) {
		r.ReferenceAccount = ReferenceAccount{GivenName: "Marie", FamilyName: "Gagnon", ID: f.closedNurse.ID}
	}, field: "reference_account.id", code: "reference_inactive"},
	{name: "reference name does not match", edit: func(f *fixture, r *Request) { r.ReferenceAccount.FamilyName = "Autre" },
		field: "reference_account.id", code: "reference_mismatch"},
	{name: "reference by username", edit: func(f *fixture, r *Request) { r.ReferenceAccount.ID = "ref.nurse" }, kind: "create"},
	{name: "no reference: a warning", edit: func(f *fixture, r *Request) { r.ReferenceAccount = ReferenceAccount{} },
		kind: "create", warnings: []string{"no_reference"}},
	{name: "reference name without id", edit: func(f *fixture, r *Request) { r.ReferenceAccount.ID = "" },
		field: "reference_account.id", code: "required"},

	// Billing.
	{name: "billing customer number of no account", edit: func(f *fixture, r *Request) { r.Billing.CustomerNumber = "999" },
		field: "billing.customer_number", code: "billing_mismatch"},
	{name: "billing of another institution than the primary", edit: func(f *fixture, r *Request) {
		r.Billing = Billing{Name: "Clinique B", CustomerNumber: "456"}
	}, field: "billing.customer_number", code: "billing_mismatch"},
	{name: "billing name case and spaces do not matter", edit: func(f *fixture, r *Request) { r.Billing.Name = "  clinique  MÉDICALE A" },
		kind: "create"},
	{name: "billing required", edit: func(f *fixture, r *Request) { r.Billing = Billing{} }, field: "billing.name", code: "required"},

	// Special rights, comment.
	{name: "unknown special right", edit: func(f *fixture, r *Request) { r.SpecialRights = []string{"superuser"} },
		field: "special_rights[0]", code: "invalid_choice"},
	{name: "comment too long", edit: func(f *fixture, r *Request) { r.Comment = strings.Repeat("é", 2001) }, field: "comment", code: "too_long"},
	{name: "comment of the maximum length", edit: func(f *fixture, r *Request) { r.Comment = strings.Repeat("é", 2000) }, kind: "create"},

	// Scanning accounts.
	{name: "scanning account", edit: func(f *fixture, r *Request) { *r = f.scanning() }, kind: "create"},
	{name: "scanning with an occupation", edit: func(f *fixture, r *Request) { *r = f.scanning(); r.Occupation = "nurse" },
		field: "occupation", code: "not_applicable"},
	{name: "scanning for two institutions", edit: func(f *fixture, r *Request) {
		*r = f.scanning()
		r.Institutions = []InstitutionChoice{{ID: instA, Primary: true}, {ID: instB}}
	}, field: "institutions", code: "one_only"},
	{name: "scanning without a station name", edit: func(f *fixture, r *Request) { *r = f.scanning(); r.StationName = "" },
		field: "station_name", code: "required"},
	{name: "scanning with special rights", edit: func(f *fixture, r *Request) { *r = f.scanning(); r.SpecialRights = []string{"admin_account"} },
		field: "special_rights", code: "not_applicable"},
	{name: "unknown account type", edit: func(f *fixture, r *Request) { r.AccountType = "robot" }, field: "account_type", code: "invalid_choice"},
}

func (f *fixture) scanning() Request {
	return Request{
		AccountType: "scanning", Institutions: []InstitutionChoice{{ID: instA}},
		StationName: "Numériseur accueil", ResponsibleName: "Louise Gestion", ResponsibleEmail: "gestion@clinique-a.example",
		Billing: Billing{Name: "Clinique médicale A", CustomerNumber: "123"},
	}
}

// TestSubmitRules: every rule of the procedure, each refusal with its
// message in both languages, on both backends; a refused request stores
// nothing.
func TestSubmitRules(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		for i, tc := range ruleCases {
			t.Run(tc.name, func(t *testing.T) {
				req := f.valid()
				// Each case its own address, so that pending requests of
				// the earlier cases do not get in the way.
				req.NewUser.Email = strings.Replace(req.NewUser.Email, "zoe.oneil", "zoe.oneil"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 1)
				if tc.edit != nil {
					tc.edit(f, &req)
				}
				actor := f.actor()
				if tc.actor != nil {
					actor = tc.actor(f)
				}
				before := f.count(t)
				res, err := f.svc.Submit(t.Context(), actor, req)
				switch {
				case tc.forbidden != "":
					var fe *ForbiddenError
					if !errors.As(err, &fe) {
						t.Fatalf("Submit = %+v, %v; want a *ForbiddenError", res, err)
					}
					if tc.forbidden != "-" && (fe.InstitutionName != tc.forbidden || !strings.Contains(fe.Text("fr"), tc.forbidden) || !strings.Contains(fe.Text("en"), tc.forbidden)) {
						t.Fatalf("forbidden %+v, want it to name %q", fe, tc.forbidden)
					}
				case tc.field != "":
					p, ok := (&ValidationError{Problems: validationProblems(err)}).Field(tc.field)
					if !ok || p.Code != tc.code {
						t.Fatalf("Submit = %+v, %v; want a problem %s on %s", res, err, tc.code, tc.field)
					}
					if p.Message == "" || p.MessageFR == "" || p.Message == p.MessageFR {
						t.Fatalf("problem %+v: want a message in English and in French", p)
					}
				default:
					if err != nil {
						t.Fatalf("Submit: %v", err)
					}
					if res.Kind != tc.kind || res.Status != store.RequestSubmitted || res.ID == "" || !res.DueAt.After(t0) {
						t.Fatalf("Submit = %+v, want kind %s", res, tc.kind)
					}
					var codes []string
					for _, w := range res.Warnings {
						codes = append(codes, w.Code)
						if w.Message == "" || w.MessageFR == "" {
							t.Errorf("warning %+v without messages", w)
						}
					}
					if strings.Join(codes, ",") != strings.Join(tc.warnings, ",") {
						t.Fatalf("warnings %v, want %v", codes, tc.warnings)
					}
					stored, err := s.GetAccountRequest(t.Context(), res.ID)
					if err != nil || stored.Kind != tc.kind || stored.RequesterID != actor.id() {
						t.Fatalf("stored %+v, %v", stored, err)
					}
					return
				}
				if after := f.count(t); after != before {
					t.Fatalf("a refused request was stored (%d → %d)", before, after)
				}
			})
		}
	})
}

// TestSubmitReportsEverythingAtOnce: three bad fields, three problems.
func TestSubmitReportsEverythingAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		req := f.valid()
		req.NewUser.GivenName, req.NewUser.Email, req.Billing.CustomerNumber = "", "info@clinique.example", "999"
		_, err := f.svc.Submit(t.Context(), f.actor(), req)
		got := map[string]string{}
		for _, p := range validationProblems(err) {
			got[p.Field] = p.Code
		}
		want := map[string]string{"new_user.given_name": "required", "new_user.email": "role_mailbox", "billing.customer_number": "billing_mismatch"}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("problems %v, want at least %v", got, want)
			}
		}
	})
}

// TestSubmitPendingConflict: a second request for the same address is a
// conflict pointing to the first, even when submitted at once.
func TestSubmitPendingConflict(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		first, err := f.svc.Submit(t.Context(), f.actor(), f.valid())
		if err != nil {
			t.Fatal(err)
		}
		again := f.valid()
		again.NewUser.Email = "ZOE.ONEIL@example.org"
		_, err = f.svc.Submit(t.Context(), f.actor(), again)
		var pe *PendingError
		if !errors.As(err, &pe) || pe.RequestID != first.ID || !errors.Is(err, ErrPending) {
			t.Fatalf("second submit: %v, want a *PendingError for %s", err, first.ID)
		}

		// Two at once for a new address: one request.
		req := f.valid()
		req.NewUser.Email = "twice@example.org"
		errs := make(chan error, 2)
		for range 2 {
			go func() { _, err := f.svc.Submit(t.Context(), f.actor(), req); errs <- err }()
		}
		var ok, pending int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, ErrPending):
				pending++
			default:
				t.Errorf("concurrent submit: %v", err)
			}
		}
		if ok != 1 || pending != 1 {
			t.Fatalf("concurrent submits: %d stored, %d pending; want 1 and 1", ok, pending)
		}
	})
}
