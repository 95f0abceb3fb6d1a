package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// Reads by id run a statement prepared once, which sees later writes; an
// unknown id is still ErrNotFound.
func TestReadsUsePreparedStatements(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "sesame.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	c := store.Client{ID: "emr", Name: "EMR", RedirectURIs: []string{"https://emr.example/cb"}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid"}, AuthMethod: "client_secret_basic", TokenFormat: "opaque", IDTokenAlg: "RS256", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, err := db.GetClient(ctx, "emr"); err != nil || got.Name != "EMR" {
			t.Fatalf("GetClient: %+v %v", got, err)
		}
	}
	db.stmts.mu.Lock()
	n := len(db.stmts.stmts)
	db.stmts.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d statements prepared for one query, want 1", n)
	}
	c.Name = "EMR 2"
	if err := db.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetClient(ctx, "emr"); err != nil || got.Name != "EMR 2" {
		t.Fatalf("after an update: %+v %v", got, err)
	}
	if _, err := db.GetClient(ctx, "nope"); err == nil {
		t.Fatal("unknown client found")
	}
}
