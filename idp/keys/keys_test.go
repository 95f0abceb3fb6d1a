package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/internal/teststore"
)

var _ op.SigningKey = (*signingKey)(nil)
var _ op.Key = (*publicKey)(nil)

type keysClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *keysClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *keysClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKeysSealer(t testing.TB) *seal.Sealer {
	t.Helper()
	s, err := seal.New(seal.Key{ID: "test", Secret: bytes.Repeat([]byte{7}, seal.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type keysEnv struct {
	st     store.Store
	sealer *seal.Sealer
	clock  *keysClock
}

func newKeysEnv(t testing.TB) *keysEnv {
	return &keysEnv{st: teststore.SQLite(t), sealer: newKeysSealer(t), clock: &keysClock{t: time.Unix(1700000000, 0).UTC()}}
}

// node is one server process sharing the store.
func (e *keysEnv) node(t testing.TB, algs ...string) *Manager {
	t.Helper()
	return New(e.st, e.sealer, Options{
		Algs:   algs,
		Now:    e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func mustLoad(t testing.TB, k *Manager) {
	t.Helper()
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stored returns the stored keys by state, for one algorithm.
func stored(t *testing.T, st store.Store, alg string) map[store.KeyState][]store.SigningKey {
	t.Helper()
	recs, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[store.KeyState][]store.SigningKey{}
	for _, r := range recs {
		if r.Alg == alg {
			m[r.State] = append(m[r.State], r)
		}
	}
	return m
}

func signingKID(t *testing.T, k *Manager, alg string) string {
	t.Helper()
	sk, err := k.SigningKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return sk.ID()
}

// jwksKIDs parses JWKS() with go-jose and returns its kids.
func jwksKIDs(t *testing.T, k *Manager) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, k.JWKS())
	}
	var kids []string
	for _, key := range set.Keys {
		kids = append(kids, key.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func TestKeysBeforeLoad(t *testing.T) {
	k := newKeysEnv(t).node(t)
	if _, err := k.SigningKey(""); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("SigningKey before Load: %v", err)
	}
	if got := string(k.JWKS()); got != `{"keys":[]}` {
		t.Fatalf("JWKS before Load = %s", got)
	}
	if k.Version() != 0 || len(k.PublicKeys()) != 0 || len(k.Algorithms()) != 0 {
		t.Fatal("keys before Load")
	}
}

func TestKeysLoadCreatesActiveAndNext(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t)
	mustLoad(t, k)

	s := stored(t, e.st, "RS256")
	if len(s[store.KeyActive]) != 1 || len(s[store.KeyNext]) != 1 || len(s[store.KeyRetired]) != 0 {
		t.Fatalf("after first Load: %d active, %d next, %d retired; want 1, 1, 0",
			len(s[store.KeyActive]), len(s[store.KeyNext]), len(s[store.KeyRetired]))
	}
	active, next := s[store.KeyActive][0], s[store.KeyNext][0]
	for _, r := range []store.SigningKey{active, next} {
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(r.ID) {
			t.Errorf("kid %q: want 16 hex characters", r.ID)
		}
	}
	if !active.ActivatedAt.Equal(e.clock.Now()) || !next.ActivatedAt.IsZero() {
		t.Errorf("activation times: active %v, next %v", active.ActivatedAt, next.ActivatedAt)
	}
	if got := signingKID(t, k, ""); got != active.ID {
		t.Fatalf("SigningKey(\"\") = %s, want the active key %s", got, active.ID)
	}
	if got := signingKID(t, k, "RS256"); got != active.ID {
		t.Fatalf("SigningKey(RS256) = %s, want %s", got, active.ID)
	}
	if sk, _ := k.SigningKey("RS256"); sk.SignatureAlgorithm() != jose.RS256 {
		t.Fatalf("alg %s", sk.SignatureAlgorithm())
	}
	if _, err := k.SigningKey("ES256"); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("SigningKey(ES256) not configured: %v", err)
	}
	if got := k.Algorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Fatalf("Algorithms() = %v", got)
	}
	if got, want := jwksKIDs(t, k), sorted(active.ID, next.ID); !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want %v", got, want)
	}
	if len(k.PublicKeys()) != 2 {
		t.Fatalf("%d public keys, want 2", len(k.PublicKeys()))
	}
	v := k.Version()
	if v == 0 {
		t.Fatal("Version still 0 after Load")
	}

	// Loading again creates nothing and changes nothing.
	mustLoad(t, k)
	if s2 := stored(t, e.st, "RS256"); len(s2[store.KeyActive])+len(s2[store.KeyNext]) != 2 {
		t.Fatal("second Load created keys")
	}
	if k.Version() != v {
		t.Fatalf("Version %d → %d without a change", v, k.Version())
	}
}

func TestKeysSecondNodeSharesKeys(t *testing.T) {
	e := newKeysEnv(t)
	a, b := e.node(t), e.node(t)
	mustLoad(t, a)
	mustLoad(t, b)
	if signingKID(t, a, "") != signingKID(t, b, "") {
		t.Fatal("the two nodes sign with different keys")
	}
	if !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Fatalf("the two nodes publish different key sets:\n%s\n%s", a.JWKS(), b.JWKS())
	}
	if s := stored(t, e.st, "RS256"); len(s[store.KeyActive]) != 1 || len(s[store.KeyNext]) != 1 {
		t.Fatal("the second node created keys")
	}
}

func TestKeysNodesStartingTogether(t *testing.T) {
	e := newKeysEnv(t)
	nodes := []*Manager{e.node(t), e.node(t), e.node(t), e.node(t)}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.Load(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A refresh later (Run does one a minute), every node signs with the
	// same key.
	want := ""
	for _, n := range nodes {
		if err := n.RotateIfDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := signingKID(t, n, ""); want == "" {
			want = got
		} else if got != want {
			t.Fatalf("nodes sign with %s and %s", want, got)
		}
	}
	// SQLite serialises the transactions, and each checks the keys are as
	// it listed them: exactly one pair.
	if s := stored(t, e.st, "RS256"); len(s[store.KeyActive]) != 1 || len(s[store.KeyNext]) != 1 {
		t.Fatalf("%d active, %d next after a concurrent start", len(s[store.KeyActive]), len(s[store.KeyNext]))
	}
}

// Two active keys (what a race on a database without serialised
// transactions can leave): every node signs with the newest, and the next
// rotation retires both.
func TestKeysTwoActives(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t)
	mustLoad(t, k)
	first := signingKID(t, k, "")
	e.clock.Advance(time.Second)
	p := &keyPlan{}
	if err := k.create(p, "RS256", store.KeyActive, k.now()); err != nil {
		t.Fatal(err)
	}
	if err := p.apply(context.Background(), e.st); err != nil {
		t.Fatal(err)
	}
	second := p.creates[0].ID
	for _, n := range []*Manager{k, e.node(t)} {
		if err := n.RotateIfDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := signingKID(t, n, ""); got != second {
			t.Fatalf("signing with %s, want the newest active %s (not %s)", got, second, first)
		}
	}
	if err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := stored(t, e.st, "RS256")
	if len(s[store.KeyActive]) != 1 || len(s[store.KeyRetired]) != 2 || len(s[store.KeyNext]) != 1 {
		t.Fatalf("after rotation: %d active, %d next, %d retired; want 1, 1, 2",
			len(s[store.KeyActive]), len(s[store.KeyNext]), len(s[store.KeyRetired]))
	}
}

func TestKeysRotate(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t)
	mustLoad(t, k)
	before := stored(t, e.st, "RS256")
	oldActive, oldNext := before[store.KeyActive][0], before[store.KeyNext][0]
	v := k.Version()

	e.clock.Advance(time.Hour)
	if err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := stored(t, e.st, "RS256")
	if len(after[store.KeyActive]) != 1 || len(after[store.KeyNext]) != 1 || len(after[store.KeyRetired]) != 1 {
		t.Fatalf("after Rotate: %d active, %d next, %d retired; want 1, 1, 1",
			len(after[store.KeyActive]), len(after[store.KeyNext]), len(after[store.KeyRetired]))
	}
	retired, active, next := after[store.KeyRetired][0], after[store.KeyActive][0], after[store.KeyNext][0]
	if retired.ID != oldActive.ID || !retired.RetiredAt.Equal(e.clock.Now()) {
		t.Errorf("retired %s at %v, want %s at %v", retired.ID, retired.RetiredAt, oldActive.ID, e.clock.Now())
	}
	if active.ID != oldNext.ID || !active.ActivatedAt.Equal(e.clock.Now()) {
		t.Errorf("active %s since %v, want the old next %s since %v", active.ID, active.ActivatedAt, oldNext.ID, e.clock.Now())
	}
	if next.ID == oldActive.ID || next.ID == oldNext.ID {
		t.Errorf("no new next key")
	}
	if got := signingKID(t, k, ""); got != active.ID {
		t.Errorf("signing with %s, want %s", got, active.ID)
	}
	if got, want := jwksKIDs(t, k), sorted(retired.ID, active.ID, next.ID); !slices.Equal(got, want) {
		t.Errorf("JWKS kids %v, want %v", got, want)
	}
	if k.Version() == v {
		t.Error("Version unchanged by Rotate")
	}

	// Another node picks it up at its next refresh.
	other := e.node(t)
	mustLoad(t, other)
	if signingKID(t, other, "") != active.ID {
		t.Error("another node does not sign with the new active key")
	}
}

func TestKeysRefreshPicksUpOtherNodeAndReusesOpenedKeys(t *testing.T) {
	e := newKeysEnv(t)
	a, b := e.node(t), e.node(t)
	mustLoad(t, a)
	mustLoad(t, b)
	oldNext := stored(t, e.st, "RS256")[store.KeyNext][0].ID
	opened := a.cur.Load().byID[oldNext]

	// Nothing changed: same snapshot, same bytes, same version.
	jwks, v := a.JWKS(), a.Version()
	if err := a.RotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Version() != v || &a.JWKS()[0] != &jwks[0] {
		t.Fatal("a refresh without change rebuilt the snapshot")
	}

	if err := b.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.RotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := signingKID(t, a, ""); got != oldNext {
		t.Fatalf("node a signs with %s after node b rotated, want %s", got, oldNext)
	}
	if a.Version() == v {
		t.Fatal("Version unchanged")
	}
	if !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Fatal("nodes publish different sets")
	}
	if a.cur.Load().byID[oldNext] != opened {
		t.Fatal("a key already opened was opened again")
	}
}

