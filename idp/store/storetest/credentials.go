package storetest

import (
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func totp(id, userID string, created time.Time) store.Credential {
	return store.Credential{
		ID:         id,
		UserID:     userID,
		Type:       store.CredTOTP,
		Name:       "Phone " + id,
		Secret:     []byte{0x00, 0x01, 0xfe, 0xff, 's', 'e', 'a', 'l', 'e', 'd'},
		VerifiedAt: created,
		CreatedAt:  created,
	}
}

func testSetPassword(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)

	must(t, s.SetPassword(ctx, u.ID, "$argon2id$v=19$m=65536,t=3,p=4$one", t0))
	pw, err := s.ListCredentials(ctx, u.ID, store.CredPassword)
	must(t, err)
	if len(pw) != 1 || pw[0].ID == "" {
		t.Fatalf("passwords after SetPassword: %+v", pw)
	}
	want := store.Credential{ID: pw[0].ID, UserID: u.ID, Type: store.CredPassword,
		Secret: []byte("$argon2id$v=19$m=65536,t=3,p=4$one"), VerifiedAt: t0, CreatedAt: t0}
	equal(t, pw[0], want, "password")

	// Replaced in place: still one password.
	pw[0].LastUsedAt = at(time.Minute)
	must(t, s.UpdateCredential(ctx, pw[0]))
	must(t, s.SetPassword(ctx, u.ID, "$argon2id$v=19$m=65536,t=3,p=4$two", at(time.Hour)))
	pw, err = s.ListCredentials(ctx, u.ID, "")
	must(t, err)
	want.Secret = []byte("$argon2id$v=19$m=65536,t=3,p=4$two")
	want.VerifiedAt, want.CreatedAt = at(time.Hour), at(time.Hour)
	equal(t, pw, []store.Credential{want}, "credentials after a second SetPassword")

	// A second password through CreateCredential is refused.
	err = s.CreateCredential(ctx, store.Credential{ID: "cred-pw2", UserID: u.ID, Type: store.CredPassword,
		Secret: []byte("x"), CreatedAt: t0})
	wantErr(t, err, store.ErrConflict, "CreateCredential second password")

	wantErr(t, s.SetPassword(ctx, "user-unknown", "x", t0), store.ErrNotFound, "SetPassword unknown user")
}

func testCreateGetCredential(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)

	c := totp("cred-1", u.ID, t0)
	c.VerifiedAt = time.Time{} // enrollment unfinished
	c.TOTPLastStep = 56666666
	must(t, s.CreateCredential(ctx, c))
	got, err := s.GetCredential(ctx, c.ID)
	must(t, err)
	equal(t, got, c, "GetCredential")

	w := store.Credential{
		ID: "cred-2", UserID: u.ID, Type: store.CredWebAuthn, Name: "YubiKey",
		Secret:     []byte{}, // empty comes back nil
		Data:       []byte(`{"credential_id":"AQID","sign_count":7}`),
		VerifiedAt: at(time.Minute), LastUsedAt: at(time.Hour), CreatedAt: at(time.Minute),
	}
	must(t, s.CreateCredential(ctx, w))
	got, err = s.GetCredential(ctx, w.ID)
	must(t, err)
	w.Secret = nil
	equal(t, got, w, "GetCredential webauthn")

	wantErr(t, s.CreateCredential(ctx, totp("cred-1", u.ID, t0)), store.ErrConflict, "CreateCredential duplicate id")
	wantErr(t, s.CreateCredential(ctx, totp("cred-3", "user-unknown", t0)), store.ErrNotFound, "CreateCredential unknown user")
	_, err = s.GetCredential(ctx, "cred-unknown")
	wantErr(t, err, store.ErrNotFound, "GetCredential unknown")
}

