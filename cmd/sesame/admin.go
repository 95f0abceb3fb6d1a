package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/login"
	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// openForCommand loads the configuration, opens the stores and applies
// migrations (unless turned off): what every administration command needs.
func openForCommand(ctx context.Context, file string, e env) (*app, error) {
	cfg, err := loadConfig(file, e)
	if err != nil {
		return nil, err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg.Log, e))
	if err != nil {
		return nil, err
	}
	if cfg.Database.AutoMigrate {
		if err := a.migrate(ctx); err != nil {
			a.close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return a, nil
}

// stringList is a repeatable flag that also splits on commas and spaces.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		*l = append(*l, p)
	}
	return nil
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// ---- first start ----

// firstStart registers the demo client when the demo is on (and deletes
// it when it is off) and, when there is no user at all, creates the first
// administrator and prints a one-time activation link.
func (a *app) firstStart(ctx context.Context, e env) error {
	if err := a.syncDemoClient(ctx); err != nil {
		return err
	}
	users, err := a.store.ListUsers(ctx, "", 1)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	if len(users) > 0 {
		return nil
	}
	link, err := a.bootstrapAdmin(ctx, "admin", "admin@localhost")
	if errors.Is(err, store.ErrConflict) {
		return nil // another node did it
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "First start: activate the administrator account \"admin\" (single use, valid %s):\n%s\n",
		login.ActivationTTL, link)
	return nil
}

// syncDemoClient registers the demo relying party's public client (or
// follows a change of issuer) when the demo is on. When it is off, it
// deletes a demo client left by an earlier start: a public client with
// offline_access whose redirect URI is another deployment's (or this one's
// /demo, no longer served) must not stay usable, and no operator expects a
// client they did not ask for.
func (a *app) syncDemoClient(ctx context.Context) error {
	if !a.cfg.DemoEnabled() {
		err := a.store.InTx(ctx, func(tx store.Tx) error {
			if err := tx.DeleteClient(ctx, idp.DemoClientID); err != nil {
				return err
			}
			return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "client.deleted", ActorID: "system", ClientID: idp.DemoClientID})
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("delete demo client: %w", err)
		}
		a.log.Info("demo relying party off: its client deleted", "client_id", idp.DemoClientID)
		return nil
	}
	demo := store.Client{
		ID: idp.DemoClientID, Name: "Sésame demo", Public: true, AuthMethod: "none", PKCERequired: true,
		RedirectURIs:   []string{a.cfg.Issuer + "/demo/callback"},
		PostLogoutURIs: []string{a.cfg.Issuer + "/demo"},
		GrantTypes:     []string{"authorization_code", "refresh_token"},
		Scopes:         []string{"openid", "profile", "email", "offline_access"},
		TokenFormat:    "opaque", IDTokenAlg: "RS256",
		CreatedAt: now(), UpdatedAt: now(),
	}
	c, err := a.store.GetClient(ctx, idp.DemoClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := a.store.CreateClient(ctx, demo); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("register demo client: %w", err)
		}
		a.log.Info("demo relying party registered", "url", a.cfg.Issuer+"/demo")
	case err != nil:
		return fmt.Errorf("load demo client: %w", err)
	case !slices.Equal(c.RedirectURIs, demo.RedirectURIs):
		// The issuer changed since the demo was registered.
		demo.CreatedAt = c.CreatedAt
		if err := a.store.UpdateClient(ctx, demo); err != nil {
			return fmt.Errorf("update demo client: %w", err)
		}
	}
	return nil
}

// bootstrapAdmin creates a pending administrator and its activation link.
func (a *app) bootstrapAdmin(ctx context.Context, username, email string) (string, error) {
	var token string
	err := a.store.InTx(ctx, func(tx store.Tx) error {
		u := store.User{
			ID: uuid.NewString(), Username: store.FoldUsername(username), Email: email,
			Locale: "fr-CA", Status: store.StatusPendingActivation, AccountType: "person", Occupation: "administrative",
			CreatedAt: now(), UpdatedAt: now(),
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		var err error
		if token, err = login.NewActivationToken(ctx, tx, u.ID, now()); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "admin.bootstrap", ActorID: "cli", UserID: u.ID})
	})
	if err != nil {
		return "", err
	}
	return a.cfg.Issuer + "/activate?token=" + url.QueryEscape(token), nil
}

