package users_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/input"
	"github.com/sesame-idp/sesame/idp/users"
)

// TestBadTextRefused: text a store cannot hold (PostgreSQL refuses NUL,
// SQLite keeps it) is an *InputError naming the field before anything
// reaches the store, the same on both backends; the message never repeats
// the value.
func TestBadTextRefused(t *testing.T) {
	good := users.NewUser{Username: "sophie", Email: "sophie@clinique.example", Password: "une phrase de passe assez longue"}
	userCases := []struct {
		field string
		edit  func(*users.NewUser)
	}{
		{"username", func(n *users.NewUser) { n.Username = "sophie\x00" }},
		{"username", func(n *users.NewUser) { n.Username = "so\xffphie" }},
		{"email", func(n *users.NewUser) { n.Email = "sophie@clinique.example\x00" }},
		{"password", func(n *users.NewUser) { n.Password = "une phrase\x00de passe assez longue" }},
		{"given_name", func(n *users.NewUser) { n.GivenName = "So\x00phie" }},
		{"given_name", func(n *users.NewUser) { n.GivenName = "Sophie\x1b[31m" }},
		{"family_name", func(n *users.NewUser) { n.FamilyName = "Trem\u0085blay" }},
		{"family_name", func(n *users.NewUser) { n.FamilyName = strings.Repeat("T", 129) }},
		{"family_name", func(n *users.NewUser) { n.FamilyName = "Tremblay\nEvil" }},
		{"locale", func(n *users.NewUser) { n.Locale = "fr-CA\x00" }},
		{"totp_secret", func(n *users.NewUser) { n.TOTPSecret = "JBSWY3DPEHPK3PXP\x00" }},
	}
	clientCases := []struct {
		field string
		edit  func(*users.NewClient)
	}{
		{"id", func(c *users.NewClient) { c.ID = "emr\x00" }},
		{"name", func(c *users.NewClient) { c.Name = "EMR\x00" }},
		{"redirect_uris", func(c *users.NewClient) { c.RedirectURIs = []string{"https://emr.example/cb\x00"} }},
		{"post_logout_uris", func(c *users.NewClient) { c.PostLogoutURIs = []string{"https://emr.example/\xff"} }},
		{"scopes", func(c *users.NewClient) { c.Scopes = []string{"openid", "x\x00"} }},
	}
	eachBackend(t, func(t *testing.T, svc *users.Service) {
		ctx := context.Background()
		for _, tc := range userCases {
			n := good
			tc.edit(&n)
			ie := wantInput(t, n.Validate(), tc.field)
			if !errors.Is(ie, input.ErrInvalid) && tc.field != "username" {
				t.Errorf("%s: %v does not wrap input.ErrInvalid", tc.field, ie)
			}
			if strings.Contains(ie.Message, "phrase") || strings.Contains(ie.Message, "Tremblay") {
				t.Errorf("the message repeats the value: %q", ie.Message)
			}
			_, err := svc.CreateUsers(ctx, []users.NewUser{n}, byAdmin)
			wantInput(t, err, tc.field)
		}
		for _, tc := range clientCases {
			c := users.NewClient{ID: "emr", RedirectURIs: []string{"https://emr.example/cb"}}
			tc.edit(&c)
			_, _, err := svc.CreateClient(ctx, c, byAdmin)
			wantInput(t, err, tc.field)
		}
		if _, err := svc.SetMFAGrace(ctx, "sophie\x00", time.Time{}, byAdmin); err != nil {
			wantInput(t, err, "username")
		} else {
			t.Error("SetMFAGrace took a NUL")
		}
		wantInput(t, svc.DeleteClient(ctx, "emr\x00", byAdmin), "id")
		_, err := svc.RotateClientSecret(ctx, "\xff", byAdmin)
		wantInput(t, err, "id")
		_, _, err = svc.BootstrapAdmin(ctx, "admin", "admin@example.org\x00", byAdmin)
		wantInput(t, err, "email")
	})
}
