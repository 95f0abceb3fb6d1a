package storetest

import (
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func testCreateGetRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	rt := newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)
	must(t, s.CreateRefreshToken(ctx, rt))

	got, err := s.GetRefreshToken(ctx, rt.ID)
	must(t, err)
	equal(t, got, rt, "GetRefreshToken")
	got, err = s.GetRefreshTokenByHash(ctx, rt.Hash)
	must(t, err)
	equal(t, got, rt, "GetRefreshTokenByHash")

	// Empty slices and zero times.
	bare := store.RefreshToken{ID: "rt-2", Hash: "hash-rt-2", Family: "fam-2", UserID: u.ID,
		ClientID: c.ID, Scopes: []string{}, CreatedAt: t0}
	must(t, s.CreateRefreshToken(ctx, bare))
	got, err = s.GetRefreshToken(ctx, bare.ID)
	must(t, err)
	bare.Scopes = nil
	equal(t, got, bare, "GetRefreshToken bare")

	dupID := newRefreshToken("rt-1", "fam-3", "", u.ID, c.ID, t0)
	dupID.Hash = "hash-other"
	wantErr(t, s.CreateRefreshToken(ctx, dupID), store.ErrConflict, "CreateRefreshToken duplicate id")
	dupHash := newRefreshToken("rt-3", "fam-3", "", u.ID, c.ID, t0)
	dupHash.Hash = rt.Hash
	wantErr(t, s.CreateRefreshToken(ctx, dupHash), store.ErrConflict, "CreateRefreshToken duplicate hash")
	wantErr(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-4", "f", "", "user-unknown", c.ID, t0)),
		store.ErrNotFound, "CreateRefreshToken unknown user")
	wantErr(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-5", "f", "", u.ID, "client-unknown", t0)),
		store.ErrNotFound, "CreateRefreshToken unknown client")

	_, err = s.GetRefreshToken(ctx, "rt-unknown")
	wantErr(t, err, store.ErrNotFound, "GetRefreshToken unknown")
	_, err = s.GetRefreshTokenByHash(ctx, "hash-unknown")
	wantErr(t, err, store.ErrNotFound, "GetRefreshTokenByHash unknown")
}

func testRotateRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	first := newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)
	must(t, s.CreateRefreshToken(ctx, first))

	second := newRefreshToken("rt-2", "fam-1", "rt-1", u.ID, c.ID, at(time.Hour))
	must(t, s.RotateRefreshToken(ctx, "rt-1", second))
	got, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	want := first
	want.RotatedAt = second.CreatedAt
	equal(t, got, want, "rotated token")
	got, err = s.GetRefreshTokenByHash(ctx, second.Hash)
	must(t, err)
	equal(t, got, second, "next token")

	// Reuse of the rotated token.
	reuse := newRefreshToken("rt-3", "fam-1", "rt-1", u.ID, c.ID, at(2*time.Hour))
	wantErr(t, s.RotateRefreshToken(ctx, "rt-1", reuse), store.ErrConflict, "RotateRefreshToken reuse")
	_, err = s.GetRefreshToken(ctx, "rt-3")
	wantErr(t, err, store.ErrNotFound, "token issued on reuse")
	got, err = s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, got.RotatedAt, second.CreatedAt, "RotatedAt after a reuse")

	// A revoked token does not rotate.
	must(t, s.RevokeRefreshToken(ctx, "rt-2", at(90*time.Minute)))
	wantErr(t, s.RotateRefreshToken(ctx, "rt-2", reuse), store.ErrConflict, "RotateRefreshToken revoked")
	_, err = s.GetRefreshToken(ctx, "rt-3")
	wantErr(t, err, store.ErrNotFound, "token issued from a revoked one")

	wantErr(t, s.RotateRefreshToken(ctx, "rt-unknown", reuse), store.ErrNotFound, "RotateRefreshToken unknown")
}

// When next cannot be stored, the old token is not marked rotated.
func testRotateRefreshTokenAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)))
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-9", "fam-9", "", u.ID, c.ID, t0)))

	next := newRefreshToken("rt-2", "fam-1", "rt-1", u.ID, c.ID, at(time.Hour))
	next.Hash = "hash-rt-9" // taken
	wantErr(t, s.RotateRefreshToken(ctx, "rt-1", next), store.ErrConflict, "RotateRefreshToken with a taken hash")
	got, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	if !got.RotatedAt.IsZero() {
		t.Fatalf("rt-1 rotated at %v although its successor was not stored", got.RotatedAt)
	}
	next.Hash = "hash-rt-2"
	must(t, s.RotateRefreshToken(ctx, "rt-1", next))
}

func testClaimRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	first := newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)
	must(t, s.CreateRefreshToken(ctx, first))

	got, claimed, err := s.ClaimRefreshToken(ctx, first.Hash, c.ID, "rt-2", "hash-rt-2", at(time.Hour))
	must(t, err)
	equal(t, claimed, true, "claimed")
	want := first
	want.RotatedAt = at(time.Hour)
	equal(t, got, want, "the claimed token")
	stored, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, stored, want, "the claimed token as stored")
	next, err := s.GetRefreshTokenByHash(ctx, "hash-rt-2")
	must(t, err)
	wantNext := first
	wantNext.ID, wantNext.Hash, wantNext.ParentID, wantNext.CreatedAt = "rt-2", "hash-rt-2", "rt-1", at(time.Hour)
	equal(t, next, wantNext, "the successor (the claimed token's family, user, client, scopes, session and expiry)")

	// A second claim of the same token changes nothing and returns it as it is.
	got, claimed, err = s.ClaimRefreshToken(ctx, first.Hash, c.ID, "rt-3", "hash-rt-3", at(2*time.Hour))
	must(t, err)
	equal(t, claimed, false, "claimed again")
	equal(t, got, want, "the token claimed again")
	_, err = s.GetRefreshToken(ctx, "rt-3")
	wantErr(t, err, store.ErrNotFound, "successor of a second claim")

	// The successor is claimed in turn.
	_, claimed, err = s.ClaimRefreshToken(ctx, "hash-rt-2", c.ID, "rt-3", "hash-rt-3", at(2*time.Hour))
	must(t, err)
	equal(t, claimed, true, "the successor claimed")

	_, _, err = s.ClaimRefreshToken(ctx, "hash-unknown", c.ID, "rt-4", "hash-rt-4", at(2*time.Hour))
	wantErr(t, err, store.ErrNotFound, "ClaimRefreshToken unknown")

	// A taken successor hash claims nothing.
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-9", "fam-9", "", u.ID, c.ID, t0)))
	_, _, err = s.ClaimRefreshToken(ctx, "hash-rt-3", c.ID, "rt-4", "hash-rt-9", at(3*time.Hour))
	wantErr(t, err, store.ErrConflict, "ClaimRefreshToken with a taken hash")
	stored, err = s.GetRefreshToken(ctx, "rt-3")
	must(t, err)
	equal(t, stored.RotatedAt.IsZero(), true, "rt-3 not rotated after a failed claim")
}

// Revoked, expired, rotated and other clients' tokens are returned as they
// are, and not claimed.
func testClaimRefusesDeadTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	other := newClient("client-2")
	must(t, s.CreateClient(ctx, other))
	live := newRefreshToken("rt-live", "fam-1", "", u.ID, c.ID, t0)
	revoked := newRefreshToken("rt-revoked", "fam-2", "", u.ID, c.ID, t0)
	revoked.RevokedAt = at(time.Minute)
	rotated := newRefreshToken("rt-rotated", "fam-3", "", u.ID, c.ID, t0)
	rotated.RotatedAt = at(time.Minute)
	for _, rt := range []store.RefreshToken{live, revoked, rotated} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	for _, tc := range []struct {
		name   string
		tok    store.RefreshToken
		client string
		at     time.Time
	}{
		{"revoked", revoked, c.ID, at(time.Hour)},
		{"rotated", rotated, c.ID, at(time.Hour)},
		{"another client's", live, other.ID, at(time.Hour)},
		{"no client", live, "", at(time.Hour)},
		{"expired", live, c.ID, live.ExpiresAt},
	} {
		got, claimed, err := s.ClaimRefreshToken(ctx, tc.tok.Hash, tc.client, "rt-next", "hash-rt-next", tc.at)
		must(t, err)
		equal(t, claimed, false, tc.name+" token claimed")
		equal(t, got, tc.tok, tc.name+" token as returned")
		stored, err := s.GetRefreshToken(ctx, tc.tok.ID)
		must(t, err)
		equal(t, stored, tc.tok, tc.name+" token as stored")
		_, err = s.GetRefreshToken(ctx, "rt-next")
		wantErr(t, err, store.ErrNotFound, "successor of a "+tc.name+" token")
	}
}

func testUnclaimRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	first := newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)
	must(t, s.CreateRefreshToken(ctx, first))
	_, _, err := s.ClaimRefreshToken(ctx, first.Hash, c.ID, "rt-2", "hash-rt-2", at(time.Hour))
	must(t, err)

	// Another token's ID as the successor: nothing happens.
	must(t, s.UnclaimRefreshToken(ctx, "rt-1", "rt-unknown"))
	must(t, s.UnclaimRefreshToken(ctx, "rt-2", "rt-1"))
	stored, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, stored.RotatedAt, at(time.Hour), "rt-1 rotated after unclaims that did not match")

	must(t, s.UnclaimRefreshToken(ctx, "rt-1", "rt-2"))
	stored, err = s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, stored, first, "rt-1 after the unclaim")
	_, err = s.GetRefreshToken(ctx, "rt-2")
	wantErr(t, err, store.ErrNotFound, "the successor after the unclaim")
	must(t, s.UnclaimRefreshToken(ctx, "rt-1", "rt-2")) // again: nothing to undo

	// Claimed again, revoked with its family (a reuse seen meanwhile), then
	// unclaimed: it stays revoked.
	_, claimed, err := s.ClaimRefreshToken(ctx, first.Hash, c.ID, "rt-3", "hash-rt-3", at(2*time.Hour))
	must(t, err)
	equal(t, claimed, true, "claimed after the unclaim")
	_, err = s.RevokeRefreshFamily(ctx, "fam-1", at(3*time.Hour))
	must(t, err)
	must(t, s.UnclaimRefreshToken(ctx, "rt-1", "rt-3"))
	stored, err = s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, stored.RevokedAt, at(3*time.Hour), "rt-1 revoked after the unclaim")
	_, claimed, err = s.ClaimRefreshToken(ctx, first.Hash, c.ID, "rt-4", "hash-rt-4", at(4*time.Hour))
	must(t, err)
	equal(t, claimed, false, "a revoked token claimed after an unclaim")
}

func testRevokeRefreshToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	must(t, s.CreateRefreshToken(ctx, newRefreshToken("rt-1", "fam-1", "", u.ID, c.ID, t0)))

	must(t, s.RevokeRefreshToken(ctx, "rt-1", at(time.Hour)))
	got, err := s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, got.RevokedAt, at(time.Hour), "RevokedAt")

	// Revoking again succeeds and keeps the first time.
	must(t, s.RevokeRefreshToken(ctx, "rt-1", at(2*time.Hour)))
	got, err = s.GetRefreshToken(ctx, "rt-1")
	must(t, err)
	equal(t, got.RevokedAt, at(time.Hour), "RevokedAt after a second revocation")

	wantErr(t, s.RevokeRefreshToken(ctx, "rt-unknown", t0), store.ErrNotFound, "RevokeRefreshToken unknown")
}

func testRevokeRefreshFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	for _, rt := range []store.RefreshToken{
		newRefreshToken("a1", "fam-a", "", u.ID, c.ID, t0),
		newRefreshToken("a2", "fam-a", "a1", u.ID, c.ID, at(time.Hour)),
		newRefreshToken("a3", "fam-a", "a2", u.ID, c.ID, at(2*time.Hour)),
		newRefreshToken("b1", "fam-b", "", u.ID, c.ID, t0),
	} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	must(t, s.RevokeRefreshToken(ctx, "a1", at(time.Minute)))

	n, err := s.RevokeRefreshFamily(ctx, "fam-a", at(3*time.Hour))
	must(t, err)
	equal(t, n, int64(2), "tokens revoked")
	for id, want := range map[string]time.Time{"a1": at(time.Minute), "a2": at(3 * time.Hour), "a3": at(3 * time.Hour), "b1": {}} {
		got, err := s.GetRefreshToken(ctx, id)
		must(t, err)
		equal(t, got.RevokedAt, want, "RevokedAt of "+id)
	}
	n, err = s.RevokeRefreshFamily(ctx, "fam-a", at(4*time.Hour))
	must(t, err)
	equal(t, n, int64(0), "tokens revoked twice")
	n, err = s.RevokeRefreshFamily(ctx, "fam-unknown", t0)
	must(t, err)
	equal(t, n, int64(0), "tokens of an unknown family")
}

