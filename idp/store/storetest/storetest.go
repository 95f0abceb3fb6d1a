package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// Run runs the conformance suite. newStore must return a fresh, migrated,
// empty store, and close it when the test ends (t.Cleanup); it is called
// once per subtest. The table runs twice: on the store ("Store/…") and with
// every call in a transaction of its own ("InTx/…"), then the concurrency
// suite.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	modes := []struct {
		name string
		wrap func(store.Store) store.Store
	}{
		{"Store", func(s store.Store) store.Store { return s }},
		{"InTx", func(s store.Store) store.Store { return txStore{s} }},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, mode.wrap(newStore(t))) })
			}
		})
	}
	t.Run("Transactions", func(t *testing.T) {
		for _, tc := range txCases {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
		}
	})
	t.Run("Concurrency", func(t *testing.T) { RunConcurrency(t, newStore) })
}

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// cases hold for a store and for a transaction alike.
var cases = []testCase{
	{"Users/CreateGet", testCreateGetUser},
	{"Users/NotFound", testUserNotFound},
	{"Users/Conflict", testUserConflict},
	{"Users/Update", testUpdateUser},
	{"Users/List", testListUsers},
	{"Users/Search", testSearchUsers},
	{"Users/Support", testUserSupport},
	{"Users/TimesInUTC", testTimesInUTC},
	{"Users/Lock", testLockUser},
	{"Credentials/SetPassword", testSetPassword},
	{"Credentials/CreateGet", testCreateGetCredential},
	{"Credentials/List", testListCredentials},
	{"Credentials/Update", testUpdateCredential},
	{"Credentials/Delete", testDeleteCredential},
	{"Credentials/AdvanceTOTPStep", testAdvanceTOTPStep},
	{"RecoveryCodes/ReplaceListConsume", testRecoveryCodes},
	{"RecoveryCodes/ReplaceIsAtomic", testReplaceRecoveryCodesAtomic},
	{"ActionTokens/Consume", testActionTokens},
	{"ActionTokens/Conflict", testActionTokenConflict},
	{"ActionTokens/Expire", testExpireActionTokens},
	{"Clients/CreateGet", testCreateGetClient},
	{"Clients/List", testListClients},
	{"Clients/Update", testUpdateClient},
	{"Clients/Delete", testDeleteClient},
	{"RefreshTokens/CreateGet", testCreateGetRefreshToken},
	{"RefreshTokens/Rotate", testRotateRefreshToken},
	{"RefreshTokens/RotateIsAtomic", testRotateRefreshTokenAtomic},
	{"RefreshTokens/Claim", testClaimRefreshToken},
	{"RefreshTokens/ClaimRefusesDeadTokens", testClaimRefusesDeadTokens},
	{"RefreshTokens/Unclaim", testUnclaimRefreshToken},
	{"RefreshTokens/Revoke", testRevokeRefreshToken},
	{"RefreshTokens/RevokeFamily", testRevokeRefreshFamily},
	{"RefreshTokens/RevokeBySession", testRevokeRefreshTokensBySession},
	{"RefreshTokens/RevokeByUser", testRevokeUserRefreshTokens},
	{"RefreshTokens/DeleteExpired", testDeleteExpiredRefreshTokens},
	{"SigningKeys", testSigningKeys},
	{"AuditEvents/AppendList", testAuditEvents},
	{"AuditEvents/DefaultLimit", testAuditDefaultLimit},
	{"Outbox/EnqueueGet", testEnqueueOutbox},
	{"Outbox/Claim", testClaimOutbox},
	{"Outbox/Mark", testMarkOutbox},
	{"Outbox/FollowUp", testOutboxFollowUp},
	{"Institutions", testInstitutions},
	{"Memberships", testMemberships},
	{"LabRegistrations", testLabRegistrations},
	{"Users/Lookups", testUserLookups},
	{"AccountRequests/CreateGetDecide", testAccountRequests},
	{"AccountRequests/List", testListAccountRequests},
}

// t0 is the suite's clock: microsecond precision, in UTC, as the store
// returns times.
var t0 = time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func newUser(id, username string) store.User {
	return store.User{
		ID:               id,
		Username:         username,
		Email:            username + "@example.org",
		GivenName:        "Élise",
		FamilyName:       "Tremblay",
		Locale:           "fr-CA",
		Status:           store.StatusActive,
		AccountType:      "person",
		Occupation:       "nurse",
		PracticeNumber:   "12345",
		PrescriberNumber: "67890",
		Phone:            "+15145550100",
		CreatedAt:        t0,
		UpdatedAt:        t0,
	}
}

func newClient(id string) store.Client {
	return store.Client{
		ID:              id,
		Name:            "EMR " + id,
		SecretHash:      "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		RedirectURIs:    []string{"https://emr.example.org/callback", "https://emr.example.org/cb2"},
		PostLogoutURIs:  []string{"https://emr.example.org/"},
		GrantTypes:      []string{"authorization_code", "refresh_token"},
		Scopes:          []string{"openid", "profile", "email"},
		AuthMethod:      "client_secret_basic",
		PKCERequired:    true,
		TokenFormat:     "jwt",
		IDTokenAlg:      "ES256",
		AccessTokenTTL:  5 * time.Minute,
		IDTokenTTL:      time.Hour,
		RefreshTokenTTL: 30 * 24 * time.Hour,
		BackchannelURI:  "https://emr.example.org/backchannel",
		CreatedAt:       t0,
		UpdatedAt:       t0,
	}
}

func newRefreshToken(id, family, parent, userID, clientID string, created time.Time) store.RefreshToken {
	return store.RefreshToken{
		ID:        id,
		Hash:      "hash-" + id,
		Family:    family,
		ParentID:  parent,
		UserID:    userID,
		ClientID:  clientID,
		Scopes:    []string{"openid", "offline_access"},
		Audience:  []string{clientID},
		AuthTime:  t0,
		AMR:       []string{"pwd", "otp", "mfa"},
		ACR:       "urn:sesame:acr:mfa",
		SessionID: "session-1",
		CreatedAt: created,
		ExpiresAt: created.Add(30 * 24 * time.Hour),
	}
}

// seed creates a user and a client, for the tests that need them.
func seed(t testing.TB, s store.Store) (store.User, store.Client) {
	t.Helper()
	u := newUser("user-1", "alice")
	c := newClient("client-1")
	must(t, s.CreateUser(t.Context(), u))
	must(t, s.CreateClient(t.Context(), c))
	return u, c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func equal[T any](t testing.TB, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// ids returns the IDs of values, for messages and order checks.
func ids[T any](values []T, id func(T) string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = id(v)
	}
	return out
}

func userID(u store.User) string             { return u.ID }
func credID(c store.Credential) string       { return c.ID }
func clientID(c store.Client) string         { return c.ID }
func keyID(k store.SigningKey) string        { return k.ID }
func eventID(e store.AuditEvent) string      { return e.ID }
func messageID(m store.OutboxMessage) string { return m.ID }

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}
