package mfa_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/flow"
	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/softkey"
)

const waOrigin = "https://idp.example"

type waFixture struct {
	st  store.Store
	f   mfa.WebAuthn
	u   store.User
	now time.Time
}

func eachWebAuthn(t *testing.T, fn func(t *testing.T, fx *waFixture)) {
	for _, b := range smsBackends {
		t.Run(b.name, func(t *testing.T) {
			st, eph := b.open(t)
			u := store.User{ID: uuid.NewString(), Username: "u-" + uuid.NewString()[:8], Locale: "fr",
				Status: store.StatusActive, AccountType: "person", CreatedAt: fixedNow, UpdatedAt: fixedNow}
			if err := st.CreateUser(t.Context(), u); err != nil {
				t.Fatal(err)
			}
			fn(t, &waFixture{st: st, u: u, now: fixedNow, f: mfa.WebAuthn{Store: st, Ephemeral: eph, Issuer: waOrigin}})
		})
	}
}

// register runs a registration ceremony with k and stores the credential.
func (fx *waFixture) register(t *testing.T, k *softkey.Key) (store.Credential, error) {
	t.Helper()
	opts, err := fx.f.BeginRegistration(t.Context(), fx.u, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := k.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fx.f.FinishRegistration(t.Context(), fx.u, string(resp), "YubiKey", fx.now)
	if err != nil {
		return c, err
	}
	if err := fx.st.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

func (fx *waFixture) assertion(t *testing.T, k *softkey.Key) string {
	t.Helper()
	ch, err := fx.f.Begin(t.Context(), fx.u, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := k.Get(ch.Options, []byte(fx.u.ID))
	if err != nil {
		t.Fatal(err)
	}
	return string(resp)
}

func TestWebAuthnRegisterAndSignIn(t *testing.T) {
	eachWebAuthn(t, func(t *testing.T, fx *waFixture) {
		if ok, _ := fx.f.Enrolled(t.Context(), fx.u); ok {
			t.Fatal("enrolled before registering")
		}
		k := softkey.New(waOrigin, "idp.example")
		c, err := fx.register(t, k)
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		var d mfa.WebAuthnData
		if err := json.Unmarshal(c.Data, &d); err != nil || string(d.Credential.ID) != string(k.ID) || len(d.Credential.PublicKey) == 0 ||
			len(d.Credential.Authenticator.AAGUID) != 16 || len(d.Credential.Transport) != 1 || c.Name != "YubiKey" {
			t.Fatalf("stored credential: %+v %v", d, err)
		}
		if ok, err := fx.f.Enrolled(t.Context(), fx.u); !ok || err != nil {
			t.Fatalf("Enrolled = %v, %v", ok, err)
		}
		// Existing keys are excluded from a new registration.
		opts, _ := fx.f.BeginRegistration(t.Context(), fx.u, fx.now)
		var o struct {
			PublicKey struct {
				Exclude []struct{ ID string } `json:"excludeCredentials"`
				Sel     struct {
					ResidentKey      string `json:"residentKey"`
					UserVerification string `json:"userVerification"`
				} `json:"authenticatorSelection"`
				Attestation string              `json:"attestation"`
				RP          struct{ ID string } `json:"rp"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &o); err != nil || len(o.PublicKey.Exclude) != 1 || o.PublicKey.Sel.ResidentKey != "preferred" ||
			o.PublicKey.Sel.UserVerification != "preferred" || o.PublicKey.RP.ID != "idp.example" ||
			(o.PublicKey.Attestation != "" && o.PublicKey.Attestation != "none") {
			t.Fatalf("creation options: %s", opts)
		}
		if _, err := k.Create(opts); err != nil {
			t.Fatal(err)
		}
		got, err := fx.f.Verify(t.Context(), fx.u, fx.assertion(t, k), fx.now)
		if err != nil || got.ID != c.ID {
			t.Fatalf("Verify = %v, %v", got.ID, err)
		}
		if m := fx.f.MethodOf(got); m != flow.HWK {
			t.Fatalf("MethodOf security key = %s", m)
		}
		// The count is durable.
		stored, _ := fx.st.GetCredential(t.Context(), c.ID)
		_ = json.Unmarshal(stored.Data, &d)
		if d.Credential.Authenticator.SignCount != 1 || !stored.LastUsedAt.Equal(fx.now) {
			t.Fatalf("sign count %d, last used %v", d.Credential.Authenticator.SignCount, stored.LastUsedAt)
		}
		// A second sign-in works.
		if _, err := fx.f.Verify(t.Context(), fx.u, fx.assertion(t, k), fx.now); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWebAuthnSyncedPasskeyIsSWK(t *testing.T) {
	eachWebAuthn(t, func(t *testing.T, fx *waFixture) {
		k := softkey.New(waOrigin, "idp.example")
		k.Synced = true
		if _, err := fx.register(t, k); err != nil {
			t.Fatal(err)
		}
		got, err := fx.f.Verify(t.Context(), fx.u, fx.assertion(t, k), fx.now)
		if err != nil || fx.f.MethodOf(got) != flow.SWK {
			t.Fatalf("Verify = %v; MethodOf = %s", err, fx.f.MethodOf(got))
		}
	})
}

func TestWebAuthnRegistrationRefused(t *testing.T) {
	eachWebAuthn(t, func(t *testing.T, fx *waFixture) {
		for _, tc := range []struct{ name, origin, rpID string }{
			{"wrong origin", "https://idp.example.evil", "idp.example"},
			{"wrong rp id", waOrigin, "evil.example"},
		} {
			if _, err := fx.register(t, softkey.New(tc.origin, tc.rpID)); !errors.Is(err, mfa.ErrCodeInvalid) {
				t.Errorf("%s: err = %v, want ErrCodeInvalid", tc.name, err)
			}
		}
		// A replayed attestation finds no challenge.
		k := softkey.New(waOrigin, "idp.example")
		opts, _ := fx.f.BeginRegistration(t.Context(), fx.u, fx.now)
		resp, _ := k.Create(opts)
		if _, err := fx.f.FinishRegistration(t.Context(), fx.u, string(resp), "k", fx.now); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.f.FinishRegistration(t.Context(), fx.u, string(resp), "k", fx.now); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Errorf("replay: err = %v, want ErrCodeExpired", err)
		}
		// An expired challenge is refused (the factor's clock).
		opts, _ = fx.f.BeginRegistration(t.Context(), fx.u, fx.now)
		resp, _ = k.Create(opts)
		if _, err := fx.f.FinishRegistration(t.Context(), fx.u, string(resp), "k", fx.now.Add(mfa.WebAuthnCeremonyTTL)); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Errorf("expired: err = %v", err)
		}
		if _, err := fx.f.FinishRegistration(t.Context(), fx.u, "{not json", "k", fx.now); !errors.Is(err, mfa.ErrCodeInvalid) {
			t.Errorf("garbage: err = %v", err)
		}
	})
}

func TestWebAuthnSignInRefused(t *testing.T) {
	eachWebAuthn(t, func(t *testing.T, fx *waFixture) {
		k := softkey.New(waOrigin, "idp.example")
		c, err := fx.register(t, k)
		if err != nil {
			t.Fatal(err)
		}
		k.Origin = "https://phish.example"
		if _, err := fx.f.Verify(t.Context(), fx.u, fx.assertion(t, k), fx.now); !errors.Is(err, mfa.ErrCodeInvalid) {
			t.Errorf("wrong origin: %v", err)
		}
		k.Origin, k.RPID = waOrigin, "phish.example"
		if _, err := fx.f.Verify(t.Context(), fx.u, fx.assertion(t, k), fx.now); !errors.Is(err, mfa.ErrCodeInvalid) {
			t.Errorf("wrong rp id: %v", err)
		}
		k.RPID = "idp.example"
		a := fx.assertion(t, k)
		if _, err := fx.f.Verify(t.Context(), fx.u, a, fx.now); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.f.Verify(t.Context(), fx.u, a, fx.now); !errors.Is(err, mfa.ErrCodeExpired) {
			t.Errorf("replayed challenge: %v", err)
		}
		// A cloned key: the counter goes back.
		k.Counter = 0
		if _, err := fx.f.Verify(t.Context(), fx.u, fx.assertion(t, k), fx.now); !errors.Is(err, mfa.ErrSignCount) {
			t.Errorf("sign-count regression: %v", err)
		}
		stored, _ := fx.st.GetCredential(t.Context(), c.ID)
		var d mfa.WebAuthnData
		_ = json.Unmarshal(stored.Data, &d)
		if d.Credential.Authenticator.SignCount != 3 { // the two refused answers counted too
			t.Errorf("stored count after regression = %d, want 3", d.Credential.Authenticator.SignCount)
		}
		// Another user's key does not sign this user in.
		if _, err := fx.f.Verify(t.Context(), fx.u, "{}", fx.now); !errors.Is(err, mfa.ErrCodeInvalid) {
			t.Errorf("empty: %v", err)
		}
	})
}
