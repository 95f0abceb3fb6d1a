package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/store"
)

// Options configures the signing keys. Zero fields take their defaults.
type Options struct {
	// RotateEvery is how long a key stays active: 30 days by default.
	RotateEvery time.Duration
	// RetainRetired is how long a retired key stays in the JWKS, so that
	// tokens it signed can still be verified: 7 days by default. Keep it
	// above the longest ID and access token lifetime.
	RetainRetired time.Duration
	// Algs are the signing algorithms, each with its own keys: RS256
	// and/or ES256; ["RS256"] by default. The first is the default one.
	Algs []string
	// RSABits is the size of new RSA keys: 2048 by default, at least 2048.
	RSABits int
	// RefreshEvery is how often Run reloads the keys and rotates when due:
	// one minute by default.
	RefreshEvery time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.RotateEvery <= 0 {
		o.RotateEvery = 30 * 24 * time.Hour
	}
	if o.RetainRetired <= 0 {
		o.RetainRetired = 7 * 24 * time.Hour
	}
	if len(o.Algs) == 0 {
		o.Algs = []string{string(jose.RS256)}
	}
	o.Algs = slices.Clone(o.Algs)
	if o.RSABits == 0 {
		o.RSABits = 2048
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	for i, alg := range o.Algs {
		if !supportedAlg(alg) {
			errs = append(errs, fmt.Errorf("signing algorithm %q: want RS256 or ES256", alg))
		}
		if slices.Index(o.Algs, alg) != i {
			errs = append(errs, fmt.Errorf("signing algorithm %q given twice", alg))
		}
	}
	if o.RSABits < 2048 {
		errs = append(errs, fmt.Errorf("RSA key size %d: want at least 2048", o.RSABits))
	}
	return errors.Join(errs...)
}

func supportedAlg(alg string) bool {
	return alg == string(jose.RS256) || alg == string(jose.ES256)
}

// keyStore is the part of store.Tx that Manager uses.
type keyStore interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	UpdateSigningKey(ctx context.Context, k store.SigningKey) error
	DeleteSigningKey(ctx context.Context, id string) error
}

var _ keyStore = store.Tx(nil)

// keysLocker is offered by the stores whose transactions do not already
// run one after the other (PostgreSQL): LockSigningKeys holds a lock until
// the transaction ends.
type keysLocker interface {
	LockSigningKeys(ctx context.Context) error
}

// Manager manages the token-signing keys: one life cycle next → active →
// retired per algorithm, shared by every node through the store, private
// keys sealed there.
//
// A next key is published in the JWKS from its creation, so relying
// parties know it before it signs anything; a retired key stays published
// for RetainRetired, then is deleted. Nodes that change the keys at the
// same moment (first start, a rotation falling due) take turns: an
// advisory lock on PostgreSQL (LockSigningKeys), the write lock on SQLite;
// the later one finds the keys changed, lists them again, and has nothing
// left to do. Every node reloads the keys each RefreshEvery (a minute), so
// a rotation made by one is used by all within a minute; since the key it
// activates was published as next for a whole rotation period, relying
// parties know it before it signs anything. Should an outcome still hold
// two active keys of one algorithm, every node signs with the most
// recently activated one, and the next rotation retires both.
//
// The accessors (SigningKey, PublicKeys, JWKS, Version, Algorithms) read an
// immutable snapshot through an atomic pointer: they never lock, decrypt
// or allocate. Load, Rotate and RotateIfDue replace the snapshot.
type Manager struct {
	st     store.Store
	sealer *seal.Sealer
	opts   Options

	mu  sync.Mutex // held by Load, Rotate and RotateIfDue: one list-and-replace at a time
	cur atomic.Pointer[keySet]
}

// New returns a key manager; call Load before serving.
func New(st store.Store, sealer *seal.Sealer, opts Options) *Manager {
	k := &Manager{st: st, sealer: sealer, opts: opts.withDefaults()}
	k.cur.Store(emptyKeySet)
	return k
}

