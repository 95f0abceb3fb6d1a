package users_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

func mailTo(n *int) users.Mail {
	return func(u store.User) (notify.Email, error) {
		*n++
		return notify.Email{To: u.Email, Subject: "compte", Text: "Votre compte a changé."}, nil
	}
}

func TestSetStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		created, err := svc.CreateUsers(ctx, []users.NewUser{{Username: "lea.roy", Email: "lea@clinique.example", Password: "une phrase de passe assez longue"}}, byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		id := created[0].ID
		mails := 0
		steps := []struct {
			action  string
			want    store.UserStatus
			changed bool
			err     error
		}{
			{users.ActionEnable, store.StatusActive, false, nil},
			{users.ActionDisable, store.StatusDisabled, true, nil},
			{users.ActionDisable, store.StatusDisabled, false, nil},
			{users.ActionEnable, store.StatusActive, true, nil},
			{users.ActionClose, store.StatusClosed, true, nil},
			{users.ActionEnable, store.StatusClosed, false, store.ErrConflict},
			{users.ActionDisable, store.StatusClosed, false, store.ErrConflict},
		}
		for i, st := range steps {
			u, changed, err := svc.SetStatus(ctx, id, st.action, byAdmin, mailTo(&mails))
			if st.err != nil {
				if !errors.Is(err, st.err) {
					t.Fatalf("step %d %s: %v, want %v", i, st.action, err, st.err)
				}
				wantInput(t, err, "status")
				continue
			}
			if err != nil || u.Status != st.want || changed != st.changed {
				t.Fatalf("step %d %s: %s changed=%v %v; want %s changed=%v", i, st.action, u.Status, changed, err, st.want, st.changed)
			}
		}
		if mails != 3 {
			t.Errorf("%d emails, want 3 (one per change)", mails)
		}
		for _, typ := range []string{"user.disabled", "user.enabled", "user.closed"} {
			ev, _ := svc.Store.ListAuditEvents(ctx, store.AuditFilter{UserID: id, Type: typ})
			if len(ev) != 1 || ev[0].ActorID != "admin-1" {
				t.Errorf("%s events: %+v", typ, ev)
			}
		}
		if _, _, err := svc.SetStatus(ctx, "no-such-user", users.ActionDisable, byAdmin, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
	})
}

func TestResetSecondFactors(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		created, err := svc.CreateUsers(ctx, []users.NewUser{{Username: "lea.roy", Email: "lea@clinique.example",
			Password: "une phrase de passe assez longue", TOTPSecret: "JBSWY3DPEHPK3PXP", Phone: "514 872-1234"}}, byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		id := created[0].ID
		if err := svc.Store.ReplaceRecoveryCodes(ctx, id, []string{"h1", "h2"}, t0); err != nil {
			t.Fatal(err)
		}
		mails := 0
		u, n, err := svc.ResetSecondFactors(ctx, id, byAdmin, mailTo(&mails))
		if err != nil || n != 2 || u.Phone != "" {
			t.Fatalf("reset: %d removed, phone %q, %v", n, u.Phone, err)
		}
		if f, _ := users.SecondFactors(ctx, svc.Store, id); len(f) != 0 {
			t.Errorf("second factors left: %+v", f)
		}
		if pw, _ := svc.Store.ListCredentials(ctx, id, store.CredPassword); len(pw) != 1 {
			t.Errorf("the password went too: %+v", pw)
		}
		if rc, _ := svc.Store.ListRecoveryCodes(ctx, id); len(rc) != 0 {
			t.Errorf("recovery codes left: %d", len(rc))
		}
		ev, _ := svc.Store.ListAuditEvents(ctx, store.AuditFilter{UserID: id, Type: "mfa.reset"})
		msgs, _ := svc.Store.ClaimOutbox(ctx, t0.Add(time.Hour), time.Minute, 10)
		if len(ev) != 1 || ev[0].ActorID != "admin-1" || mails != 1 || len(msgs) != 1 {
			t.Errorf("events %+v, %d emails built, %d queued", ev, mails, len(msgs))
		}
	})
}

func TestResendActivation(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		admin, first, err := svc.BootstrapAdmin(ctx, "admin", "admin@clinique.example", byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if !admin.Support {
			t.Errorf("the bootstrap administrator does not hold the support right")
		}
		var token string
		mail := func(u store.User, tok string) (notify.Email, error) {
			token = tok
			return notify.Email{To: u.Email, Subject: "activation", Text: "lien " + tok}, nil
		}
		if _, err := svc.ResendActivation(ctx, admin.ID, byAdmin, mail); err != nil || token == "" {
			t.Fatalf("resend: %v (token %q)", err, token)
		}
		// Only the latest link works.
		if _, err := svc.Store.ConsumeActionToken(ctx, oidcstore.HashToken(first), users.ActivationKind, t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the first link still works after a resend: %v", err)
		}
		tok, err := svc.Store.ConsumeActionToken(ctx, oidcstore.HashToken(token), users.ActivationKind, t0.Add(time.Hour))
		if err != nil || tok.UserID != admin.ID {
			t.Fatalf("the new link does not work: %+v %v", tok, err)
		}
		created, _ := svc.CreateUsers(ctx, []users.NewUser{{Username: "lea.roy", Email: "lea@clinique.example", Password: "une phrase de passe assez longue"}}, byAdmin)
		if _, err := svc.ResendActivation(ctx, created[0].ID, byAdmin, mail); !errors.Is(err, store.ErrConflict) {
			t.Errorf("resend to an active account: %v", err)
		}
	})
}

func TestSetSupport(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		if _, err := svc.CreateUsers(ctx, []users.NewUser{{Username: "lea.roy", Email: "lea@clinique.example", Password: "une phrase de passe assez longue"}}, byAdmin); err != nil {
			t.Fatal(err)
		}
		u, err := svc.SetSupport(ctx, "Lea.Roy", true, byAdmin)
		if err != nil || !u.Support {
			t.Fatalf("grant: %+v %v", u, err)
		}
		if got, _ := svc.Store.GetUser(ctx, u.ID); !got.Support {
			t.Errorf("support not stored")
		}
		ev, _ := svc.Store.ListAuditEvents(ctx, store.AuditFilter{UserID: u.ID, Type: "user.support_granted"})
		if len(ev) != 1 {
			t.Errorf("events: %+v", ev)
		}
		if _, err := svc.SetSupport(ctx, "nobody", true, byAdmin); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
	})
}
