package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/sesame-idp/sesame/idp/users"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // something failed while running
	exitUsage   = 2 // bad command line or configuration: nothing was done
)

// usageError is a problem with the command line or the configuration: the
// command exits 2 and has written nothing.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is what a command sees of the outside world.
type env struct {
	stdout, stderr io.Writer
	environ        []string
}

const usage = `Sésame, an OpenID Connect identity provider.

Usage:
  sesame serve [--config FILE] [--no-migrate]   run the server (the default)
  sesame migrate [--config FILE]                apply database migrations
  sesame version                                print the version
  sesame admin bootstrap --username U --email E print a one-time activation link for an administrator
  sesame client create --id ID --redirect-uri URI [--redirect-uri URI …] [--post-logout-uri URI …]
                [--public] [--grant authorization_code,refresh_token,client_credentials] [--scope …]
                [--token-format opaque|jwt] [--auth-method client_secret_basic|client_secret_post] [--pkce]
  sesame client list | delete --id ID | rotate-secret --id ID
  sesame user create --username U --email E --password P [--given-name …] [--family-name …]
                [--locale fr-CA|en-CA] [--totp-secret BASE32] [--phone +1…]
  sesame user import FILE                       JSON lines with the fields of user create
  sesame user mfa-grace --username U --until YYYY-MM-DD|now
                                                let one account sign in without a second factor for a while (audited)
  sesame user unlock --username U               void the account's throttle counts (audited)
  sesame user grant --username U --institution ID [--primary] [--mandate M …] [--right R …] [--support]
                                                access to an institution, mandates, special rights (audited);
                                                --support: the support right (the management API as an administrator)
  sesame institution create --name N --billing "NAME - NUMBER" [--billing …]
                                                create an institution; prints its id last
  sesame user phone --username U --phone +1…    change the account's SMS number (audited, the user emailed)
  sesame keys rotate                            retire the active signing key, activate the next

Every command takes --config FILE and the same SESAME_* environment as serve.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e env) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, args, e)
	case "migrate":
		err = cmdMigrate(ctx, args, e)
	case "admin":
		err = cmdAdmin(ctx, args, e)
	case "client":
		err = cmdClient(ctx, args, e)
	case "user":
		err = cmdUser(ctx, args, e)
	case "keys":
		err = cmdKeys(ctx, args, e)
	case "institution":
		err = cmdInstitution(ctx, args, e)
	case "version":
		fmt.Fprintln(e.stdout, "sesame", versionString(), runtime.Version(), "crypto:"+cryptoModule())
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
	default:
		err = usagef("unknown command %q (try: sesame help)", cmd)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintln(e.stderr, "sesame:", err)
		return exitUsage
	default:
		fmt.Fprintln(e.stderr, "sesame:", err)
		return exitFailure
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// flags returns a flag set with the --config flag every command honours.
func flags(name string, e env) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("sesame "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	file := fs.String("config", "", "YAML configuration `file` (environment variables SESAME_* override it)")
	return fs, file
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if err := checkFlags(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// checkFlags refuses a flag or an argument that is not text a store can
// hold (users.CheckText: control characters, invalid UTF-8), naming the
// flag, never repeating the value.
func checkFlags(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err == nil {
			err = users.CheckText(f.Name, f.Value.String(), 64<<10)
		}
	})
	for i := 0; err == nil && i < fs.NArg(); i++ {
		if users.CheckText("argument", fs.Arg(i), 64<<10) != nil {
			err = usagef("argument %d: must be text without control characters, valid UTF-8", i+1)
		}
	}
	return flagError(err)
}