func cmdAdmin(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "bootstrap" {
		return usagef("usage: sesame admin bootstrap --username U --email E")
	}
	fs, file := flags("admin bootstrap", e)
	username := fs.String("username", "", "the administrator's `username`")
	email := fs.String("email", "", "the administrator's `email` address")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := validUsername(*username); err != nil {
		return err
	}
	if err := validEmail(*email); err != nil {
		return err
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	link, err := a.bootstrapAdmin(ctx, *username, *email)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("username %q is already taken", *username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Activation link for %s (single use, valid %s):\n%s\n", store.FoldUsername(*username), login.ActivationTTL, link)
	return nil
}

// ---- validation ----

var (
	usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{1,63}$`)
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

func validUsername(u string) error {
	if !usernameRE.MatchString(store.FoldUsername(u)) {
		return usagef("--username: %q must be 2 to 64 letters, digits or . _ @ -", u)
	}
	return nil
}

func validEmail(e string) error {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e, "@") {
		return usagef("--email: %q is not an email address", e)
	}
	return nil
}

func validLocale(l string) error {
	if l != "fr-CA" && l != "en-CA" {
		return usagef("--locale: %q must be fr-CA or en-CA", l)
	}
	return nil
}

// validRedirect: absolute, no fragment, https or http on loopback.
func validRedirect(flagName, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		return usagef("%s: %q must be an absolute URL without fragment", flagName, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return usagef("%s: %q must use https (http only on localhost)", flagName, raw)
		}
	default:
		return usagef("%s: %q must use https", flagName, raw)
	}
	return nil
}

// ---- clients ----

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var knownGrants = []string{"authorization_code", "refresh_token", "client_credentials"}

func cmdClient(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("usage: sesame client create|list|delete|rotate-secret")
	}
	switch args[0] {
	case "create":
		return clientCreate(ctx, args[1:], e)
	case "list":
		return clientList(ctx, args[1:], e)
	case "delete":
		return clientDelete(ctx, args[1:], e)
	case "rotate-secret":
		return clientRotate(ctx, args[1:], e)
	}
	return usagef("unknown client command %q (create, list, delete, rotate-secret)", args[0])
}

func clientCreate(ctx context.Context, args []string, e env) error {
	fs, file := flags("client create", e)
	id := fs.String("id", "", "client `id`")
	name := fs.String("name", "", "display `name` shown on the sign-in page")
	var redirects, logouts, grants, scopes stringList
	fs.Var(&redirects, "redirect-uri", "registered redirect `URI` (repeatable)")
	fs.Var(&logouts, "post-logout-uri", "registered post-logout redirect `URI` (repeatable)")
	fs.Var(&grants, "grant", "grant `types`: authorization_code,refresh_token,client_credentials")
	fs.Var(&scopes, "scope", "allowed `scopes` (default: openid profile email offline_access)")
	public := fs.Bool("public", false, "public client (no secret, PKCE required)")
	pkce := fs.Bool("pkce", false, "require PKCE from this confidential client too")
	format := fs.String("token-format", "opaque", "access token `format`: opaque or jwt")
	method := fs.String("auth-method", "client_secret_basic", "client authentication: client_secret_basic or client_secret_post")
	alg := fs.String("signing-alg", "RS256", "token signature `algorithm`: RS256 or ES256")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !clientIDRE.MatchString(*id) {
		return usagef("--id: %q must be 1 to 64 letters, digits or . _ -", *id)
	}
	if len(grants) == 0 {
		grants = stringList{"authorization_code", "refresh_token"}
	}
	for _, g := range grants {
		if !slices.Contains(knownGrants, g) {
			return usagef("--grant: %q is not one of %s", g, strings.Join(knownGrants, ", "))
		}
	}
	if *public && slices.Contains(grants, "client_credentials") {
		return usagef("--grant: a public client cannot use client_credentials")
	}
	if slices.Contains(grants, "authorization_code") && len(redirects) == 0 {
		return usagef("--redirect-uri: required for the authorization_code grant")
	}
	for _, r := range redirects {
		if err := validRedirect("--redirect-uri", r); err != nil {
			return err
		}
	}
	for _, r := range logouts {
		if err := validRedirect("--post-logout-uri", r); err != nil {
			return err
		}
	}
	if len(scopes) == 0 {
		scopes = stringList{"openid", "profile", "email", "offline_access"}
	}
	if *format != "opaque" && *format != "jwt" {
		return usagef("--token-format: %q must be opaque or jwt", *format)
	}
	if *alg != "RS256" && *alg != "ES256" {
		return usagef("--signing-alg: %q must be RS256 or ES256", *alg)
	}
	if *method != "client_secret_basic" && *method != "client_secret_post" {
		return usagef("--auth-method: %q must be client_secret_basic or client_secret_post", *method)
	}
	c := store.Client{
		ID: *id, Name: *name, Public: *public, RedirectURIs: redirects, PostLogoutURIs: logouts,
		GrantTypes: grants, Scopes: scopes, AuthMethod: *method, PKCERequired: *public || *pkce,
		TokenFormat: *format, IDTokenAlg: *alg, CreatedAt: now(), UpdatedAt: now(),
	}
	secret := ""
	if *public {
		c.AuthMethod = "none"
	} else {
		secret = newSecret()
		c.SecretHash = oidcstore.HashSecret(secret)
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	err = a.store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateClient(ctx, c); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "client.created", ActorID: "cli", ClientID: c.ID})
	})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("client %q already exists", c.ID)
	}
	if err != nil {
		return err
	}
	if *public {
		fmt.Fprintf(e.stdout, "client created: %s (public: PKCE required, no secret)\n", c.ID)
		return nil
	}
	fmt.Fprintf(e.stdout, "client created: %s\nclient secret (shown once, store it now): %s\n", c.ID, secret)
	return nil
}

// idArg accepts the client id as --id or as the only argument.
func idArg(name string, args []string, e env) (string, string, error) {
	fs, file := flags("client "+name, e)
	id := fs.String("id", "", "client `id`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", "", err
		}
		return "", "", usageError{err}
	}
	if *id == "" && fs.NArg() == 1 {
		*id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return "", "", usagef("unexpected argument %q", fs.Arg(0))
	}
	if *id == "" {
		return "", "", usagef("usage: sesame client %s --id ID", name)
	}
	return *id, *file, nil
}

func clientList(ctx context.Context, args []string, e env) error {
	fs, file := flags("client list", e)
	if err := parse(fs, args); err != nil {
		return err
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	clients, err := a.store.ListClients(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tGRANTS\tTOKENS\tREDIRECT URIS")
	for _, c := range clients {
		typ := "confidential"
		if c.Public {
			typ = "public"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, typ, strings.Join(c.GrantTypes, ","), c.TokenFormat, strings.Join(c.RedirectURIs, " "))
	}
	return tw.Flush()
}

func clientDelete(ctx context.Context, args []string, e env) error {
	id, file, err := idArg("delete", args, e)
	if err != nil {
		return err
	}
	a, err := openForCommand(ctx, file, e)
	if err != nil {
		return err
	}
	defer a.close()
	err = a.store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.DeleteClient(ctx, id); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "client.deleted", ActorID: "cli", ClientID: id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no client %q", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "client deleted: %s\n", id)
	return nil
}

func clientRotate(ctx context.Context, args []string, e env) error {
	id, file, err := idArg("rotate-secret", args, e)
	if err != nil {
		return err
	}
	a, err := openForCommand(ctx, file, e)
	if err != nil {
		return err
	}
	defer a.close()
	secret := newSecret()
	err = a.store.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetClient(ctx, id)
		if err != nil {
			return err
		}
		if c.Public {
			return errors.New("a public client has no secret")
		}
		c.SecretHash, c.UpdatedAt = oidcstore.HashSecret(secret), now()
		if err := tx.UpdateClient(ctx, c); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "client.secret_rotated", ActorID: "cli", ClientID: id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no client %q", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "client secret rotated: %s\nnew client secret (shown once, store it now): %s\n", id, secret)
	return nil
}

// ---- users ----

// userInput is one user to create, from flags or a JSON line.
type userInput struct {
	Username   string `json:"username"`
	Email      string `json:"email"`
	Password   string `json:"password"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Locale     string `json:"locale"`
	TOTPSecret string `json:"totp_secret"`
}

func (in *userInput) validate() error {
	if err := validUsername(in.Username); err != nil {
		return err
	}
	if err := validEmail(in.Email); err != nil {
		return err
	}
	if in.Locale == "" {
		in.Locale = "fr-CA"
	}
	if err := validLocale(in.Locale); err != nil {
		return err
	}
	if err := users.CheckPasswordPolicy(in.Password, store.FoldUsername(in.Username)); err != nil {
		return usagef("--password: %s", policyText(err))
	}
	return validTOTPSecret(in.TOTPSecret)
}

func policyText(err error) string {
	switch {
	case errors.Is(err, users.ErrPasswordTooShort):
		return fmt.Sprintf("at least %d characters are required", users.MinPasswordLen)
	case errors.Is(err, users.ErrPasswordTooLong):
		return "too long"
	default:
		return "too common or too close to the username; choose another (a passphrase is fine)"
	}
}

// createUsers hashes the passwords and creates every user in one
// transaction: all or nothing.
func (a *app) createUsers(ctx context.Context, ins []userInput) ([]string, error) {
	pw := users.Passwords{Params: users.DefaultPasswordParams()}
	users := make([]store.User, len(ins))
	hashes := make([]string, len(ins))
	for i, in := range ins {
		h, err := pw.Hash(in.Password)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
		users[i] = store.User{
			ID: uuid.NewString(), Username: store.FoldUsername(in.Username), Email: in.Email,
			GivenName: in.GivenName, FamilyName: in.FamilyName, Locale: in.Locale,
			Status: store.StatusActive, AccountType: "person", CreatedAt: now(), UpdatedAt: now(),
		}
	}
	err := a.store.InTx(ctx, func(tx store.Tx) error {
		for i, u := range users {
			if err := tx.CreateUser(ctx, u); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("username %q is already taken", u.Username)
				}
				return err
			}
			if err := tx.SetPassword(ctx, u.ID, hashes[i], now()); err != nil {
				return err
			}
			if err := a.importTOTP(ctx, tx, u, ins[i].TOTPSecret); err != nil {
				return err
			}
			if err := tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "user.created", ActorID: "cli", UserID: u.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids, nil
}

func cmdUser(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("usage: sesame user create|import|mfa-grace|unlock")
	}
	switch args[0] {
	case "create":
		return userCreate(ctx, args[1:], e)
	case "import":
		return userImport(ctx, args[1:], e)
	case "mfa-grace":
		return userGrace(ctx, args[1:], e)
	case "unlock":
		return userUnlock(ctx, args[1:], e)
	}
	return usagef("unknown user command %q (create, import, mfa-grace, unlock)", args[0])
}

func userCreate(ctx context.Context, args []string, e env) error {
	fs, file := flags("user create", e)
	var in userInput
	fs.StringVar(&in.Username, "username", "", "`username`")
	fs.StringVar(&in.Email, "email", "", "`email` address")
	fs.StringVar(&in.Password, "password", "", "initial `password`")
	fs.StringVar(&in.GivenName, "given-name", "", "given `name`")
	fs.StringVar(&in.FamilyName, "family-name", "", "family `name`")
	fs.StringVar(&in.Locale, "locale", "fr-CA", "`locale`: fr-CA or en-CA")
	fs.StringVar(&in.TOTPSecret, "totp-secret", "", "existing authenticator key (`BASE32`) to import: the user is then enrolled")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	ids, err := a.createUsers(ctx, []userInput{in})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user created: %s\n", ids[0])
	return nil
}

func userImport(ctx context.Context, args []string, e env) error {
	fs, file := flags("user import", e)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usagef("usage: sesame user import FILE (JSON lines)")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return usagef("%v", err)
	}
	defer f.Close()
	var ins []userInput
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var in userInput
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return usagef("%s line %d: not a user record: %v", fs.Arg(0), n, err)
		}
		if err := in.validate(); err != nil {
			return usagef("%s line %d: %v", fs.Arg(0), n, err)
		}
		ins = append(ins, in)
	}
	if err := sc.Err(); err != nil {
		return usagef("%s: %v", fs.Arg(0), err)
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	ids, err := a.createUsers(ctx, ins)
	if err != nil {
		return err
	}
	for i, id := range ids {
		fmt.Fprintf(e.stdout, "user created: %s %s\n", store.FoldUsername(ins[i].Username), id)
	}
	fmt.Fprintf(e.stdout, "imported %d users\n", len(ids))
	return nil
}