func testRevokeRefreshTokensBySession(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	inSession := func(id, family, parent, session string, created time.Time) store.RefreshToken {
		rt := newRefreshToken(id, family, parent, u.ID, c.ID, created)
		rt.SessionID = session
		return rt
	}
	for _, rt := range []store.RefreshToken{
		inSession("a1", "fam-a", "", "session-a", t0),
		inSession("a2", "fam-a", "a1", "session-a", at(time.Hour)),
		inSession("c1", "fam-c", "", "session-a", t0), // a second client's family in the same session
		inSession("b1", "fam-b", "", "session-b", t0),
		inSession("n1", "fam-n", "", "", t0), // no session
	} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	must(t, s.RevokeRefreshToken(ctx, "a1", at(time.Minute)))

	n, err := s.RevokeRefreshTokensBySession(ctx, "session-a", at(2*time.Hour))
	must(t, err)
	equal(t, n, int64(2), "tokens revoked")
	for id, want := range map[string]time.Time{"a1": at(time.Minute), "a2": at(2 * time.Hour), "c1": at(2 * time.Hour), "b1": {}, "n1": {}} {
		got, err := s.GetRefreshToken(ctx, id)
		must(t, err)
		equal(t, got.RevokedAt, want, "RevokedAt of "+id)
	}
	n, err = s.RevokeRefreshTokensBySession(ctx, "session-a", at(3*time.Hour))
	must(t, err)
	equal(t, n, int64(0), "tokens revoked twice")
	n, err = s.RevokeRefreshTokensBySession(ctx, "", at(3*time.Hour))
	must(t, err)
	equal(t, n, int64(0), "tokens of the empty session")
	got, err := s.GetRefreshToken(ctx, "n1")
	must(t, err)
	equal(t, got.RevokedAt, time.Time{}, "RevokedAt of a token without session")
}

func testRevokeUserRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	other := newUser("user-2", "bob")
	must(t, s.CreateUser(ctx, other))
	token := func(id, user, session string) store.RefreshToken {
		rt := newRefreshToken(id, "fam-"+id, "", user, c.ID, t0)
		rt.SessionID = session
		return rt
	}
	for _, rt := range []store.RefreshToken{
		token("keep", u.ID, "session-keep"),
		token("s1", u.ID, "session-1"),
		token("s2", u.ID, "session-2"),
		token("none", u.ID, ""),
		token("old", u.ID, "session-1"),
		token("bob", other.ID, "session-bob"),
	} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	must(t, s.RevokeRefreshToken(ctx, "old", at(time.Minute)))

	n, err := s.RevokeUserRefreshTokens(ctx, u.ID, "session-keep", at(time.Hour))
	must(t, err)
	equal(t, n, int64(3), "tokens revoked")
	for id, want := range map[string]time.Time{"keep": {}, "s1": at(time.Hour), "s2": at(time.Hour), "none": at(time.Hour), "old": at(time.Minute), "bob": {}} {
		got, err := s.GetRefreshToken(ctx, id)
		must(t, err)
		equal(t, got.RevokedAt, want, "RevokedAt of "+id)
	}
	// No exception: every token of the user, this session's too.
	n, err = s.RevokeUserRefreshTokens(ctx, u.ID, "", at(2*time.Hour))
	must(t, err)
	equal(t, n, int64(1), "tokens revoked without exception")
	got, err := s.GetRefreshToken(ctx, "keep")
	must(t, err)
	equal(t, got.RevokedAt, at(2*time.Hour), "RevokedAt of keep")
	n, err = s.RevokeUserRefreshTokens(ctx, "nobody", "", at(2*time.Hour))
	must(t, err)
	equal(t, n, int64(0), "tokens of an unknown user")
}

func testDeleteExpiredRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, c := seed(t, s)
	expiring := func(id string, expires time.Time) store.RefreshToken {
		rt := newRefreshToken(id, "fam-"+id, "", u.ID, c.ID, t0)
		rt.ExpiresAt = expires
		return rt
	}
	for _, rt := range []store.RefreshToken{
		expiring("old", at(time.Hour)),
		expiring("edge", at(2*time.Hour)),
		expiring("new", at(3*time.Hour)),
		expiring("never", time.Time{}),
	} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	n, err := s.DeleteExpiredRefreshTokens(ctx, at(2*time.Hour))
	must(t, err)
	equal(t, n, int64(1), "tokens deleted")
	for id, want := range map[string]error{"old": store.ErrNotFound, "edge": nil, "new": nil, "never": nil} {
		got, err := s.GetRefreshToken(ctx, id)
		if want == nil {
			must(t, err)
			if id == "never" && !got.ExpiresAt.IsZero() {
				t.Fatalf("ExpiresAt of never = %v, want zero", got.ExpiresAt)
			}
		} else {
			wantErr(t, err, want, "GetRefreshToken "+id)
		}
	}
	n, err = s.DeleteExpiredRefreshTokens(ctx, at(100*time.Hour))
	must(t, err)
	equal(t, n, int64(2), "tokens deleted later")
}
