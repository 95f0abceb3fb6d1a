package provisioning

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// queueSize is the number of requests in the store while measuring.
const queueSize = 10_000

// benchStores runs f on each backend with a fixture holding queueSize
// requests.
func benchStores(b *testing.B, f func(b *testing.B, fx *fixture)) {
	for _, be := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", teststore.SQLite}, {"postgres", teststore.Postgres}} {
		b.Run(be.name, func(b *testing.B) {
			fx := newFixture(b, be.open(b))
			seedRequests(b, fx, 0, queueSize)
			f(b, fx)
		})
	}
}

// letters spells i in letters (names may not hold digits).
func letters(i int) string {
	s := ""
	for {
		s = string(rune('a'+i%26)) + s
		i /= 26
		if i == 0 {
			return s
		}
	}
}

// benchRequest is the i-th distinct valid request.
func (f *fixture) benchRequest(i int) Request {
	r := f.valid()
	r.NewUser.GivenName = "Zoé" + letters(i)
	r.NewUser.Email = fmt.Sprintf("bench%d@example.org", i)
	r.PracticeNumber = fmt.Sprintf("%07d", 3_000_000+i)
	return r
}

// seedRequests stores requests from..to directly, as submitted ones.
func seedRequests(b testing.TB, f *fixture, from, to int) []string {
	b.Helper()
	ids := make([]string, 0, to-from)
	const batch = 500
	for start := from; start < to; start += batch {
		err := f.s.InTx(b.Context(), func(tx store.Tx) error {
			for i := start; i < min(start+batch, to); i++ {
				e, err := f.svc.evaluateForSeed(b, tx, f, i)
				if err != nil {
					return err
				}
				if err := tx.CreateAccountRequest(b.Context(), e); err != nil {
					return err
				}
				ids = append(ids, e.ID)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// evaluateForSeed is a stored request as Submit would make it, without
// the rules' reads (fast seeding).
func (s *Service) evaluateForSeed(b testing.TB, tx store.Tx, f *fixture, i int) (store.AccountRequest, error) {
	req := f.benchRequest(i)
	at := t0.Add(time.Duration(i) * time.Minute)
	r := store.AccountRequest{
		ID: fmt.Sprintf("00000000-0000-4000-9000-%012d", i), Kind: store.RequestCreate, AccountType: store.AccountPerson,
		Status: store.RequestSubmitted, RequesterID: f.requester.ID, RequesterEmail: f.requester.Email,
		RequesterName: "Louise Gestion", RequesterLocale: "fr-CA",
		GivenName: req.NewUser.GivenName, FamilyName: req.NewUser.FamilyName, Email: req.NewUser.Email, Locale: "fr-CA",
		Institutions: []store.RequestInstitution{{ID: instA, Primary: true}, {ID: instB}},
		Occupation:   req.Occupation, PracticeNumber: req.PracticeNumber, LabRegistrations: req.LabRegistrations,
		ReferenceGivenName: "Julie", ReferenceFamilyName: "Référence", ReferenceID: f.reference.ID,
		BillingName: req.Billing.Name, BillingCustomerNumber: req.Billing.CustomerNumber, SpecialRights: req.SpecialRights,
		Comment: req.Comment, CreatedAt: at, UpdatedAt: at,
	}
	if err := s.init(); err != nil {
		return r, err
	}
	r.DueAt = s.cal.AddBusinessDays(at, 3)
	return r, nil
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSubmit: one request through every rule, with 10,000 in the queue.
func BenchmarkSubmit(b *testing.B) {
	benchStores(b, func(b *testing.B, f *fixture) {
		next := queueSize
		b.Run("queue=10000", func(b *testing.B) {
			base := next
			next += b.N
			b.ReportAllocs()
			start := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.svc.Submit(b.Context(), f.actor(), f.benchRequest(base+i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCPU(b, start)
		})
	})
}

// BenchmarkApprove: one approval (user, memberships, mandates, rights,
// token, welcome, audit) with 10,000 in the queue.
func BenchmarkApprove(b *testing.B) {
	benchStores(b, func(b *testing.B, f *fixture) {
		next := queueSize
		b.Run("queue=10000", func(b *testing.B) {
			ids := seedRequests(b, f, next, next+b.N)
			next += b.N
			b.ReportAllocs()
			start := cpuTime()
			b.ResetTimer()
			for _, id := range ids {
				if _, err := f.svc.Approve(b.Context(), admin, id, []string{store.RightPatientMerge}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCPU(b, start)
		})
	})
}

// BenchmarkList: the console's first page (50, oldest due first), the
// overdue filter and an institution's, with 10,000 in the queue.
func BenchmarkList(b *testing.B) {
	benchStores(b, func(b *testing.B, f *fixture) {
		f.clock.Set(t0.Add(30 * 24 * time.Hour))
		for _, c := range []struct {
			name string
			f    Filter
		}{
			{"first-page", Filter{}},
			{"overdue", Filter{Overdue: true}},
			{"institution", Filter{InstitutionID: instB}},
			{"submitted", Filter{Status: store.RequestSubmitted}},
		} {
			b.Run(c.name, func(b *testing.B) {
				// The second page too: the cursor path.
				first, err := f.svc.List(b.Context(), admin, c.f)
				if err != nil || len(first.Requests) != 50 {
					b.Fatalf("List: %d %v", len(first.Requests), err)
				}
				b.ReportAllocs()
				start := cpuTime()
				b.ResetTimer()
				for i := range b.N {
					flt := c.f
					if i%2 == 1 {
						flt.Cursor = first.Next
					}
					if _, err := f.svc.List(b.Context(), admin, flt); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportCPU(b, start)
			})
		}
	})
}
