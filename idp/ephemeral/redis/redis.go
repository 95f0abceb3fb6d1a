package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sesame-idp/sesame/idp/ephemeral"
	"github.com/sesame-idp/sesame/idp/seal"
)

var _ ephemeral.Store = (*Store)(nil)

// Store is an ephemeral.Store on Redis, safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	prefix string
	sealer *seal.Sealer
}

// Open connects to the Redis named by rawURL and checks it answers PING.
// Keys are prefixed with prefix (for example "sesame:"); values are sealed
// with sealer. The URL forms are those of go-redis:
//
//	redis://[user:password@]host:port[/db][?options]     one server
//	rediss://…                                            the same over TLS
//	unix://[user:password@]/path/redis.sock[?db=N]        a Unix socket
//	redis://host:port?addr=host2:port&addr=…              Cluster (seed nodes)
//	redis://[user:password@]sentinel:port[/db]?master_name=NAME&addr=sentinel2:port&password=P
//	                                                      Sentinel
//
// A URL with master_name is Sentinel: its user and password authenticate to
// the sentinels, the username and password parameters to Redis. Otherwise a
// URL with an addr parameter is Cluster (for a single seed node, repeat it:
// redis://h:6379?addr=h:6379). Other options (dial_timeout, pool_size, …)
// are go-redis's; an unknown one is an error.
func Open(ctx context.Context, rawURL, prefix string, sealer *seal.Sealer) (*Store, error) {
	return OpenWith(ctx, rawURL, prefix, sealer, Options{})
}

// DefaultTimeout bounds dialing, each read and write, and the wait for a
// pooled connection (Options.Timeout).
const DefaultTimeout = 2 * time.Second

// Options tune OpenWith.
type Options struct {
	// Timeout is the dial, read, write and pool timeout of every
	// connection, unless the URL sets its own (dial_timeout,
	// read_timeout, write_timeout, pool_timeout): a Redis that does not
	// answer fails the command with ephemeral.ErrUnavailable instead of
	// holding the request. Zero is DefaultTimeout.
	Timeout time.Duration
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, rawURL, prefix string, sealer *seal.Sealer, o Options) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("ephemeral/redis: nil sealer")
	}
	opts, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opts.setTimeouts(rawURL, cmp.Or(o.Timeout, DefaultTimeout))
	s := NewFromClient(opts.newClient(), prefix, sealer)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("ephemeral/redis: connect: %w", err)
	}
	return s, nil
}

// NewFromClient returns a Store using client, which it then owns: Close
// closes it.
func NewFromClient(client goredis.UniversalClient, prefix string, sealer *seal.Sealer) *Store {
	if client == nil || sealer == nil {
		panic("ephemeral/redis: NewFromClient needs a client and a sealer")
	}
	return &Store{client: client, prefix: prefix, sealer: sealer}
}

// clientOptions holds exactly one of its fields.
type clientOptions struct {
	simple   *goredis.Options
	cluster  *goredis.ClusterOptions
	failover *goredis.FailoverOptions
}

func (o clientOptions) newClient() goredis.UniversalClient {
	switch {
	case o.cluster != nil:
		return goredis.NewClusterClient(o.cluster)
	case o.failover != nil:
		return goredis.NewFailoverClient(o.failover)
	default:
		return goredis.NewClient(o.simple)
	}
}

// setTimeouts gives d to each timeout the URL does not set.
func (o clientOptions) setTimeouts(rawURL string, d time.Duration) {
	q := url.Values{}
	if u, err := url.Parse(rawURL); err == nil {
		q = u.Query()
	}
	set := func(name string, field *time.Duration) {
		if !q.Has(name) {
			*field = d
		}
	}
	switch {
	case o.cluster != nil:
		set("dial_timeout", &o.cluster.DialTimeout)
		set("read_timeout", &o.cluster.ReadTimeout)
		set("write_timeout", &o.cluster.WriteTimeout)
		set("pool_timeout", &o.cluster.PoolTimeout)
	case o.failover != nil:
		set("dial_timeout", &o.failover.DialTimeout)
		set("read_timeout", &o.failover.ReadTimeout)
		set("write_timeout", &o.failover.WriteTimeout)
		set("pool_timeout", &o.failover.PoolTimeout)
	case o.simple != nil:
		set("dial_timeout", &o.simple.DialTimeout)
		set("read_timeout", &o.simple.ReadTimeout)
		set("write_timeout", &o.simple.WriteTimeout)
		set("pool_timeout", &o.simple.PoolTimeout)
	}
}

