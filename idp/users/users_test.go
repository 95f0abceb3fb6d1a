package users_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/audit"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/teststore"
)

var t0 = time.Unix(1700000000, 0).UTC()

var backends = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"sqlite", teststore.SQLite},
	{"postgres", teststore.Postgres},
}

// eachBackend runs fn on a fresh service over each durable store.
func eachBackend(t *testing.T, fn func(t *testing.T, svc *users.Service)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, newService(t, b.open(t))) })
	}
}

func newService(t testing.TB, st store.Store) *users.Service {
	sealer, err := seal.New(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return &users.Service{
		Store:     st,
		Sealer:    sealer,
		Passwords: users.Passwords{Params: users.PasswordParams{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
		Now:       func() time.Time { return t0 },
	}
}

var byAdmin = store.AuditEvent{ActorID: "admin-1", IP: "192.0.2.7"}

// wantInput checks that err is an *users.InputError about field.
func wantInput(t *testing.T, err error, field string) *users.InputError {
	t.Helper()
	var ie *users.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T), want an *InputError about %s", err, err, field)
	}
	if ie.Field != field || ie.Message == "" {
		t.Fatalf("InputError %+v, want field %q with a message", ie, field)
	}
	return ie
}

// events returns the audit events of a type, newest first.
func events(t *testing.T, st store.Store, typ string) []store.AuditEvent {
	t.Helper()
	ev, err := st.ListAuditEvents(context.Background(), store.AuditFilter{Type: typ, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

const key = "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"

func TestNewUserValidate(t *testing.T) {
	good := users.NewUser{Username: "Sophie.Tremblay", Email: "sophie@clinique.example", Password: "une phrase de passe assez longue", TOTPSecret: key}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid user: %v", err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(*users.NewUser)
		field   string
		message string
		cause   error
	}{
		{"short username", func(n *users.NewUser) { n.Username = "x" }, "username", `"x" must be 2 to 64 letters, digits or . _ @ -`, nil},
		{"username with a space", func(n *users.NewUser) { n.Username = "a b" }, "username", `"a b" must be 2 to 64 letters, digits or . _ @ -`, nil},
		{"email", func(n *users.NewUser) { n.Email = "not-an-email" }, "email", `"not-an-email" is not an email address`, nil},
		{"email with a name", func(n *users.NewUser) { n.Email = "Sophie <s@example.org>" }, "email", `"Sophie <s@example.org>" is not an email address`, nil},
		{"locale", func(n *users.NewUser) { n.Locale = "de-DE" }, "locale", `"de-DE" must be fr-CA or en-CA`, nil},
		{"short password", func(n *users.NewUser) { n.Password = "short" }, "password", "at least 8 characters are required", users.ErrPasswordTooShort},
		{"common password", func(n *users.NewUser) { n.Password = "password123" }, "password", "too common or too close to the username; choose another (a passphrase is fine)", users.ErrPasswordCommon},
		{"password is the username", func(n *users.NewUser) { n.Password = " SOPHIE.TREMBLAY " }, "password", "too common or too close to the username; choose another (a passphrase is fine)", users.ErrPasswordCommon},
		{"key", func(n *users.NewUser) { n.TOTPSecret = "not base32!" }, "totp_secret", "the key must be base32, at least 16 characters (80 bits)", users.ErrBadSecret},
		{"short key", func(n *users.NewUser) { n.TOTPSecret = "JBSWY3DP" }, "totp_secret", "the key must be base32, at least 16 characters (80 bits)", users.ErrBadSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := good
			tc.edit(&n)
			ie := wantInput(t, n.Validate(), tc.field)
			if ie.Message != tc.message {
				t.Errorf("message %q, want %q", ie.Message, tc.message)
			}
			if tc.cause != nil && !errors.Is(ie, tc.cause) {
				t.Errorf("error %v does not wrap %v", ie, tc.cause)
			}
		})
	}
}

func TestCreateUsers(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := audit.WithRequestID(context.Background(), "req-1")
		created, err := svc.CreateUsers(ctx, []users.NewUser{
			{Username: " Sophie.Tremblay", Email: "sophie@clinique.example", Password: "une phrase de passe assez longue",
				GivenName: "Sophie", FamilyName: "Tremblay", TOTPSecret: key},
			{Username: "marc", Email: "marc@clinique.example", Password: "encore une phrase de passe", Locale: "en-CA"},
		}, byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if len(created) != 2 || created[0].Username != "sophie.tremblay" || created[1].Username != "marc" {
			t.Fatalf("created %+v", created)
		}
		u, err := svc.Store.GetUser(ctx, created[0].ID)
		if err != nil || u.Status != store.StatusActive || u.Locale != "fr-CA" || u.GivenName != "Sophie" || u.AccountType != "person" {
			t.Fatalf("stored user %+v %v", u, err)
		}
		if m, _ := svc.Store.GetUser(ctx, created[1].ID); m.Locale != "en-CA" {
			t.Errorf("marc's locale %q", m.Locale)
		}

		pw, err := svc.Store.ListCredentials(ctx, u.ID, store.CredPassword)
		if err != nil || len(pw) != 1 {
			t.Fatalf("password credentials %+v %v", pw, err)
		}
		if ok, _, err := svc.Passwords.Verify(string(pw[0].Secret), "une phrase de passe assez longue"); !ok || err != nil {
			t.Errorf("the stored hash does not verify the password: %v", err)
		}

		totp, err := svc.Store.ListCredentials(ctx, u.ID, store.CredTOTP)
		if err != nil || len(totp) != 1 || totp[0].VerifiedAt.IsZero() {
			t.Fatalf("imported authenticator %+v %v", totp, err)
		}
		secret, err := users.OpenSecret(svc.Sealer, totp[0])
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := users.ParseSecret(key); string(secret) != string(want) {
			t.Error("the imported key is not the one given")
		}
		if m, _ := svc.Store.ListCredentials(ctx, created[1].ID, store.CredTOTP); len(m) != 0 {
			t.Errorf("marc has authenticators %+v", m)
		}

		ev := events(t, svc.Store, "user.created")
		if len(ev) != 2 {
			t.Fatalf("user.created events: %+v", ev)
		}
		for _, e := range ev {
			if e.ActorID != "admin-1" || e.IP != "192.0.2.7" || e.RequestID != "req-1" || !e.At.Equal(t0) || e.ID == "" || e.UserID == "" {
				t.Errorf("event %+v", e)
			}
		}
		if ev := events(t, svc.Store, "mfa.imported"); len(ev) != 1 || ev[0].UserID != u.ID || ev[0].Details["method"] != "totp" {
			t.Errorf("mfa.imported events: %+v", ev)
		}

		// All or nothing: a taken username, and the other user is not created.
		_, err = svc.CreateUsers(ctx, []users.NewUser{
			{Username: "lea", Email: "lea@clinique.example", Password: "une phrase de passe"},
			{Username: "MARC", Email: "m2@clinique.example", Password: "une phrase de passe"},
		}, byAdmin)
		ie := wantInput(t, err, "username")
		if !errors.Is(err, store.ErrConflict) || ie.Message != `"marc" is already taken` {
			t.Errorf("taken username: %v", err)
		}
		if _, err := svc.Store.GetUserByUsername(ctx, "lea"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed batch created lea: %v", err)
		}

		// Invalid input: nothing is written.
		_, err = svc.CreateUsers(ctx, []users.NewUser{
			{Username: "zoe", Email: "zoe@clinique.example", Password: "une phrase de passe"},
			{Username: "yves", Email: "yves", Password: "une phrase de passe"},
		}, byAdmin)
		wantInput(t, err, "email")
		if _, err := svc.Store.GetUserByUsername(ctx, "zoe"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an invalid batch created zoe: %v", err)
		}
	})
}

func TestBootstrapAdmin(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		u, token, err := svc.BootstrapAdmin(ctx, "Admin.Clinique", "it@clinique.example", store.AuditEvent{ActorID: "cli"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.Store.GetUserByUsername(ctx, "admin.clinique")
		if err != nil || got.ID != u.ID || got.Status != store.StatusPendingActivation || got.Occupation != "administrative" || got.Locale != "fr-CA" {
			t.Fatalf("admin %+v %v", got, err)
		}
		at, err := svc.Store.ConsumeActionToken(ctx, oidcstore.HashToken(token), users.ActivationKind, t0.Add(users.ActivationTTL-time.Second))
		if err != nil || at.UserID != u.ID {
			t.Fatalf("activation token: %+v %v", at, err)
		}
		if ev := events(t, svc.Store, "admin.bootstrap"); len(ev) != 1 || ev[0].UserID != u.ID || ev[0].ActorID != "cli" {
			t.Errorf("admin.bootstrap events: %+v", ev)
		}

		_, _, err = svc.BootstrapAdmin(ctx, "ADMIN.clinique", "other@clinique.example", store.AuditEvent{ActorID: "cli"})
		if wantInput(t, err, "username"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second bootstrap: %v", err)
		}
		_, _, err = svc.BootstrapAdmin(ctx, "x", "it@clinique.example", store.AuditEvent{ActorID: "cli"})
		wantInput(t, err, "username")
		_, _, err = svc.BootstrapAdmin(ctx, "admin2", "it", store.AuditEvent{ActorID: "cli"})
		wantInput(t, err, "email")
	})
}

func TestSetMFAGrace(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		if _, err := svc.CreateUsers(ctx, []users.NewUser{{Username: "nadia", Email: "n@clinique.example", Password: "une phrase de passe"}}, byAdmin); err != nil {
			t.Fatal(err)
		}
		until := t0.Add(7 * 24 * time.Hour)
		u, err := svc.SetMFAGrace(ctx, "NADIA", until, byAdmin)
		if err != nil || !u.MFAGraceUntil.Equal(until) {
			t.Fatalf("grace: %+v %v", u, err)
		}
		if got, _ := svc.Store.GetUserByUsername(ctx, "nadia"); !got.MFAGraceUntil.Equal(until) {
			t.Errorf("stored grace %v, want %v", got.MFAGraceUntil, until)
		}
		if ev := events(t, svc.Store, "mfa.grace_granted"); len(ev) != 1 || ev[0].Details["until"] != until.Format(time.RFC3339) || ev[0].UserID != u.ID {
			t.Errorf("mfa.grace_granted events: %+v", ev)
		}
		// Zero ends it now.
		if u, err := svc.SetMFAGrace(ctx, "nadia", time.Time{}, byAdmin); err != nil || !u.MFAGraceUntil.Equal(t0) {
			t.Errorf("end grace: %+v %v", u, err)
		}
		for _, bad := range []time.Time{t0.Add(-time.Hour), t0.Add(users.MaxMFAGrace + time.Second)} {
			_, err := svc.SetMFAGrace(ctx, "nadia", bad, byAdmin)
			wantInput(t, err, "until")
		}
		if _, err := svc.SetMFAGrace(ctx, "nobody", until, byAdmin); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
	})
}
