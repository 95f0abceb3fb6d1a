package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a Sésame deployment.
type Config struct {
	// Issuer is the OIDC issuer URL; one for the whole deployment.
	Issuer string `yaml:"issuer"`
	// DataDir holds the SQLite database and generated keys.
	DataDir        string   `yaml:"data_dir"`
	TrustedProxies []string `yaml:"trusted_proxies"`

	HTTP      HTTP      `yaml:"http"`
	Database  Database  `yaml:"database"`
	Redis     Redis     `yaml:"redis"`
	Seal      Seal      `yaml:"seal"`
	SMTP      SMTP      `yaml:"smtp"`
	SMS       SMS       `yaml:"sms"`
	Log       Log       `yaml:"log"`
	Demo      Demo      `yaml:"demo"`
	Session   Session   `yaml:"session"`
	Ephemeral Ephemeral `yaml:"ephemeral"`
	Regulate  Regulate  `yaml:"regulate"`
	Metrics   Metrics   `yaml:"metrics"`

	Provisioning Provisioning `yaml:"provisioning"`
}

// Metrics is where Prometheus scrapes /metrics.
type Metrics struct {
	// Addr, when set, serves /metrics on this listener only (not on
	// http.addr), e.g. a port the load balancer does not expose.
	Addr string `yaml:"addr"`
}

// Session is the browser session.
type Session struct {
	// FactorWindow is how recent a second factor must be for a sensitive
	// action (adding or removing a method, new recovery codes).
	FactorWindow time.Duration `yaml:"factor_window"`
	// Lifetime is the absolute lifetime of a session from its sign-in (a
	// clinical shift); step-ups keep it.
	Lifetime time.Duration `yaml:"lifetime"`
}

// Ephemeral bounds the in-process short-lived store (when Redis.URL is
// empty).
type Ephemeral struct {
	// MaxEntries caps its entries: past it, the oldest authorization
	// requests are evicted (never codes, markers, counters or sessions).
	MaxEntries int `yaml:"max_entries"`
}

// HTTP is the listener.
type HTTP struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
}

// Database selects the durable store: PostgreSQL when URL is set, SQLite
// under DataDir otherwise.
type Database struct {
	URL         string `yaml:"url" secret:"true"`
	AutoMigrate bool   `yaml:"auto_migrate"`
	// Timeout bounds connecting to PostgreSQL and each statement (with
	// waiting for a connection of the pool): past it the request fails
	// fast with a 503 instead of hanging.
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL is how long the token, introspection and userinfo
	// endpoints reuse a client or a user read from the database (0: read
	// them at every request). A client or account changed on another node
	// (secret rotated, client removed, account disabled) is seen there
	// within it; on the node that made the change, at once.
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// Redis selects the short-lived store: Redis when URL is set, in-process
// otherwise.
type Redis struct {
	// URL: empty keeps short-lived state in the process (one node);
	// redis://[user:password@]host:6379/0 (rediss:// for TLS) one server;
	// redis://[user:password@]sentinel1:26379/0?master_name=NAME&addr=sentinel2:26379
	// Sentinel (the URL's credentials for the sentinels, the username and
	// password parameters for Redis); redis://node1:6379?addr=node2:6379&addr=node3:6379
	// Cluster (seed nodes). See idp/ephemeral/redis.Open.
	URL    string `yaml:"url" secret:"true"`
	Prefix string `yaml:"prefix"`
	// Timeout bounds dialing Redis, each command's read and write, and
	// waiting for a connection of the pool, unless the URL sets them
	// (dial_timeout, read_timeout, write_timeout, pool_timeout).
	Timeout time.Duration `yaml:"timeout"`
}

// Seal holds the key that seals TOTP secrets, private keys and ephemeral
// values, as "kid:base64(32 bytes)". Empty: a key file in DataDir, created
// on first start.
type Seal struct {
	Key string `yaml:"key" secret:"true"`
}

// SMTP is the mail relay. Empty Host: emails are written to the log.
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// TLS: "starttls" (default), "implicit", or "none" (loopback relays only).
	TLS  string `yaml:"tls"`
	From string `yaml:"from"`
}