// parseURL picks the go-redis parser for rawURL (see Open). Its errors
// never quote the URL, which may hold a password.
func parseURL(rawURL string) (clientOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// A *url.Error quotes the whole URL; its Err does not.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return clientOptions{}, fmt.Errorf("ephemeral/redis: invalid URL: %w", err)
	}
	q := u.Query()
	var o clientOptions
	switch {
	case q.Has("master_name"):
		o.failover, err = goredis.ParseFailoverURL(rawURL)
	case q.Has("addr"):
		o.cluster, err = goredis.ParseClusterURL(rawURL)
	default:
		o.simple, err = goredis.ParseURL(rawURL)
	}
	if err != nil {
		return clientOptions{}, fmt.Errorf("ephemeral/redis: invalid URL: %w", err)
	}
	return o, nil
}

// Put sets key to value for ttl: SET PX.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return err
	}
	k := s.prefix + key
	if err := s.client.Set(ctx, k, s.seal(k, value), ttl).Err(); err != nil {
		return fail("put", err)
	}
	return nil
}

// PutNew sets key to value for ttl unless it is set: SET NX PX.
func (s *Store) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return err
	}
	k := s.prefix + key
	set, err := s.client.SetNX(ctx, k, s.seal(k, value), ttl).Result()
	if err != nil {
		return fail("put new", err)
	}
	if !set {
		return ephemeral.ErrExists
	}
	return nil
}

// Get returns the value at key: GET.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	k := s.prefix + key
	sealed, err := s.client.Get(ctx, k).Bytes()
	if err != nil {
		return nil, notFound("get", err)
	}
	return s.open(k, sealed)
}

// GetMany gets keys with one pipeline of GETs (one round trip to each
// node; keys may be in different Cluster slots).
func (s *Store) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	cmds := make([]*goredis.StringCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, s.prefix+k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fail("get many", err)
	}
	out := make([][]byte, len(keys))
	for i, c := range cmds {
		v, err := s.reply("get many", s.prefix+keys[i], c)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// reply opens the value a pipelined GET of fullKey returned: nil when the
// key is not set, empty (not nil) when it is set and empty.
func (s *Store) reply(op, fullKey string, c *goredis.StringCmd) ([]byte, error) {
	sealed, err := c.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(op, err)
	}
	v, err := s.open(fullKey, sealed)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{} // set, and empty
	}
	return v, nil
}

// PutGet is a pipeline of a SET and a GET: one round trip (to each node
// when the keys are in different Cluster slots).
func (s *Store) PutGet(ctx context.Context, key string, value []byte, ttl time.Duration, other string) ([]byte, error) {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return nil, err
	}
	k, o := s.prefix+key, s.prefix+other
	var get *goredis.StringCmd
	cmds, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, k, s.seal(k, value), ttl)
		get = p.Get(ctx, o)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fail("put get", err)
	}
	if err := cmds[0].Err(); err != nil {
		return nil, fail("put get", err)
	}
	return s.reply("put get", o, get)
}

// Delete removes key: DEL.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return fail("delete", err)
	}
	return nil
}

// Take returns the value at key and removes it: GETDEL.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	k := s.prefix + key
	sealed, err := s.client.GetDel(ctx, k).Bytes()
	if err != nil {
		return nil, notFound("take", err)
	}
	return s.open(k, sealed)
}