// keySet is an immutable snapshot of the published and signing keys.
type keySet struct {
	version uint64
	meta    []keyMeta              // what the snapshot was built from, to detect changes
	byID    map[string]*loadedKey  // every published key, private key opened
	signing map[string]*signingKey // by alg: the active key that signs
	public  []op.Key
	jwks    []byte
	algs    []jose.SignatureAlgorithm
}

var emptyKeySet = &keySet{jwks: []byte(`{"keys":[]}`)}

// keyMeta is what matters of a stored key for the snapshot.
type keyMeta struct {
	id, alg            string
	state              store.KeyState
	created, activated int64 // Unix µs
	retired            int64
}

func metaOf(r store.SigningKey) keyMeta {
	return keyMeta{id: r.ID, alg: r.Alg, state: r.State, created: micros(r.CreatedAt),
		activated: micros(r.ActivatedAt), retired: micros(r.RetiredAt)}
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// loadedKey is an opened private key.
type loadedKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// signingKey implements op.SigningKey.
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey implements op.Key.
type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

// ErrNoSigningKey is returned by SigningKey when there is no active key for
// the algorithm (not configured, or Load not called).
var ErrNoSigningKey = errors.New("keys: no signing key")

// SigningKey returns the active key of alg ("" for the first configured
// algorithm).
func (k *Manager) SigningKey(alg string) (op.SigningKey, error) {
	if alg == "" {
		alg = k.opts.Algs[0]
	}
	sk, ok := k.cur.Load().signing[alg]
	if !ok {
		return nil, fmt.Errorf("%w for %s", ErrNoSigningKey, alg)
	}
	return sk, nil
}

// PublicKeys returns the published keys: active, next, and retired within
// RetainRetired. The slice is shared: do not modify it.
func (k *Manager) PublicKeys() []op.Key { return k.cur.Load().public }

// JWKS returns the JSON Web Key Set of PublicKeys, encoded once per change.
// The bytes are shared: do not modify them.
func (k *Manager) JWKS() []byte { return k.cur.Load().jwks }

// Version changes whenever the published or signing keys change (0 before
// Load), for ETags and caches.
func (k *Manager) Version() uint64 { return k.cur.Load().version }

// Algorithms returns the configured algorithms that have an active key, in
// configuration order. The slice is shared: do not modify it.
func (k *Manager) Algorithms() []jose.SignatureAlgorithm { return k.cur.Load().algs }

// Load reads the keys from the store and opens the new ones. When a
// configured algorithm has no active or no next key, it creates them (the
// oldest next key, if any, becomes active), checking in a transaction that
// no other node did it meanwhile.
func (k *Manager) Load(ctx context.Context) error {
	return k.change(ctx, func(recs []store.SigningKey, now time.Time) (*keyPlan, error) {
		p := &keyPlan{}
		for _, alg := range k.opts.Algs {
			if err := k.ensure(p, alg, byAlg(recs, alg), now); err != nil {
				return nil, err
			}
		}
		return p, nil
	})
}

// Rotate retires the active key of every configured algorithm, promotes
// the next one (created if missing) and creates a new next one. This is
// what `sesame keys rotate` does.
func (k *Manager) Rotate(ctx context.Context) error {
	return k.change(ctx, func(recs []store.SigningKey, now time.Time) (*keyPlan, error) {
		p := &keyPlan{}
		for _, alg := range k.opts.Algs {
			if err := k.rotate(p, alg, byAlg(recs, alg), now); err != nil {
				return nil, err
			}
		}
		return p, nil
	})
}

// RotateIfDue reloads the keys and does the maintenance that is due:
// rotating an algorithm whose active key is older than RotateEvery,
// creating missing active or next keys, retiring the keys of algorithms no
// longer configured, deleting keys retired more than RetainRetired ago.
// When nothing is due it costs one query and opens only the keys it has
// not seen before.
func (k *Manager) RotateIfDue(ctx context.Context) error {
	return k.change(ctx, k.maintain)
}

// Run calls RotateIfDue every RefreshEvery until ctx ends, logging errors;
// other nodes' rotations are picked up the same way.
func (k *Manager) Run(ctx context.Context) {
	t := time.NewTicker(k.opts.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.RotateIfDue(ctx); err != nil && ctx.Err() == nil {
				k.opts.Logger.Error("signing keys maintenance failed", "err", err)
			}
		}
	}
}