func TestKeysRotateIfDue(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t)
	mustLoad(t, k)
	first := signingKID(t, k, "")
	ctx := context.Background()

	e.clock.Advance(30*24*time.Hour - time.Minute)
	if err := k.RotateIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	if signingKID(t, k, "") != first {
		t.Fatal("rotated before 30 days")
	}

	e.clock.Advance(time.Minute)
	if err := k.RotateIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	second := signingKID(t, k, "")
	if second == first {
		t.Fatal("not rotated after 30 days")
	}
	if !slices.Contains(jwksKIDs(t, k), first) {
		t.Fatal("the retired key left the JWKS at once")
	}

	// The retired key stays published for 7 days, then is deleted.
	e.clock.Advance(7*24*time.Hour - time.Minute)
	if err := k.RotateIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(jwksKIDs(t, k), first) || len(stored(t, e.st, "RS256")[store.KeyRetired]) != 1 {
		t.Fatal("the retired key went before 7 days")
	}
	e.clock.Advance(time.Minute)
	if err := k.RotateIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(jwksKIDs(t, k), first) {
		t.Fatal("the retired key is still published after 7 days")
	}
	if n := len(stored(t, e.st, "RS256")[store.KeyRetired]); n != 0 {
		t.Fatalf("%d retired keys still stored after 7 days", n)
	}
	if signingKID(t, k, "") != second || len(jwksKIDs(t, k)) != 2 {
		t.Fatal("pruning touched the active or next key")
	}
}