// incrScript increments KEYS[1] and gives it a TTL of ARGV[1] ms when it is
// new. It also repairs a counter found without a TTL (never written by this
// script, but then it would never expire). A script runs atomically, so
// there is no moment where a counter exists without its TTL.
var incrScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// Incr adds one to the counter at key; a new counter lives for window.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	window, err := checkTTL(window)
	if err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.client, []string{s.prefix + key}, window.Milliseconds()).Int64()
	if err != nil {
		return 0, fail("incr", err)
	}
	return n, nil
}

// casScript replaces KEYS[1] only if it still holds ARGV[1] ("" for
// absent): ARGV[2] is the new sealed value ("" deletes), ARGV[3] its TTL in
// ms. It returns 1 when it wrote, 0 when the value had changed.
var casScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
	redis.call('DEL', KEYS[1])
else
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// maxUpdateTries bounds the compare-and-set retries of one Update under
// contention.
const maxUpdateTries = 200

// Update reads key, applies fn and writes the result with a compare-and-set
// script on the sealed bytes (each sealing has a fresh nonce, so equal bytes
// mean an unchanged value); when another writer came first it reads again.
func (s *Store) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return err
	}
	k := s.prefix + key
	for try := 0; try < maxUpdateTries; try++ {
		sealed, err := s.client.Get(ctx, k).Bytes()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return fail("update", err)
		}
		var old []byte
		if len(sealed) > 0 {
			if old, err = s.open(k, sealed); err != nil {
				return err
			}
		}
		v, err := fn(old)
		if err != nil {
			return err
		}
		if v == nil && len(sealed) == 0 {
			return nil // nothing there, nothing to write
		}
		var next []byte
		if v != nil {
			next = s.seal(k, v)
		}
		ok, err := casScript.Run(ctx, s.client, []string{k}, sealed, next, ttl.Milliseconds()).Int()
		if err != nil {
			return fail("update", err)
		}
		if ok == 1 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fail("update", err)
		}
	}
	return fmt.Errorf("ephemeral/redis: update of a contended key: %d tries: %w", maxUpdateTries, ephemeral.ErrUnavailable)
}

// Ping checks Redis answers: PING.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Close closes the client.
func (s *Store) Close() error {
	return s.client.Close()
}

func (s *Store) seal(fullKey string, value []byte) []byte {
	return s.sealer.Seal(value, []byte(fullKey))
}

func (s *Store) open(fullKey string, sealed []byte) ([]byte, error) {
	v, err := s.sealer.Open(sealed, []byte(fullKey))
	if err != nil {
		// Tampered with, moved from another key, or sealed with a key
		// no longer configured: an error, not a silent miss.
		return nil, fmt.Errorf("ephemeral/redis: %w", err)
	}
	return v, nil
}

// checkTTL refuses a TTL that would store a value for ever (go-redis reads 0
// as no expiry) and rounds one below Redis's millisecond up to 1 ms.
func checkTTL(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, errors.New("ephemeral/redis: ttl must be positive")
	}
	return max(ttl, time.Millisecond), nil
}

func notFound(op string, err error) error {
	if errors.Is(err, goredis.Nil) {
		return ephemeral.ErrNotFound
	}
	return fail(op, err)
}

// fail wraps an error of Redis with ephemeral.ErrUnavailable, unless it is
// a reply that says the command itself is wrong (WRONGTYPE, a script
// error…: a bug). Unreachable, timed out, closed, loading its data set,
// read-only replica, cluster down: unavailable.
func fail(op string, err error) error {
	var reply goredis.Error
	if errors.As(err, &reply) && !transientReply(reply.Error()) {
		return fmt.Errorf("ephemeral/redis: %s: %w", op, err)
	}
	return fmt.Errorf("ephemeral/redis: %s: %w: %w", op, ephemeral.ErrUnavailable, err)
}

// transientReply tells the error replies of a Redis that cannot serve now.
func transientReply(msg string) bool {
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "ERR max number of clients"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// PoolStats returns the connection pool's statistics (summed over the
// nodes of a Cluster), for the metrics.
func (s *Store) PoolStats() *goredis.PoolStats { return s.client.PoolStats() }
