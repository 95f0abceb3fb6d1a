package idp_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	eredis "github.com/sesame-idp/sesame/idp/ephemeral/redis"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/testenv"
	"github.com/sesame-idp/sesame/internal/teststore"
)

// TestSignInOnRedisCluster: a full sign-in (password, TOTP, code, refresh
// rotation and reuse, a replayed code) with the short-lived state on a
// private Redis Cluster of three masters.
func TestSignInOnRedisCluster(t *testing.T) {
	url := testenv.RedisCluster(t)
	env := newTestEnv(t, backend{name: "sqlite+redis-cluster", open: func(t testing.TB, sealer *seal.Sealer) (store.Store, ephemeral.Store) {
		r, err := eredis.Open(context.Background(), url, "sesame-test-"+uuid.NewString()[:8]+":", sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return teststore.SQLite(t), r
	}})
	r := env.newRP(nil)
	env.user("sophie", pw)
	for range 2 {
		code, verifier := r.signIn(newBrowser(t), "sophie", pw)
		tok, idt, err := r.exchange(code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if idt.Subject == "" {
			t.Fatal("no subject")
		}
		_, _, err = r.exchange(code, verifier)
		assertOAuthError(t, err, "invalid_grant")
		refresh := func(rt string) (*oauth2.Token, error) {
			return r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		}
		if _, err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh token of a replayed code still works")
		}
	}
	code, verifier := r.signIn(newBrowser(t), "sophie", pw)
	tok, _, err := r.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if status, body := r.userinfo(t2.AccessToken, "GET"); status != 200 {
		t.Fatalf("userinfo: %d %s", status, body)
	}
}