// SMS is the text-message gateway. Empty Provider: messages are written to
// the log.
type SMS struct {
	Provider   string `yaml:"provider"` // twilio | webhook
	URL        string `yaml:"url"`
	AccountSID string `yaml:"account_sid"`
	AuthToken  string `yaml:"auth_token" secret:"true"`
	From       string `yaml:"from"`
	// MaxPerHour caps the validation texts the whole deployment sends in
	// an hour (SMS-pumping guard; each user and each number have their own
	// limits besides).
	MaxPerHour int `yaml:"max_per_hour"`
}

// Log configures the process logs.
type Log struct {
	Format string `yaml:"format"` // text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// Demo is the demo relying party served at /demo, with its public client.
type Demo struct {
	// Enabled: nil (the default, "auto") turns the demo on only when the
	// issuer is a loopback URL; see Config.DemoEnabled.
	Enabled *bool `yaml:"enabled"`
}

// DemoEnabled reports whether the demo relying party is served and its
// client registered: demo.enabled when set, otherwise only for a loopback
// issuer (http://localhost…, 127.0.0.1, [::1]), never on a deployment
// reachable by others.
func (c Config) DemoEnabled() bool {
	if c.Demo.Enabled != nil {
		return *c.Demo.Enabled
	}
	u, err := url.Parse(c.Issuer)
	return err == nil && isLoopbackHost(u.Hostname())
}

// Regulate is the throttle (idp/regulate): failures per account × network
// and per account × device with growing waits, a cap on consecutive
// failures from unknown devices, a cap on one network's failures, and a
// limit on the requests from one network that create stored state.
type Regulate struct {
	FreeFailures    int           `yaml:"free_failures"`    // failures of one account from one network or device before waits start
	BaseDelay       time.Duration `yaml:"base_delay"`       // the first wait, doubled at each further failure…
	MaxDelay        time.Duration `yaml:"max_delay"`        // …up to this
	Window          time.Duration `yaml:"window"`           // a count is forgotten this long after its last failure
	MaxUnknown      int           `yaml:"max_unknown"`      // consecutive failures of one account from unknown devices
	UnknownWindow   time.Duration `yaml:"unknown_window"`   // how long unknown devices are refused after them
	NetworkFailures int           `yaml:"network_failures"` // failures from one network, all accounts, per network_window
	NetworkWindow   time.Duration `yaml:"network_window"`   //
	IPv4Prefix      int           `yaml:"ipv4_prefix"`      // the network of an IPv4 address
	IPv6Prefix      int           `yaml:"ipv6_prefix"`      // the network of an IPv6 address
	DeviceTTL       time.Duration `yaml:"device_ttl"`       // a device stays known this long after its last success
	Requests        int           `yaml:"requests"`         // authorization requests from one network per request_window
	RequestWindow   time.Duration `yaml:"request_window"`   //
}

// Default returns a configuration that runs with no file at all: SQLite
// under ./data, in-process ephemeral state, loopback only.
func Default() Config {
	return Config{
		Issuer:  "http://localhost:8080",
		DataDir: "./data",
		HTTP: HTTP{
			Addr:              "localhost:8080",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   15 * time.Second,
		},
		Database:  Database{AutoMigrate: true, Timeout: 5 * time.Second, CacheTTL: time.Second},
		Redis:     Redis{Prefix: "sesame:", Timeout: 2 * time.Second},
		SMTP:      SMTP{Port: 587, TLS: "starttls", From: "Sésame <no-reply@localhost>"},
		SMS:       SMS{MaxPerHour: 1000},
		Log:       Log{Format: "text", Level: "info"},
		Session:   Session{FactorWindow: 10 * time.Minute, Lifetime: 12 * time.Hour},
		Ephemeral: Ephemeral{MaxEntries: 200_000},
		Regulate: Regulate{
			FreeFailures: 5, BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute, Window: time.Hour,
			MaxUnknown: 100, UnknownWindow: 24 * time.Hour,
			NetworkFailures: 500, NetworkWindow: 15 * time.Minute,
			IPv4Prefix: 24, IPv6Prefix: 64,
			DeviceTTL: 90 * 24 * time.Hour,
			Requests:  3000, RequestWindow: 5 * time.Minute,
		},
		Provisioning: DefaultProvisioning(),
	}
}

// Load builds the configuration: Default, then the YAML file (if file is
// not empty), then SESAME_* variables of environ, then *_FILE secrets. It
// does not validate; call Validate.
func Load(file string, environ []string) (Config, error) {
	cfg := Default()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config file %s: %w", file, yamlMessage(err))
		}
	}
	return cfg, applyEnv(&cfg, environ)
}