// userGrace lets one account sign in without a second factor until a date
// (an administrator's decision, audited); --until now ends it.
func userGrace(ctx context.Context, args []string, e env) error {
	fs, file := flags("user mfa-grace", e)
	username := fs.String("username", "", "`username`")
	until := fs.String("until", "", "last `day` of the grace period (YYYY-MM-DD, at most 30 days ahead), or \"now\" to end it")
	if err := parse(fs, args); err != nil {
		return err
	}
	var end time.Time
	switch *until {
	case "now":
		end = now()
	default:
		d, err := time.Parse("2006-01-02", *until)
		if err != nil {
			return usagef("--until: %q is not a date like 2026-12-31", *until)
		}
		end = d.Add(24 * time.Hour).UTC()
		if end.Before(now()) || end.After(now().Add(31*24*time.Hour)) {
			return usagef("--until: the grace period must end within the next 30 days")
		}
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	err = a.store.InTx(ctx, func(tx store.Tx) error {
		u, err := tx.GetUserByUsername(ctx, *username)
		if err != nil {
			return err
		}
		u.MFAGraceUntil, u.UpdatedAt = end, now()
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "mfa.grace_granted", ActorID: "cli", UserID: u.ID,
			Details: map[string]string{"until": end.Format(time.RFC3339)}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", *username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "second-factor grace period for %s until %s\n", store.FoldUsername(*username), end.Format(time.RFC3339))
	return nil
}

// ---- keys ----

func cmdKeys(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "rotate" {
		return usagef("usage: sesame keys rotate")
	}
	fs, file := flags("keys rotate", e)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.loadKeys(ctx); err != nil {
		return err
	}
	if err := a.keys.Rotate(ctx); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	keys, err := a.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.State == store.KeyActive {
			fmt.Fprintf(e.stdout, "active signing key (%s): %s\n", k.Alg, k.ID)
		}
	}
	return nil
}
