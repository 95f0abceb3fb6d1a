package provisioning

import (
	"errors"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func TestListGetAndCounts(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		var ids []string
		for i := range 5 {
			req := f.valid()
			req.NewUser.Email = "queue" + string(rune('a'+i)) + "@example.org"
			if i == 4 {
				req.Institutions = []InstitutionChoice{{ID: instB, Primary: true}}
				req.Billing = Billing{Name: "Clinique B", CustomerNumber: "456"}
			}
			f.clock.Set(t0.Add(time.Duration(i) * 24 * time.Hour)) // Tue, Wed, Thu, Fri, Sat
			ids = append(ids, f.submit(t, req).ID)
		}
		other, err := f.svc.Submit(ctx, Actor{UserID: f.onlyA.ID}, func() Request {
			r := f.valid()
			r.NewUser.Email = "by.anne@example.org"
			r.Institutions = r.Institutions[:1]
			return r
		}())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Reject(ctx, admin, ids[1], "doublon"); err != nil {
			t.Fatal(err)
		}

		// Tuesday + 3 business days = Friday; the next Tuesday, three are late.
		f.clock.Set(t0.Add(7*24*time.Hour + time.Minute))
		page, err := f.svc.List(ctx, admin, Filter{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			for _, it := range page.Requests {
				got = append(got, it.ID)
			}
			if page.Next == "" {
				break
			}
			if page, err = f.svc.List(ctx, admin, Filter{Limit: 2, Cursor: page.Next}); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{ids[0], ids[1], ids[2], ids[3], ids[4], other.ID}
		// ids[3] (Fri) and ids[4] (Sat) are both due Wednesday at 10:00; the
		// order then follows the id.
		if len(got) != len(want) || got[0] != ids[0] || got[1] != ids[1] || got[2] != ids[2] {
			t.Fatalf("queue %v, want oldest due first %v", got, want)
		}

		page, _ = f.svc.List(ctx, admin, Filter{Overdue: true})
		if len(page.Requests) != 2 || page.Requests[0].ID != ids[0] || page.Requests[1].ID != ids[2] || !page.Requests[0].Overdue {
			t.Fatalf("overdue: %+v", page.Requests)
		}
		page, _ = f.svc.List(ctx, admin, Filter{InstitutionID: instB})
		if len(page.Requests) != 5 {
			t.Fatalf("institution B: %d", len(page.Requests))
		}
		page, _ = f.svc.List(ctx, admin, Filter{Status: store.RequestRejected})
		if len(page.Requests) != 1 || page.Requests[0].ID != ids[1] || page.Requests[0].DecisionReason != "doublon" {
			t.Fatalf("rejected: %+v", page.Requests)
		}
		// A requester sees their own.
		page, _ = f.svc.List(ctx, Actor{UserID: f.onlyA.ID}, Filter{})
		if len(page.Requests) != 1 || page.Requests[0].ID != other.ID {
			t.Fatalf("Anne's requests: %+v", page.Requests)
		}
		if _, err := f.svc.Get(ctx, Actor{UserID: f.onlyA.ID}, ids[0]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Anne reads another's request: %v", err)
		}

		// Get: each rule's verdict, the reference's mandates at the
		// requested institutions only.
		d, err := f.svc.Get(ctx, f.actor(), ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if !d.Overdue || d.Reference.ID != f.reference.ID || len(d.ReferenceMandates) != 1 || len(d.ReferenceMandates[instA]) != 2 ||
			len(d.Institutions) != 2 {
			t.Fatalf("detail %+v", d)
		}
		if len(d.Verdicts) != len(rules) {
			t.Fatalf("%d verdicts", len(d.Verdicts))
		}
		for _, v := range d.Verdicts {
			if !v.OK || v.Message == "" || v.MessageFR == "" {
				t.Fatalf("verdict %+v", v)
			}
		}
		// A rule that fails now: the reference account was closed since.
		ref := f.reference
		ref.Status = store.StatusClosed
		if err := s.UpdateUser(ctx, ref); err != nil {
			t.Fatal(err)
		}
		d, _ = f.svc.Get(ctx, admin, ids[0])
		for _, v := range d.Verdicts {
			if (v.Rule == "reference_account") == v.OK {
				t.Fatalf("verdict %+v after the reference was closed", v)
			}
		}
		if _, err := f.svc.Approve(ctx, admin, ids[0], nil); len(validationProblems(err)) == 0 {
			t.Fatalf("approved with a closed reference account: %v", err)
		}
		if r, _ := s.GetAccountRequest(ctx, ids[0]); r.Status != store.RequestSubmitted {
			t.Fatalf("refused approval left status %s", r.Status)
		}

		c, err := f.svc.Counts(ctx)
		if err != nil || c.ByStatus[store.RequestSubmitted] != 5 || c.ByStatus[store.RequestRejected] != 1 || c.Overdue != 2 {
			t.Fatalf("counts %+v %v", c, err)
		}
	})
}

func TestAutoApproval(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		in, _ := s.GetInstitution(ctx, instA)
		in.AutoApprove = true
		if err := s.UpdateInstitution(ctx, in); err != nil {
			t.Fatal(err)
		}
		req := f.valid()
		req.SpecialRights = nil
		res := f.submit(t, req)
		if res.Status != store.RequestApproved || res.UserID == "" {
			t.Fatalf("auto-approval: %+v", res)
		}
		ev, _ := s.ListAuditEvents(ctx, store.AuditFilter{Type: "account_request.approved"})
		if len(ev) != 1 || ev[0].ActorID != "system" {
			t.Fatalf("audit %+v", ev)
		}
		// Special rights asked for: a person decides.
		req = f.valid()
		req.NewUser.Email = "rights@example.org"
		if res := f.submit(t, req); res.Status != store.RequestSubmitted {
			t.Fatalf("auto-approved with special rights: %+v", res)
		}
		// Off by default.
		req = f.valid()
		req.NewUser.Email = "luc.b@example.org"
		req.SpecialRights = nil
		req.Institutions = []InstitutionChoice{{ID: instB, Primary: true}}
		req.Billing = Billing{Name: "Clinique B", CustomerNumber: "456"}
		if res := f.submit(t, req); res.Status != store.RequestSubmitted {
			t.Fatalf("auto-approved at B: %+v", res)
		}
	})
}