func yamlMessage(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

// field is one configuration key, found by walking Config.
type field struct {
	key    string // dotted YAML key, e.g. "database.url"
	env    string // SESAME_DATABASE_URL
	secret bool
	value  reflect.Value
}

func fields(cfg *Config) []field {
	var out []field
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			p := append(append([]string{}, path...), name)
			fv := v.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(fv, p)
				continue
			}
			out = append(out, field{
				key:    strings.Join(p, "."),
				env:    "SESAME_" + strings.ToUpper(strings.Join(p, "_")),
				secret: f.Tag.Get("secret") == "true",
				value:  fv,
			})
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil)
	return out
}

// Keys lists every configuration key with its environment variable and its
// default value, for documentation and `sesame config`.
func Keys() [][3]string {
	cfg := Default()
	var out [][3]string
	for _, f := range fields(&cfg) {
		out = append(out, [3]string{f.key, f.env, format(f.value)})
	}
	return out
}

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case *bool:
		if x == nil {
			return "auto"
		}
		return strconv.FormatBool(*x)
	default:
		return fmt.Sprint(x)
	}
}

func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "SESAME_") && !strings.HasPrefix(k, "SESAME_TEST_") {
			env[k] = v
		}
	}
	var errs []error
	known := map[string]bool{}
	for _, f := range fields(cfg) {
		known[f.env] = true
		if v, ok := env[f.env]; ok {
			if err := set(f.value, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", f.key, f.env, err))
			}
		}
		if !f.secret {
			continue
		}
		known[f.env+"_FILE"] = true
		if path, ok := env[f.env+"_FILE"]; ok {
			b, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s_FILE): cannot read %s: %w", f.key, f.env, path, unwrapPathErr(err)))
				continue
			}
			f.value.SetString(strings.TrimRight(string(b), "\r\n"))
		}
	}
	for k := range env {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%s: unknown configuration variable", k))
		}
	}
	return errors.Join(errs...)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func set(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case *bool:
		if s == "auto" {
			v.Set(reflect.Zero(v.Type()))
			break
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true, false or auto", s)
		}
		v.Set(reflect.ValueOf(&b))
	case int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(int64(n))
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", s)
		}
		v.SetInt(int64(d))
	case []string:
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Validate reports every problem at once, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	c.Provisioning.validate(bad)

	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer", "%q must be an absolute http(s) URL without query or fragment", c.Issuer)
	} else if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		bad("issuer", "%q must use https (plain http is allowed on localhost only)", c.Issuer)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Metrics.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Addr); err != nil {
			bad("metrics.addr", "%q must be host:port, e.g. 127.0.0.1:9090", c.Metrics.Addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("metrics.addr", "%q has an invalid port", c.Metrics.Addr)
		}
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%q must be host:port, e.g. localhost:8080", c.HTTP.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("http.addr", "%q has an invalid port", c.HTTP.Addr)
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": c.HTTP.ReadHeaderTimeout,
		"http.read_timeout":        c.HTTP.ReadTimeout,
		"http.write_timeout":       c.HTTP.WriteTimeout,
		"http.idle_timeout":        c.HTTP.IdleTimeout,
		"http.shutdown_timeout":    c.HTTP.ShutdownTimeout,
		"session.factor_window":    c.Session.FactorWindow,
		"database.timeout":         c.Database.Timeout,
		"redis.timeout":            c.Redis.Timeout,
		"session.lifetime":         c.Session.Lifetime,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration")
		}
	}
	if c.Database.CacheTTL < 0 || c.Database.CacheTTL > time.Minute {
		bad("database.cache_ttl", "must be between 0 (no cache) and 1m")
	}
	if c.Session.FactorWindow > c.Session.Lifetime && c.Session.Lifetime > 0 {
		bad("session.factor_window", "must not be longer than session.lifetime")
	}
	if c.Database.URL != "" {
		if u, err := url.Parse(c.Database.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			bad("database.url", "must be a postgres://user@host:port/dbname URL")
		}
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") || (u.Host == "" && u.Scheme != "unix") {
			bad("redis.url", "must be a redis://host:port/db or rediss:// URL")
		}
	}
	if c.Redis.Prefix == "" {
		bad("redis.prefix", "must not be empty")
	}
	if c.Ephemeral.MaxEntries < 1000 {
		bad("ephemeral.max_entries", "%d must be at least 1000", c.Ephemeral.MaxEntries)
	}
	if c.Seal.Key != "" {
		if kid, b64, ok := strings.Cut(c.Seal.Key, ":"); !ok || kid == "" || len(b64) != 44 {
			bad("seal.key", "must be KEY_ID:BASE64 of 32 random bytes")
		}
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("trusted_proxies", "%q is neither an IP address nor a CIDR prefix", p)
			}
		}
	}
	if c.SMTP.Host != "" {
		if c.SMTP.Port <= 0 || c.SMTP.Port > 65535 {
			bad("smtp.port", "%d is not a port number", c.SMTP.Port)
		}
		if c.SMTP.From == "" {
			bad("smtp.from", "must not be empty when smtp.host is set")
		}
	}
	switch c.SMTP.TLS {
	case "starttls", "implicit", "none":
	default:
		bad("smtp.tls", "%q must be starttls, implicit or none", c.SMTP.TLS)
	}
	switch c.SMS.Provider {
	case "":
	case "twilio", "webhook":
		if u, err := url.Parse(c.SMS.URL); (c.SMS.URL != "" || c.SMS.Provider == "webhook") &&
			(err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			bad("sms.url", "must be the gateway's absolute URL")
		}
		if c.SMS.AuthToken == "" {
			bad("sms.auth_token", "must be set for sms.provider %s", c.SMS.Provider)
		}
		if c.SMS.Provider == "twilio" && (c.SMS.AccountSID == "" || c.SMS.From == "") {
			bad("sms.account_sid", "sms.account_sid and sms.from must be set for twilio")
		}
	default:
		bad("sms.provider", "%q must be twilio or webhook (or empty to log messages)", c.SMS.Provider)
	}
	if c.SMS.MaxPerHour < 1 {
		bad("sms.max_per_hour", "must be at least 1")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q must be text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	c.Regulate.validate(bad)
	return errors.Join(errs...)
}

