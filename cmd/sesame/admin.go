package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp"
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
	existing, err := a.store.ListUsers(ctx, "", 1)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	if len(existing) > 0 {
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
		users.ActivationTTL, link)
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

// service is idp/users on the command's stores; its audit events name
// the CLI as the actor.
func (a *app) service() *users.Service {
	return &users.Service{Store: a.store, Sealer: a.sealer, Passwords: users.Passwords{Params: users.DefaultPasswordParams()}, Now: now}
}

// byCLI is who the audit events of the commands name.
var byCLI = store.AuditEvent{ActorID: "cli"}

// bootstrapAdmin creates a pending administrator and its activation link.
func (a *app) bootstrapAdmin(ctx context.Context, username, email string) (string, error) {
	_, token, err := a.service().BootstrapAdmin(ctx, username, email, byCLI)
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
	if err := users.CheckUsername(*username); err != nil {
		return flagError(err)
	}
	if err := users.CheckEmail(*email); err != nil {
		return flagError(err)
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
	fmt.Fprintf(e.stdout, "Activation link for %s (single use, valid %s):\n%s\n", store.FoldUsername(*username), users.ActivationTTL, link)
	return nil
}

// ---- errors ----

// flagOf names the flags of the idp/users fields that are not the field
// with dashes.
var flagOf = map[string]string{
	"redirect_uris":    "--redirect-uri",
	"post_logout_uris": "--post-logout-uri",
	"grant_types":      "--grant",
	"scopes":           "--scope",
}

// flagError turns an *users.InputError into the one line the CLI prints:
// a bad field is a usage error naming its flag ("--email: "x" is not an
// email address", exit 2), a taken username a failure ("username "x" is
// already taken", exit 1). Other errors are returned as they are.
func flagError(err error) error {
	var ie *users.InputError
	if !errors.As(err, &ie) {
		return err
	}
	if errors.Is(ie, store.ErrConflict) {
		return errors.New(ie.Field + " " + ie.Message)
	}
	flag, ok := flagOf[ie.Field]
	if !ok {
		flag = "--" + strings.ReplaceAll(ie.Field, "_", "-")
	}
	return usagef("%s: %s", flag, ie.Message)
}

// ---- clients ----

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
	in := users.NewClient{
		ID: *id, Name: *name, Public: *public, RedirectURIs: redirects, PostLogoutURIs: logouts,
		GrantTypes: grants, Scopes: scopes, PKCE: *pkce, AuthMethod: *method, TokenFormat: *format, SigningAlg: *alg,
	}
	if err := in.Validate(); err != nil {
		return flagError(err)
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	c, secret, err := a.service().CreateClient(ctx, in, byCLI)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("client %q already exists", in.ID)
	}
	if err != nil {
		return flagError(err)
	}
	if c.Public {
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
	if err := checkFlags(fs); err != nil {
		return "", "", err
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
	clients, err := a.service().ListClients(ctx)
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
	err = a.service().DeleteClient(ctx, id, byCLI)
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
	secret, err := a.service().RotateClientSecret(ctx, id, byCLI)
	if errors.Is(err, users.ErrPublicClient) {
		return errors.New("a public client has no secret")
	}
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

// createUsers creates every user in one transaction: all or nothing.
func (a *app) createUsers(ctx context.Context, ins []users.NewUser) ([]store.User, error) {
	created, err := a.service().CreateUsers(ctx, ins, byCLI)
	return created, flagError(err)
}

func cmdUser(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("usage: sesame user create|import|mfa-grace|unlock|phone|grant")
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
	case "phone":
		return userPhone(ctx, args[1:], e)
	case "grant":
		return userGrant(ctx, args[1:], e)
	}
	return usagef("unknown user command %q (create, import, mfa-grace, unlock, phone, grant)", args[0])
}

func userCreate(ctx context.Context, args []string, e env) error {
	fs, file := flags("user create", e)
	var in users.NewUser
	fs.StringVar(&in.Username, "username", "", "`username`")
	fs.StringVar(&in.Email, "email", "", "`email` address")
	fs.StringVar(&in.Password, "password", "", "initial `password`")
	fs.StringVar(&in.GivenName, "given-name", "", "given `name`")
	fs.StringVar(&in.FamilyName, "family-name", "", "family `name`")
	fs.StringVar(&in.Locale, "locale", "fr-CA", "`locale`: fr-CA or en-CA")
	fs.StringVar(&in.TOTPSecret, "totp-secret", "", "existing authenticator key (`BASE32`) to import: the user is then enrolled")
	fs.StringVar(&in.Phone, "phone", "", "verified cell phone `number` to import (+1…): the user is then enrolled for SMS")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := in.Validate(); err != nil {
		return flagError(err)
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	created, err := a.createUsers(ctx, []users.NewUser{in})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user created: %s\n", created[0].ID)
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
	var ins []users.NewUser
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var in users.NewUser
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return usagef("%s line %d: not a user record: %v", fs.Arg(0), n, err)
		}
		if err := in.Validate(); err != nil {
			return usagef("%s line %d: %v", fs.Arg(0), n, flagError(err))
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
	created, err := a.createUsers(ctx, ins)
	if err != nil {
		return err
	}
	for _, u := range created {
		fmt.Fprintf(e.stdout, "user created: %s %s\n", u.Username, u.ID)
	}
	fmt.Fprintf(e.stdout, "imported %d users\n", len(created))
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
	var end time.Time // zero: now
	if *until != "now" {
		d, err := time.Parse("2006-01-02", *until)
		if err != nil {
			return usagef("--until: %q is not a date like 2026-12-31", *until)
		}
		end = d.Add(24 * time.Hour).UTC()
		if err := users.CheckMFAGraceUntil(end, now()); err != nil {
			return flagError(err)
		}
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.service().SetMFAGrace(ctx, *username, end, byCLI)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", *username)
	}
	if err != nil {
		return flagError(err)
	}
	fmt.Fprintf(e.stdout, "second-factor grace period for %s until %s\n", u.Username, u.MFAGraceUntil.Format(time.RFC3339))
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
