package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// rawList is a repeatable flag taken as typed (names with spaces).
type rawList []string

func (l *rawList) String() string     { return strings.Join(*l, "; ") }
func (l *rawList) Set(v string) error { *l = append(*l, v); return nil }

func cmdInstitution(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "create" {
		return usagef("usage: sesame institution create --name N --billing \"NAME - NUMBER\" [--billing …]")
	}
	fs, file := flags("institution create", e)
	var in users.NewInstitution
	var billing rawList
	fs.StringVar(&in.Name, "name", "", "the institution's `name`")
	fs.Var(&billing, "billing", "billing account as on the invoice, `\"NAME - NUMBER\"` (repeatable)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	for _, b := range billing {
		ba, err := users.ParseBilling(b)
		if err != nil {
			return flagError(err)
		}
		in.BillingAccounts = append(in.BillingAccounts, ba)
	}
	if err := in.Validate(); err != nil {
		return flagError(err)
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	inst, err := a.service().CreateInstitution(ctx, in, byCLI)
	if err != nil {
		return flagError(err)
	}
	fmt.Fprintf(e.stdout, "institution created: %s\n", inst.ID)
	return nil
}

// userGrant gives a user access to an institution, mandates and special rights.
func userGrant(ctx context.Context, args []string, e env) error {
	fs, file := flags("user grant", e)
	username := fs.String("username", "", "`username`")
	var g users.Grant
	var mandates, rights rawList
	fs.StringVar(&g.InstitutionID, "institution", "", "institution `id`")
	fs.BoolVar(&g.Primary, "primary", false, "make it the user's primary institution")
	fs.Var(&mandates, "mandate", "a `mandate` at the institution (repeatable)")
	fs.Var(&rights, "right", "a special `right`: patient_merge, admin_account, account_requests (repeatable)")
	support := fs.Bool("support", false, "grant the support right: the management API with sesame:admin, after a sign-in with a second factor")
	if err := parse(fs, args); err != nil {
		return err
	}
	g.Mandates, g.Rights = mandates, rights
	if err := users.CheckText("username", *username, 256); err != nil || *username == "" {
		return usagef("--username: required")
	}
	if g.InstitutionID == "" && !*support {
		return usagef("--institution: required (or --support)")
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.store.GetUserByUsername(ctx, *username)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", *username)
	}
	if err != nil {
		return err
	}
	g.UserID = u.ID
	if *support {
		if _, err := a.service().SetSupport(ctx, u.Username, true, byCLI); err != nil {
			return flagError(err)
		}
		fmt.Fprintf(e.stdout, "%s holds the support right\n", u.Username)
		if g.InstitutionID == "" {
			return nil
		}
	}
	m, err := a.service().GrantAccess(ctx, g, byCLI)
	if err != nil {
		var ie *users.InputError
		if errors.As(err, &ie) && errors.Is(ie, store.ErrNotFound) {
			return fmt.Errorf("--%s: %s", ie.Field, ie.Message)
		}
		return flagError(err)
	}
	primary := ""
	if m.Primary {
		primary = " (primary)"
	}
	fmt.Fprintf(e.stdout, "%s at %s%s: mandates [%s], rights [%s]\n", u.Username, m.InstitutionID, primary,
		strings.Join(m.Mandates, ", "), strings.Join(m.Rights, ", "))
	return nil
}