func TestKeysRotateIfDueRecreatesMissingNext(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t)
	mustLoad(t, k)
	next := stored(t, e.st, "RS256")[store.KeyNext][0]
	if err := e.st.DeleteSigningKey(context.Background(), next.ID); err != nil {
		t.Fatal(err)
	}
	if err := k.RotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := stored(t, e.st, "RS256"); len(s[store.KeyNext]) != 1 || s[store.KeyNext][0].ID == next.ID {
		t.Fatal("missing next key not recreated")
	}
}

func TestKeysJWKSVerifiesSignature(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			e := newKeysEnv(t)
			k := e.node(t, alg)
			mustLoad(t, k)
			sk, err := k.SigningKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := op.SignerFromKey(sk)
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(`{"sub":"alice"}`)
			jws, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			compact, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}

			// A relying party: JWKS bytes → key by kid → verify.
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(k.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			parsed, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			kid := parsed.Signatures[0].Header.KeyID
			found := set.Key(kid)
			if kid != sk.ID() || len(found) != 1 {
				t.Fatalf("kid %q in the token, %d matching keys in the JWKS", kid, len(found))
			}
			if found[0].Algorithm != alg || found[0].Use != "sig" || !found[0].IsPublic() || !found[0].Valid() {
				t.Fatalf("JWK %+v: want a valid public %s key for sig", found[0], alg)
			}
			got, err := parsed.Verify(found[0])
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("verify with the published key: %v", err)
			}

			// The raw JSON: the fields a relying party expects, no private parts.
			var raw struct{ Keys []map[string]any }
			if err := json.Unmarshal(k.JWKS(), &raw); err != nil {
				t.Fatal(err)
			}
			for _, jwk := range raw.Keys {
				want := []string{"kid", "alg", "use", "kty", "n", "e"}
				if alg == "ES256" {
					want = []string{"kid", "alg", "use", "kty", "crv", "x", "y"}
				}
				for _, f := range want {
					if _, ok := jwk[f]; !ok {
						t.Errorf("JWK lacks %q: %v", f, jwk)
					}
				}
				for _, f := range []string{"d", "p", "q", "dp", "dq", "qi"} {
					if _, ok := jwk[f]; ok {
						t.Errorf("JWK has private member %q", f)
					}
				}
			}
		})
	}
}