func (r Regulate) validate(bad func(key, format string, args ...any)) {
	for key, n := range map[string]int{
		"regulate.max_unknown":      r.MaxUnknown,
		"regulate.network_failures": r.NetworkFailures,
		"regulate.requests":         r.Requests,
	} {
		if n < 1 {
			bad(key, "must be at least 1")
		}
	}
	if r.FreeFailures < 0 {
		bad("regulate.free_failures", "must not be negative")
	}
	for key, d := range map[string]time.Duration{
		"regulate.base_delay":     r.BaseDelay,
		"regulate.unknown_window": r.UnknownWindow,
		"regulate.network_window": r.NetworkWindow,
		"regulate.device_ttl":     r.DeviceTTL,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration")
		}
	}
	if r.MaxDelay < r.BaseDelay {
		bad("regulate.max_delay", "%s must be at least regulate.base_delay (%s)", r.MaxDelay, r.BaseDelay)
	}
	if r.Window < r.MaxDelay || r.Window <= 0 {
		bad("regulate.window", "%s must be positive and at least regulate.max_delay (%s)", r.Window, r.MaxDelay)
	}
	if r.IPv4Prefix < 8 || r.IPv4Prefix > 32 {
		bad("regulate.ipv4_prefix", "%d must be between 8 and 32", r.IPv4Prefix)
	}
	if r.IPv6Prefix < 32 || r.IPv6Prefix > 128 {
		bad("regulate.ipv6_prefix", "%d must be between 32 and 128", r.IPv6Prefix)
	}
	if r.RequestWindow < time.Second {
		bad("regulate.request_window", "must be at least 1s")
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// Redact hides the password of a URL, for messages and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
