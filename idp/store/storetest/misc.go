package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	none, err := s.ListSigningKeys(ctx)
	must(t, err)
	equal(t, len(none), 0, "ListSigningKeys empty")

	active := store.SigningKey{ID: "kid-b", Alg: "ES256", Sealed: []byte("sealed-b"), State: store.KeyActive,
		CreatedAt: at(time.Hour), ActivatedAt: at(time.Hour)}
	retired := store.SigningKey{ID: "kid-c", Alg: "RS256", Sealed: []byte("sealed-c"), State: store.KeyRetired,
		CreatedAt: t0, ActivatedAt: t0, RetiredAt: at(time.Hour)}
	next := store.SigningKey{ID: "kid-a", Alg: "ES256", Sealed: []byte("sealed-a"), State: store.KeyNext,
		CreatedAt: at(2 * time.Hour)}
	for _, k := range []store.SigningKey{active, retired, next} {
		must(t, s.CreateSigningKey(ctx, k))
	}
	keys, err := s.ListSigningKeys(ctx)
	must(t, err)
	equal(t, keys, []store.SigningKey{retired, active, next}, "ListSigningKeys oldest first")

	wantErr(t, s.CreateSigningKey(ctx, next), store.ErrConflict, "CreateSigningKey duplicate")

	// Promote next; only State, ActivatedAt and RetiredAt change.
	upd := next
	upd.State, upd.ActivatedAt = store.KeyActive, at(3*time.Hour)
	upd.Alg, upd.Sealed, upd.CreatedAt = "RS256", []byte("other"), at(5*time.Hour)
	must(t, s.UpdateSigningKey(ctx, upd))
	want := next
	want.State, want.ActivatedAt = store.KeyActive, at(3*time.Hour)
	keys, err = s.ListSigningKeys(ctx)
	must(t, err)
	equal(t, keys[2], want, "key after UpdateSigningKey")
	wantErr(t, s.UpdateSigningKey(ctx, store.SigningKey{ID: "kid-unknown", State: store.KeyRetired}),
		store.ErrNotFound, "UpdateSigningKey unknown")

	must(t, s.DeleteSigningKey(ctx, "kid-c"))
	wantErr(t, s.DeleteSigningKey(ctx, "kid-c"), store.ErrNotFound, "DeleteSigningKey twice")
	keys, err = s.ListSigningKeys(ctx)
	must(t, err)
	equal(t, ids(keys, keyID), []string{"kid-b", "kid-a"}, "keys after delete")
}

func testAuditEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	events := []store.AuditEvent{
		{ID: "ev-1", At: t0, Type: "login.succeeded", ActorID: "user-1", UserID: "user-1", ClientID: "emr",
			IP: "192.0.2.10", RequestID: "req-1", Details: map[string]string{"amr": "pwd otp", "acr": "mfa"}},
		{ID: "ev-2", At: at(time.Minute), Type: "login.failed", UserID: "user-2", IP: "2001:db8::1"},
		{ID: "ev-3", At: at(2 * time.Minute), Type: "login.succeeded", ActorID: "user-2", UserID: "user-2",
			Details: map[string]string{}},
		{ID: "ev-4", At: at(2 * time.Minute), Type: "mfa.enrolled", ActorID: "system", UserID: "user-1"},
	}
	for _, e := range events {
		must(t, s.AppendAuditEvent(ctx, e))
	}
	events[2].Details = nil // empty comes back nil
	wantErr(t, s.AppendAuditEvent(ctx, events[0]), store.ErrConflict, "AppendAuditEvent duplicate id")

	all, err := s.ListAuditEvents(ctx, store.AuditFilter{})
	must(t, err)
	equal(t, all, []store.AuditEvent{events[3], events[2], events[1], events[0]}, "ListAuditEvents newest first")

	tests := []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"user", store.AuditFilter{UserID: "user-1"}, []string{"ev-4", "ev-1"}},
		{"type", store.AuditFilter{Type: "login.succeeded"}, []string{"ev-3", "ev-1"}},
		{"user and type", store.AuditFilter{UserID: "user-2", Type: "login.failed"}, []string{"ev-2"}},
		{"before is strict", store.AuditFilter{Before: at(2 * time.Minute)}, []string{"ev-2", "ev-1"}},
		{"before and user", store.AuditFilter{UserID: "user-2", Before: at(3 * time.Minute)}, []string{"ev-3", "ev-2"}},
		{"limit", store.AuditFilter{Limit: 2}, []string{"ev-4", "ev-3"}},
		{"limit and before", store.AuditFilter{Limit: 1, Before: at(2 * time.Minute)}, []string{"ev-2"}},
		{"nothing", store.AuditFilter{UserID: "user-unknown"}, []string{}},
		{"actor", store.AuditFilter{ActorID: "user-2"}, []string{"ev-3"}},
		{"since is inclusive", store.AuditFilter{Since: at(time.Minute)}, []string{"ev-4", "ev-3", "ev-2"}},
		{"since and before", store.AuditFilter{Since: at(time.Minute), Before: at(2 * time.Minute)}, []string{"ev-2"}},
		// A page ending at ev-4 (same time as ev-3) continues with ev-3.
		{"cursor within a time", store.AuditFilter{Before: at(2 * time.Minute), BeforeID: "ev-4"}, []string{"ev-3", "ev-2", "ev-1"}},
		{"cursor at the last id", store.AuditFilter{Before: at(2 * time.Minute), BeforeID: "ev-3"}, []string{"ev-2", "ev-1"}},
	}
	for _, tt := range tests {
		got, err := s.ListAuditEvents(ctx, tt.f)
		must(t, err)
		equal(t, ids(got, eventID), tt.want, "ListAuditEvents "+tt.name)
	}

	// Without an ID, the store makes one.
	must(t, s.AppendAuditEvent(ctx, store.AuditEvent{At: at(time.Hour), Type: "user.created"}))
	must(t, s.AppendAuditEvent(ctx, store.AuditEvent{At: at(time.Hour), Type: "user.created"}))
	made, err := s.ListAuditEvents(ctx, store.AuditFilter{Type: "user.created"})
	must(t, err)
	if len(made) != 2 || made[0].ID == "" || made[1].ID == "" || made[0].ID == made[1].ID {
		t.Fatalf("events appended without an ID: %+v", made)
	}
}

func testAuditDefaultLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 101 {
		must(t, s.AppendAuditEvent(ctx, store.AuditEvent{ID: fmt.Sprintf("ev-%03d", i),
			At: at(time.Duration(i) * time.Second), Type: "token.refreshed"}))
	}
	got, err := s.ListAuditEvents(ctx, store.AuditFilter{})
	must(t, err)
	if len(got) != 100 || got[0].ID != "ev-100" || got[99].ID != "ev-001" {
		t.Fatalf("ListAuditEvents default limit: %d events, from %s to %s; want 100, ev-100 to ev-001",
			len(got), got[0].ID, got[len(got)-1].ID)
	}
	got, err = s.ListAuditEvents(ctx, store.AuditFilter{Limit: 1000})
	must(t, err)
	equal(t, len(got), 101, "ListAuditEvents limit 1000")
}

func newMessage(id, key string, created time.Time) store.OutboxMessage {
	return store.OutboxMessage{ID: id, Kind: "email", IdempotencyKey: key,
		Payload: []byte(`{"to":"alice@example.org","template":"activation"}`), CreatedAt: created}
}

func testEnqueueOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := newMessage("msg-1", "activation:user-1", t0)
	m.Attempts, m.NextAttemptAt, m.LastError = 2, at(time.Hour), "421 try later"
	must(t, s.EnqueueOutbox(ctx, m))
	got, err := s.GetOutboxMessage(ctx, m.ID)
	must(t, err)
	equal(t, got, m, "GetOutboxMessage")

	wantErr(t, s.EnqueueOutbox(ctx, newMessage("msg-2", "activation:user-1", t0)), store.ErrConflict,
		"EnqueueOutbox duplicate idempotency key")
	wantErr(t, s.EnqueueOutbox(ctx, newMessage("msg-1", "other", t0)), store.ErrConflict, "EnqueueOutbox duplicate id")
	_, err = s.GetOutboxMessage(ctx, "msg-2")
	wantErr(t, err, store.ErrNotFound, "GetOutboxMessage after conflict")

	// An empty key does not deduplicate; an empty ID is made by the store.
	must(t, s.EnqueueOutbox(ctx, newMessage("msg-3", "", t0)))
	must(t, s.EnqueueOutbox(ctx, newMessage("", "", at(time.Second))))
	claimed, err := s.ClaimOutbox(ctx, at(time.Minute), time.Minute, 10)
	must(t, err)
	if len(claimed) != 2 || claimed[0].ID != "msg-3" || claimed[1].ID == "" {
		t.Fatalf("claimed %+v, want msg-3 and one with a new ID", claimed)
	}
	_, err = s.GetOutboxMessage(ctx, "msg-unknown")
	wantErr(t, err, store.ErrNotFound, "GetOutboxMessage unknown")
}

func testClaimOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	due := newMessage("m-due", "k1", at(time.Second))
	later := newMessage("m-later", "k2", t0)
	later.NextAttemptAt = at(10 * time.Minute)
	retry := newMessage("m-retry", "k3", at(2*time.Second))
	retry.NextAttemptAt, retry.Attempts = at(-time.Minute), 1
	first := newMessage("m-first", "k4", t0)
	first.NextAttemptAt = t0 // due exactly now
	sent := newMessage("m-sent", "k5", t0)
	sent.SentAt = t0
	for _, m := range []store.OutboxMessage{due, later, retry, first, sent} {
		must(t, s.EnqueueOutbox(ctx, m))
	}

	lease := 5 * time.Minute
	got, err := s.ClaimOutbox(ctx, t0, lease, 2)
	must(t, err)
	equal(t, ids(got, messageID), []string{"m-first", "m-due"}, "ClaimOutbox oldest first, limited")
	wantFirst := first
	wantFirst.NextAttemptAt, wantFirst.Attempts = t0.Add(lease), 1
	equal(t, got[0], wantFirst, "claimed message")

	got, err = s.ClaimOutbox(ctx, t0, lease, 10)
	must(t, err)
	equal(t, ids(got, messageID), []string{"m-retry"}, "ClaimOutbox the rest")
	equal(t, got[0].Attempts, 2, "Attempts of m-retry")

	got, err = s.ClaimOutbox(ctx, at(time.Minute), lease, 10)
	must(t, err)
	equal(t, len(got), 0, "ClaimOutbox while leased")

	// When the lease ends, the messages are due again.
	got, err = s.ClaimOutbox(ctx, t0.Add(lease), lease, 10)
	must(t, err)
	equal(t, ids(got, messageID), []string{"m-first", "m-due", "m-retry"}, "ClaimOutbox after the lease")
	got, err = s.ClaimOutbox(ctx, at(10*time.Minute), lease, 10)
	must(t, err)
	equal(t, ids(got, messageID), []string{"m-first", "m-later", "m-due", "m-retry"}, "ClaimOutbox later (ties by ID)")
	equal(t, got[0].Attempts, 3, "Attempts of m-first")

	got, err = s.ClaimOutbox(ctx, at(time.Hour), lease, 0)
	must(t, err)
	equal(t, len(got), 0, "ClaimOutbox limit 0")
}

func testMarkOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"m1", "m2"} {
		must(t, s.EnqueueOutbox(ctx, newMessage(id, id, t0)))
	}
	claimed, err := s.ClaimOutbox(ctx, t0, time.Minute, 10)
	must(t, err)
	equal(t, len(claimed), 2, "claimed")

	must(t, s.MarkOutboxSent(ctx, "m1", at(time.Second)))
	must(t, s.MarkOutboxFailed(ctx, "m2", at(time.Hour), "smtp: 451 greylisted"))

	m1, err := s.GetOutboxMessage(ctx, "m1")
	must(t, err)
	equal(t, m1.SentAt, at(time.Second), "SentAt")
	m2, err := s.GetOutboxMessage(ctx, "m2")
	must(t, err)
	equal(t, []any{m2.NextAttemptAt, m2.LastError, m2.SentAt.IsZero(), m2.Attempts},
		[]any{at(time.Hour), "smtp: 451 greylisted", true, 1}, "failed message")

	got, err := s.ClaimOutbox(ctx, at(time.Hour-time.Second), time.Minute, 10)
	must(t, err)
	equal(t, len(got), 0, "ClaimOutbox before the next attempt")
	got, err = s.ClaimOutbox(ctx, at(2*time.Hour), time.Minute, 10)
	must(t, err)
	// A sent message is never claimed again.
	equal(t, ids(got, messageID), []string{"m2"}, "ClaimOutbox after MarkOutbox*")

	wantErr(t, s.MarkOutboxSent(ctx, "m-unknown", t0), store.ErrNotFound, "MarkOutboxSent unknown")
	wantErr(t, s.MarkOutboxFailed(ctx, "m-unknown", t0, "x"), store.ErrNotFound, "MarkOutboxFailed unknown")
}