func testListCredentials(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateUser(ctx, newUser("user-2", "bob")))

	// Stored out of order.
	must(t, s.CreateCredential(ctx, totp("c-totp-late", u.ID, at(3*time.Hour))))
	must(t, s.CreateCredential(ctx, store.Credential{ID: "c-sms", UserID: u.ID, Type: store.CredSMS,
		Data: []byte(`{"phone":"+15145550100"}`), CreatedAt: at(2 * time.Hour)}))
	must(t, s.CreateCredential(ctx, totp("c-totp-early", u.ID, at(time.Hour))))
	must(t, s.SetPassword(ctx, u.ID, "phc", t0))
	must(t, s.CreateCredential(ctx, totp("c-bob", "user-2", t0)))

	all, err := s.ListCredentials(ctx, u.ID, "")
	must(t, err)
	if len(all) != 4 || all[0].Type != store.CredPassword {
		t.Fatalf("ListCredentials all: %+v", all)
	}
	equal(t, ids(all[1:], credID), []string{"c-totp-early", "c-sms", "c-totp-late"}, "ListCredentials oldest first")

	totps, err := s.ListCredentials(ctx, u.ID, store.CredTOTP)
	must(t, err)
	equal(t, ids(totps, credID), []string{"c-totp-early", "c-totp-late"}, "ListCredentials totp")

	none, err := s.ListCredentials(ctx, u.ID, store.CredWebAuthn)
	must(t, err)
	equal(t, len(none), 0, "ListCredentials webauthn")
	none, err = s.ListCredentials(ctx, "user-unknown", "")
	must(t, err)
	equal(t, len(none), 0, "ListCredentials unknown user")
}

func testUpdateCredential(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	c := totp("cred-1", u.ID, t0)
	c.VerifiedAt = time.Time{}
	c.TOTPLastStep = 10
	must(t, s.CreateCredential(ctx, c))

	upd := c
	upd.Name = "New phone"
	upd.Secret = []byte("resealed")
	upd.Data = []byte(`{"digits":6}`)
	upd.VerifiedAt = at(time.Minute)
	upd.LastUsedAt = at(time.Hour)
	// Not updatable: left as they are.
	upd.Type, upd.UserID, upd.TOTPLastStep, upd.CreatedAt = store.CredSMS, "user-unknown", 99, at(time.Hour)
	must(t, s.UpdateCredential(ctx, upd))

	want := c
	want.Name, want.Secret, want.Data = upd.Name, upd.Secret, upd.Data
	want.VerifiedAt, want.LastUsedAt = upd.VerifiedAt, upd.LastUsedAt
	got, err := s.GetCredential(ctx, c.ID)
	must(t, err)
	equal(t, got, want, "GetCredential after UpdateCredential")

	// Clearing: nil data and zero times.
	upd.Data, upd.LastUsedAt = nil, time.Time{}
	must(t, s.UpdateCredential(ctx, upd))
	got, err = s.GetCredential(ctx, c.ID)
	must(t, err)
	want.Data, want.LastUsedAt = nil, time.Time{}
	equal(t, got, want, "GetCredential after clearing")

	wantErr(t, s.UpdateCredential(ctx, totp("cred-unknown", u.ID, t0)), store.ErrNotFound, "UpdateCredential unknown")
}

func testDeleteCredential(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateCredential(ctx, totp("cred-1", u.ID, t0)))
	must(t, s.CreateCredential(ctx, totp("cred-2", u.ID, t0)))

	must(t, s.DeleteCredential(ctx, "cred-1"))
	_, err := s.GetCredential(ctx, "cred-1")
	wantErr(t, err, store.ErrNotFound, "GetCredential after delete")
	wantErr(t, s.DeleteCredential(ctx, "cred-1"), store.ErrNotFound, "DeleteCredential twice")
	left, err := s.ListCredentials(ctx, u.ID, "")
	must(t, err)
	equal(t, ids(left, credID), []string{"cred-2"}, "credentials left")
}

func testAdvanceTOTPStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateCredential(ctx, totp("cred-1", u.ID, t0)))
	must(t, s.SetPassword(ctx, u.ID, "phc", t0))

	steps := []struct {
		step int64
		want error
	}{
		{56666667, nil},
		{56666667, store.ErrConflict}, // replay
		{56666666, store.ErrConflict}, // older
		{56666669, nil},
		{56666668, store.ErrConflict},
	}
	for i, st := range steps {
		err := s.AdvanceTOTPStep(ctx, "cred-1", st.step, at(time.Duration(i)*time.Minute))
		if st.want == nil {
			must(t, err)
		} else {
			wantErr(t, err, st.want, "AdvanceTOTPStep")
		}
	}
	got, err := s.GetCredential(ctx, "cred-1")
	must(t, err)
	equal(t, got.TOTPLastStep, int64(56666669), "TOTPLastStep")
	equal(t, got.LastUsedAt, at(3*time.Minute), "LastUsedAt: the time of the last accepted step")

	wantErr(t, s.AdvanceTOTPStep(ctx, "cred-unknown", 1, t0), store.ErrNotFound, "AdvanceTOTPStep unknown")
	pw, err := s.ListCredentials(ctx, u.ID, store.CredPassword)
	must(t, err)
	wantErr(t, s.AdvanceTOTPStep(ctx, pw[0].ID, 1, t0), store.ErrNotFound, "AdvanceTOTPStep on a password")
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.CreateUser(ctx, newUser("user-2", "bob")))
	must(t, s.ReplaceRecoveryCodes(ctx, "user-2", []string{"h-bob"}, t0))

	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1", "h2", "h3"}, t0))
	codes, err := s.ListRecoveryCodes(ctx, u.ID)
	must(t, err)
	if len(codes) != 3 {
		t.Fatalf("ListRecoveryCodes: %+v", codes)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if c.ID == "" || c.UserID != u.ID || !c.CreatedAt.Equal(t0) || !c.UsedAt.IsZero() || seen[c.ID] {
			t.Fatalf("recovery code %+v", c)
		}
		seen[c.ID], seen[c.Hash] = true, true
	}
	if !seen["h1"] || !seen["h2"] || !seen["h3"] {
		t.Fatalf("recovery codes %+v, want h1, h2, h3", codes)
	}

	must(t, s.ConsumeRecoveryCode(ctx, u.ID, "h2", at(time.Minute)))
	wantErr(t, s.ConsumeRecoveryCode(ctx, u.ID, "h2", at(2*time.Minute)), store.ErrNotFound, "ConsumeRecoveryCode twice")
	wantErr(t, s.ConsumeRecoveryCode(ctx, u.ID, "h-unknown", t0), store.ErrNotFound, "ConsumeRecoveryCode unknown")
	wantErr(t, s.ConsumeRecoveryCode(ctx, u.ID, "h-bob", t0), store.ErrNotFound, "ConsumeRecoveryCode of another user")
	wantErr(t, s.ConsumeRecoveryCode(ctx, "user-2", "h1", t0), store.ErrNotFound, "ConsumeRecoveryCode by another user")

	codes, err = s.ListRecoveryCodes(ctx, u.ID)
	must(t, err)
	for _, c := range codes {
		want := time.Time{}
		if c.Hash == "h2" {
			want = at(time.Minute)
		}
		equal(t, c.UsedAt, want, "UsedAt of "+c.Hash)
	}

	// Replacing drops every old code, used or not.
	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h4"}, at(time.Hour)))
	codes, err = s.ListRecoveryCodes(ctx, u.ID)
	must(t, err)
	if len(codes) != 1 || codes[0].Hash != "h4" || !codes[0].CreatedAt.Equal(at(time.Hour)) {
		t.Fatalf("ListRecoveryCodes after replace: %+v", codes)
	}
	wantErr(t, s.ConsumeRecoveryCode(ctx, u.ID, "h1", t0), store.ErrNotFound, "ConsumeRecoveryCode replaced")
	must(t, s.ConsumeRecoveryCode(ctx, "user-2", "h-bob", t0)) // untouched

	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, nil, at(time.Hour)))
	codes, err = s.ListRecoveryCodes(ctx, u.ID)
	must(t, err)
	equal(t, len(codes), 0, "codes after replacing with none")

	wantErr(t, s.ReplaceRecoveryCodes(ctx, "user-unknown", []string{"h"}, t0), store.ErrNotFound, "ReplaceRecoveryCodes unknown user")
}

// A failed replacement leaves the old codes in place.
func testReplaceRecoveryCodesAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	must(t, s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1", "h2"}, t0))

	err := s.ReplaceRecoveryCodes(ctx, u.ID, []string{"h3", "h3"}, at(time.Hour))
	wantErr(t, err, store.ErrConflict, "ReplaceRecoveryCodes with a duplicate")
	codes, err := s.ListRecoveryCodes(ctx, u.ID)
	must(t, err)
	if len(codes) != 2 {
		t.Fatalf("codes after a failed replace: %+v, want h1, h2", codes)
	}
	must(t, s.ConsumeRecoveryCode(ctx, u.ID, "h1", t0))
}

func testActionTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	tok := store.ActionToken{Hash: "tok-1", Kind: "activation", UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)}
	must(t, s.CreateActionToken(ctx, tok))

	_, err := s.ConsumeActionToken(ctx, "tok-1", "password_reset", at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "ConsumeActionToken of another kind")
	_, err = s.ConsumeActionToken(ctx, "tok-unknown", "activation", at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "ConsumeActionToken unknown")

	got, err := s.ConsumeActionToken(ctx, "tok-1", "activation", at(time.Minute))
	must(t, err)
	want := tok
	want.UsedAt = at(time.Minute)
	equal(t, got, want, "ConsumeActionToken")
	_, err = s.ConsumeActionToken(ctx, "tok-1", "activation", at(2*time.Minute))
	wantErr(t, err, store.ErrNotFound, "ConsumeActionToken twice")

	// Expired at ExpiresAt.
	must(t, s.CreateActionToken(ctx, store.ActionToken{Hash: "tok-2", Kind: "activation", UserID: u.ID,
		CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	_, err = s.ConsumeActionToken(ctx, "tok-2", "activation", at(time.Hour))
	wantErr(t, err, store.ErrNotFound, "ConsumeActionToken at expiry")
	_, err = s.ConsumeActionToken(ctx, "tok-2", "activation", at(2*time.Hour))
	wantErr(t, err, store.ErrNotFound, "ConsumeActionToken after expiry")
	got, err = s.ConsumeActionToken(ctx, "tok-2", "activation", at(time.Hour-time.Microsecond))
	must(t, err)
	equal(t, got.UsedAt, at(time.Hour-time.Microsecond), "UsedAt just before expiry")
}

func testExpireActionTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	other := newUser("user-2", "bob")
	must(t, s.CreateUser(ctx, other))
	tok := func(hash, kind, userID string, expires time.Duration) {
		t.Helper()
		must(t, s.CreateActionToken(ctx, store.ActionToken{Hash: hash, Kind: kind, UserID: userID, CreatedAt: t0, ExpiresAt: at(expires)}))
	}
	tok("act-1", "activation", u.ID, time.Hour)
	tok("act-2", "activation", u.ID, 2*time.Hour)
	tok("act-used", "activation", u.ID, time.Hour)
	_, err := s.ConsumeActionToken(ctx, "act-used", "activation", at(time.Minute))
	must(t, err)
	tok("act-expired", "activation", u.ID, 5*time.Minute)
	tok("reset-1", "password_reset", u.ID, time.Hour)
	tok("bob-1", "activation", other.ID, time.Hour)

	now := at(10 * time.Minute)
	n, err := s.ExpireActionTokens(ctx, u.ID, "activation", now)
	must(t, err)
	equal(t, n, int64(2), "ExpireActionTokens count (the used and the expired tokens are not counted)")
	for _, h := range []string{"act-1", "act-2", "act-used", "act-expired"} {
		_, err := s.ConsumeActionToken(ctx, h, "activation", now)
		wantErr(t, err, store.ErrNotFound, "ConsumeActionToken "+h+" after ExpireActionTokens")
	}
	n, err = s.ExpireActionTokens(ctx, u.ID, "activation", at(11*time.Minute))
	must(t, err)
	equal(t, n, int64(0), "ExpireActionTokens again")
	n, err = s.ExpireActionTokens(ctx, "user-unknown", "activation", now)
	must(t, err)
	equal(t, n, int64(0), "ExpireActionTokens of an unknown user")

	// Another kind and another user keep their tokens; a token created
	// afterwards works.
	got, err := s.ConsumeActionToken(ctx, "reset-1", "password_reset", at(11*time.Minute))
	must(t, err)
	equal(t, got.ExpiresAt, at(time.Hour), "ExpiresAt of a token of another kind")
	got, err = s.ConsumeActionToken(ctx, "bob-1", "activation", at(11*time.Minute))
	must(t, err)
	equal(t, got.ExpiresAt, at(time.Hour), "ExpiresAt of another user's token")
	must(t, s.CreateActionToken(ctx, store.ActionToken{Hash: "act-3", Kind: "activation", UserID: u.ID,
		CreatedAt: now, ExpiresAt: at(time.Hour)}))
	got, err = s.ConsumeActionToken(ctx, "act-3", "activation", at(11*time.Minute))
	must(t, err)
	equal(t, got.UserID, u.ID, "ConsumeActionToken of a token created after ExpireActionTokens")
}

func testActionTokenConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _ := seed(t, s)
	tok := store.ActionToken{Hash: "tok-1", Kind: "activation", UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)}
	must(t, s.CreateActionToken(ctx, tok))
	wantErr(t, s.CreateActionToken(ctx, tok), store.ErrConflict, "CreateActionToken duplicate")
	tok.Hash, tok.UserID = "tok-2", "user-unknown"
	wantErr(t, s.CreateActionToken(ctx, tok), store.ErrNotFound, "CreateActionToken unknown user")
}