// errKeysChanged aborts a transaction whose plan was made from a listing
// that is no longer current.
var errKeysChanged = errors.New("signing keys changed meanwhile")

// change lists the keys, lets decide plan the writes (generating and
// sealing new keys outside any transaction: RSA key generation takes a
// while and SQLite holds its write lock for the whole transaction), then
// applies the plan in a transaction that first checks the keys are as they
// were, starting over if they are not. Last, it refreshes the snapshot.
func (k *Manager) change(ctx context.Context, decide func(recs []store.SigningKey, now time.Time) (*keyPlan, error)) error {
	if err := k.opts.validate(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for range 3 {
		recs, err := k.st.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		plan, err := decide(recs, k.now())
		if err != nil {
			return err
		}
		if plan.empty() {
			return k.refresh(recs)
		}
		err = k.st.InTx(ctx, func(tx store.Tx) error {
			// On PostgreSQL, the nodes take turns (an advisory lock); SQLite
			// transactions already do (BEGIN IMMEDIATE).
			if l, ok := tx.(keysLocker); ok {
				if err := l.LockSigningKeys(ctx); err != nil {
					return err
				}
			}
			cur, err := tx.ListSigningKeys(ctx)
			if err != nil {
				return err
			}
			if !slices.EqualFunc(cur, recs, func(a, b store.SigningKey) bool { return metaOf(a) == metaOf(b) }) {
				return errKeysChanged
			}
			return plan.apply(ctx, tx)
		})
		if errors.Is(err, errKeysChanged) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update signing keys: %w", err)
		}
		plan.log(k.opts.Logger)
		if recs, err = k.st.ListSigningKeys(ctx); err != nil {
			return err
		}
		return k.refresh(recs)
	}
	return fmt.Errorf("update signing keys: %w three times in a row", errKeysChanged)
}

func (k *Manager) now() time.Time { return k.opts.Now().UTC().Truncate(time.Microsecond) }

// keyPlan is a set of writes decided outside a transaction.
type keyPlan struct {
	creates, updates, deletes []store.SigningKey
}

func (p *keyPlan) empty() bool {
	return len(p.creates) == 0 && len(p.updates) == 0 && len(p.deletes) == 0
}