func TestKeysES256(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t, "RS256", "ES256")
	mustLoad(t, k)
	for _, alg := range []string{"RS256", "ES256"} {
		if s := stored(t, e.st, alg); len(s[store.KeyActive]) != 1 || len(s[store.KeyNext]) != 1 {
			t.Fatalf("%s: %d active, %d next", alg, len(s[store.KeyActive]), len(s[store.KeyNext]))
		}
	}
	if got := k.Algorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}) {
		t.Fatalf("Algorithms() = %v", got)
	}
	if len(k.PublicKeys()) != 4 || len(jwksKIDs(t, k)) != 4 {
		t.Fatalf("%d public keys, want 4", len(k.PublicKeys()))
	}
	es, err := k.SigningKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	if key, ok := es.Key().(*ecdsa.PrivateKey); !ok || key.Curve != elliptic.P256() || es.SignatureAlgorithm() != jose.ES256 {
		t.Fatalf("ES256 key is %T", es.Key())
	}
	rs, _ := k.SigningKey("")
	if key, ok := rs.Key().(*rsa.PrivateKey); !ok || key.N.BitLen() != 2048 {
		t.Fatalf("default key is %T, want RSA 2048", rs.Key())
	}
	for _, pk := range k.PublicKeys() {
		if pk.Use() != "sig" {
			t.Fatalf("use %q", pk.Use())
		}
		switch pk.Key().(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			t.Fatalf("public key of type %T", pk.Key())
		}
	}

	// Rotation moves both algorithms.
	if err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(jwksKIDs(t, k)) != 6 {
		t.Fatal("want 6 published keys after rotating two algorithms")
	}

	// ES256 dropped from the configuration: its keys are retired, stay
	// published for the retention, then go.
	rsOnly := e.node(t, "RS256")
	if err := rsOnly.RotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := stored(t, e.st, "ES256"); len(s[store.KeyActive])+len(s[store.KeyNext]) != 0 || len(s[store.KeyRetired]) != 3 {
		t.Fatal("keys of an algorithm no longer configured not retired")
	}
	if _, err := rsOnly.SigningKey("ES256"); err == nil {
		t.Fatal("signing with an algorithm no longer configured")
	}
	if len(jwksKIDs(t, rsOnly)) != 6 {
		t.Fatal("retired ES256 keys not published during the retention")
	}
	e.clock.Advance(7 * 24 * time.Hour)
	if err := rsOnly.RotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(stored(t, e.st, "ES256")) != 0 {
		t.Fatal("ES256 keys not deleted after the retention")
	}
}

func TestKeysPrivateKeysSealed(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t, "RS256", "ES256")
	mustLoad(t, k)
	recs, err := e.st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		lk := k.cur.Load().byID[r.ID]
		der, err := x509.MarshalPKCS8PrivateKey(lk.priv)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(r.Sealed, der) || bytes.Contains(r.Sealed, der[len(der)-32:]) {
			t.Fatalf("key %s stored in the clear", r.ID)
		}
		if _, err := x509.ParsePKCS8PrivateKey(r.Sealed); err == nil {
			t.Fatalf("key %s stored as plain PKCS #8", r.ID)
		}
		// Sealed with its kid as additional data: it opens as itself only.
		if got, err := e.sealer.Open(r.Sealed, []byte(r.ID)); err != nil || !bytes.Equal(got, der) {
			t.Fatalf("key %s does not open with its kid: %v", r.ID, err)
		}
		if _, err := e.sealer.Open(r.Sealed, []byte("0000000000000000")); err == nil {
			t.Fatalf("key %s opens under another kid", r.ID)
		}
	}

	// A row whose sealed key was copied from another row does not load.
	active := stored(t, e.st, "RS256")[store.KeyActive][0]
	forged := store.SigningKey{ID: "ffffffffffffffff", Alg: "RS256", Sealed: active.Sealed, State: store.KeyNext, CreatedAt: e.clock.Now()}
	if err := e.st.CreateSigningKey(context.Background(), forged); err != nil {
		t.Fatal(err)
	}
	if err := e.node(t, "RS256", "ES256").Load(context.Background()); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("Load with a transplanted sealed key: %v, want seal.ErrOpen", err)
	}
	// And a node with another sealing key cannot use the keys at all.
	other, _ := seal.New(seal.Key{ID: "other", Secret: bytes.Repeat([]byte{9}, seal.KeySize)})
	if err := New(e.st, other, Options{Now: e.clock.Now}).Load(context.Background()); err == nil {
		t.Fatal("keys opened with the wrong sealing key")
	}
}

