package users_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

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

// Disable and close revoke every refresh token of the user in their
// transaction, so that none works again after an enable; enable revokes
// what was issued meanwhile (a code exchange racing the disable). Other
// users' tokens are untouched.
func TestSetStatusRevokesRefreshTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		created, err := svc.CreateUsers(ctx, []users.NewUser{
			{Username: "lea.roy", Email: "lea@clinique.example", Password: "une phrase de passe assez longue"},
			{Username: "marc.roy", Email: "marc@clinique.example", Password: "une autre phrase assez longue"},
		}, byAdmin)
		if err != nil {
			t.Fatal(err)
		}
		lea, marc := created[0].ID, created[1].ID
		if _, _, err := svc.CreateClient(ctx, users.NewClient{ID: "emr", Name: "EMR", RedirectURIs: []string{"https://emr.example/cb"}}, byAdmin); err != nil {
			t.Fatal(err)
		}
		issue := func(user, session string) string {
			t.Helper()
			id := uuid.NewString()
			if err := svc.Store.CreateRefreshToken(ctx, store.RefreshToken{ID: id, Hash: "hash-" + id, Family: uuid.NewString(),
				UserID: user, ClientID: "emr", Scopes: []string{"openid", "offline_access"}, SessionID: session,
				AuthTime: t0, CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			return id
		}
		revoked := func(id string) bool {
			t.Helper()
			rt, err := svc.Store.GetRefreshToken(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return !rt.RevokedAt.IsZero()
		}
		lastCount := func(typ string) string {
			t.Helper()
			ev, err := svc.Store.ListAuditEvents(ctx, store.AuditFilter{UserID: lea, Type: typ})
			if err != nil || len(ev) == 0 {
				t.Fatalf("%s events: %v %v", typ, ev, err)
			}
			return ev[0].Details["refresh_tokens"]
		}
		setStatus := func(action string) {
			t.Helper()
			if _, changed, err := svc.SetStatus(ctx, lea, action, byAdmin, nil); err != nil || !changed {
				t.Fatalf("%s: changed=%v %v", action, changed, err)
			}
		}

		browser, offline, other := issue(lea, "session-1"), issue(lea, ""), issue(marc, "session-2")
		setStatus(users.ActionDisable)
		if !revoked(browser) || !revoked(offline) {
			t.Errorf("after disable: a refresh token of the user is not revoked")
		}
		if revoked(other) {
			t.Errorf("after disable: another user's refresh token is revoked")
		}
		if n := lastCount("user.disabled"); n != "2" {
			t.Errorf("user.disabled refresh_tokens = %q, want 2", n)
		}

		racing := issue(lea, "session-3") // committed after the disable's revocation
		setStatus(users.ActionEnable)
		if !revoked(racing) {
			t.Errorf("after enable: a token issued while disabled is not revoked")
		}
		if n := lastCount("user.enabled"); n != "1" {
			t.Errorf("user.enabled refresh_tokens = %q, want 1", n)
		}

		fresh := issue(lea, "session-4") // a sign-in after the enable
		setStatus(users.ActionClose)
		if !revoked(fresh) || revoked(other) {
			t.Errorf("after close: user's token revoked=%v, other's revoked=%v; want true, false", revoked(fresh), revoked(other))
		}
		if n := lastCount("user.closed"); n != "1" {
			t.Errorf("user.closed refresh_tokens = %q, want 1", n)
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