func (p *keyPlan) apply(ctx context.Context, tx keyStore) error {
	for _, r := range p.updates {
		if err := tx.UpdateSigningKey(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range p.creates {
		if err := tx.CreateSigningKey(ctx, r); err != nil {
			return err // ErrConflict on a kid collision (2⁻⁶⁴): the next tick tries again
		}
	}
	for _, r := range p.deletes {
		if err := tx.DeleteSigningKey(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

func (p *keyPlan) log(l *slog.Logger) {
	for _, r := range p.updates {
		if r.State == store.KeyActive {
			l.Info("signing key activated", "kid", r.ID, "alg", r.Alg)
		} else {
			l.Info("signing key retired", "kid", r.ID, "alg", r.Alg)
		}
	}
	for _, r := range p.creates {
		l.Info("signing key created", "kid", r.ID, "alg", r.Alg, "state", string(r.State))
	}
	for _, r := range p.deletes {
		l.Info("signing key deleted", "kid", r.ID, "alg", r.Alg)
	}
}

// byAlg returns the active and next keys of alg, each oldest first (actives
// by activation).
func byAlg(recs []store.SigningKey, alg string) (g algKeys) {
	for _, r := range recs {
		if r.Alg != alg {
			continue
		}
		switch r.State {
		case store.KeyActive:
			g.active = append(g.active, r)
		case store.KeyNext:
			g.next = append(g.next, r)
		}
	}
	slices.SortStableFunc(g.active, func(a, b store.SigningKey) int {
		return cmp.Or(a.ActivatedAt.Compare(b.ActivatedAt), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	slices.SortStableFunc(g.next, func(a, b store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return g
}

type algKeys struct{ active, next []store.SigningKey }

// maintain plans what RotateIfDue does.
func (k *Manager) maintain(recs []store.SigningKey, now time.Time) (*keyPlan, error) {
	p := &keyPlan{}
	for _, alg := range k.opts.Algs {
		g := byAlg(recs, alg)
		var err error
		// The newest active key is the one that signs.
		if n := len(g.active); n > 0 && now.Sub(g.active[n-1].ActivatedAt) >= k.opts.RotateEvery {
			err = k.rotate(p, alg, g, now)
		} else {
			err = k.ensure(p, alg, g, now)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, r := range recs {
		switch {
		case r.State == store.KeyRetired && now.Sub(r.RetiredAt) >= k.opts.RetainRetired:
			p.deletes = append(p.deletes, r)
		case r.State != store.KeyRetired && !slices.Contains(k.opts.Algs, r.Alg):
			retire(p, r, now)
		}
	}
	return p, nil
}

// ensure plans for alg to have an active key (the oldest next key, or a
// new one) and a next key.
func (k *Manager) ensure(p *keyPlan, alg string, g algKeys, now time.Time) error {
	if len(g.active) == 0 {
		if len(g.next) > 0 {
			r := g.next[0]
			r.State, r.ActivatedAt = store.KeyActive, now
			p.updates = append(p.updates, r)
			g.next = g.next[1:]
		} else if err := k.create(p, alg, store.KeyActive, now); err != nil {
			return err
		}
	}
	if len(g.next) == 0 {
		return k.create(p, alg, store.KeyNext, now)
	}
	return nil
}

// rotate plans to retire every active key of alg, promote the oldest next
// key (the one published longest) or a new one, and create a next key
// unless one is left.
func (k *Manager) rotate(p *keyPlan, alg string, g algKeys, now time.Time) error {
	for _, r := range g.active {
		retire(p, r, now)
	}
	g.active = nil
	return k.ensure(p, alg, g, now)
}

func retire(p *keyPlan, r store.SigningKey, now time.Time) {
	r.State, r.RetiredAt = store.KeyRetired, now
	p.updates = append(p.updates, r)
}

// create plans a new key of alg in state: generated now, sealed with its
// kid as additional data.
func (k *Manager) create(p *keyPlan, alg string, state store.KeyState, now time.Time) error {
	priv, err := generateKey(alg, k.opts.RSABits)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode %s key: %w", alg, err)
	}
	defer clear(der)
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never returns an error
	r := store.SigningKey{ID: hex.EncodeToString(id[:]), Alg: alg, State: state, CreatedAt: now}
	r.Sealed = k.sealer.Seal(der, []byte(r.ID))
	if state == store.KeyActive {
		r.ActivatedAt = now
	}
	p.creates = append(p.creates, r)
	return nil
}

func generateKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case string(jose.RS256):
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case string(jose.ES256):
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("signing algorithm %q not supported", alg)
}

// open unseals and parses the private key of r and checks it suits its
// algorithm.
func (k *Manager) open(r store.SigningKey) (crypto.Signer, error) {
	der, err := k.sealer.Open(r.Sealed, []byte(r.ID))
	if err != nil {
		return nil, err
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch key := parsed.(type) {
	case *rsa.PrivateKey:
		if r.Alg == string(jose.RS256) && key.N.BitLen() >= 2048 {
			return key, nil
		}
	case *ecdsa.PrivateKey:
		if r.Alg == string(jose.ES256) && key.Curve == elliptic.P256() {
			return key, nil
		}
	}
	return nil, fmt.Errorf("private key of type %T does not suit %s", parsed, r.Alg)
}

// published reports whether r belongs in the JWKS at now.
func (k *Manager) published(r store.SigningKey, now time.Time) bool {
	if !supportedAlg(r.Alg) {
		return false
	}
	switch r.State {
	case store.KeyActive, store.KeyNext:
		return true
	case store.KeyRetired:
		return now.Sub(r.RetiredAt) < k.opts.RetainRetired
	}
	return false
}

// refresh replaces the snapshot if recs differ from what it was built
// from, reusing the keys already opened. k.mu must be held, so that a
// stale listing never replaces a newer one.
func (k *Manager) refresh(recs []store.SigningKey) error {
	prev := k.cur.Load()
	now := k.now()

	pub := make([]store.SigningKey, 0, len(recs))
	for _, r := range recs {
		if k.published(r, now) {
			pub = append(pub, r)
		}
	}
	// Published order: by algorithm as configured, then active, next,
	// retired, newest first.
	rank := map[store.KeyState]int{store.KeyActive: 0, store.KeyNext: 1, store.KeyRetired: 2}
	algRank := func(alg string) int {
		if i := slices.Index(k.opts.Algs, alg); i >= 0 {
			return i
		}
		return len(k.opts.Algs)
	}
	slices.SortFunc(pub, func(a, b store.SigningKey) int {
		return cmp.Or(
			cmp.Compare(algRank(a.Alg), algRank(b.Alg)),
			cmp.Compare(a.Alg, b.Alg),
			cmp.Compare(rank[a.State], rank[b.State]),
			b.ActivatedAt.Compare(a.ActivatedAt),
			b.CreatedAt.Compare(a.CreatedAt),
			cmp.Compare(a.ID, b.ID),
		)
	})
	meta := make([]keyMeta, len(pub))
	for i, r := range pub {
		meta[i] = metaOf(r)
	}
	if slices.Equal(meta, prev.meta) {
		return nil
	}

	next := &keySet{
		version: prev.version + 1,
		meta:    meta,
		byID:    make(map[string]*loadedKey, len(pub)),
		signing: make(map[string]*signingKey, len(k.opts.Algs)),
	}
	jwks := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(pub))}
	for _, r := range pub {
		lk, ok := prev.byID[r.ID]
		if !ok || string(lk.alg) != r.Alg {
			priv, err := k.open(r)
			if err != nil {
				if r.State == store.KeyRetired {
					// Only tokens already issued need it: lose them rather
					// than stop signing.
					k.opts.Logger.Error("retired signing key unusable, not published", "kid", r.ID, "alg", r.Alg, "err", err)
					continue
				}
				return fmt.Errorf("signing key %s (%s): %w", r.ID, r.Alg, err)
			}
			lk = &loadedKey{id: r.ID, alg: jose.SignatureAlgorithm(r.Alg), priv: priv}
		}
		next.byID[r.ID] = lk
		pubKey := lk.priv.Public()
		next.public = append(next.public, &publicKey{id: lk.id, alg: lk.alg, key: pubKey})
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: pubKey, KeyID: lk.id, Algorithm: r.Alg, Use: "sig"})
		// pub is sorted newest activated first within an algorithm.
		if _, have := next.signing[r.Alg]; !have && r.State == store.KeyActive && slices.Contains(k.opts.Algs, r.Alg) {
			next.signing[r.Alg] = &signingKey{id: lk.id, alg: lk.alg, key: lk.priv}
		}
	}
	for _, alg := range k.opts.Algs {
		if _, ok := next.signing[alg]; ok {
			next.algs = append(next.algs, jose.SignatureAlgorithm(alg))
		}
	}
	next.public = slices.Clip(next.public)
	b, err := json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	next.jwks = b
	k.cur.Store(next)
	return nil
}