func TestKeysBadOptions(t *testing.T) {
	e := newKeysEnv(t)
	for _, opts := range []Options{
		{Algs: []string{"HS256"}},
		{Algs: []string{"none"}},
		{Algs: []string{"RS256", "RS256"}},
		{RSABits: 1024},
	} {
		if err := New(e.st, e.sealer, opts).Load(context.Background()); err == nil {
			t.Errorf("Load with %+v: no error", opts)
		}
	}
	if recs, _ := e.st.ListSigningKeys(context.Background()); len(recs) != 0 {
		t.Fatal("keys created despite bad options")
	}
}

func TestKeysAccessorsDoNotAllocate(t *testing.T) {
	e := newKeysEnv(t)
	k := e.node(t)
	mustLoad(t, k)
	allocs := testing.AllocsPerRun(100, func() {
		_ = k.JWKS()
		_ = k.PublicKeys()
		_ = k.Version()
		_ = k.Algorithms()
		if _, err := k.SigningKey("RS256"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("accessors allocate %v times per call", allocs)
	}
}

func BenchmarkJWKS(b *testing.B) {
	e := newKeysEnv(b)
	k := e.node(b)
	mustLoad(b, k)
	b.ReportAllocs()
	for b.Loop() {
		_ = k.JWKS()
	}
}

func BenchmarkJWKSParallel(b *testing.B) {
	e := newKeysEnv(b)
	k := e.node(b)
	mustLoad(b, k)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = k.JWKS()
		}
	})
}

func BenchmarkSigningKey(b *testing.B) {
	e := newKeysEnv(b)
	k := e.node(b)
	mustLoad(b, k)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.SigningKey("RS256"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefreshUnchanged is what Run costs each minute when nothing changed.
func BenchmarkRefreshUnchanged(b *testing.B) {
	e := newKeysEnv(b)
	k := e.node(b)
	mustLoad(b, k)
	b.ReportAllocs()
	for b.Loop() {
		if err := k.RotateIfDue(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeysNodesRotatingTogetherOnPostgres: when a rotation falls due,
// every node's RotateIfDue runs at once; the advisory lock makes them take
// turns, so one rotation happens: one active and one next key per
// algorithm, and every node signs with the key that was published as next.
func TestKeysNodesRotatingTogetherOnPostgres(t *testing.T) {
	e := &keysEnv{st: teststore.Postgres(t), sealer: newKeysSealer(t), clock: &keysClock{t: time.Unix(1700000000, 0).UTC()}}
	nodes := []*Manager{e.node(t, "ES256"), e.node(t, "ES256"), e.node(t, "ES256"), e.node(t, "ES256")}
	for _, n := range nodes {
		mustLoad(t, n)
	}
	for round := range 5 {
		next := stored(t, e.st, "ES256")[store.KeyNext][0].ID
		for _, n := range nodes {
			if !slices.Contains(jwksKIDs(t, n), next) {
				t.Fatalf("round %d: next key %s not published before it signs", round, next)
			}
		}
		e.clock.Advance(31 * 24 * time.Hour)
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		for i, n := range nodes {
			wg.Go(func() { errs[i] = n.RotateIfDue(context.Background()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: node %d: %v", round, i, err)
			}
		}
		keys := stored(t, e.st, "ES256")
		if len(keys[store.KeyActive]) != 1 || len(keys[store.KeyNext]) != 1 {
			t.Fatalf("round %d: %d active and %d next keys, want one of each", round, len(keys[store.KeyActive]), len(keys[store.KeyNext]))
		}
		if keys[store.KeyActive][0].ID != next {
			t.Fatalf("round %d: active key %s, want the published next key %s", round, keys[store.KeyActive][0].ID, next)
		}
		for i, n := range nodes {
			if got := signingKID(t, n, "ES256"); got != next {
				t.Fatalf("round %d: node %d signs with %s, want %s", round, i, got, next)
			}
		}
	}
}
