package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/templates"
)

// userPhone is support changing a user's SMS number (users cannot):
// audited, and the user is emailed.
func userPhone(ctx context.Context, args []string, e env) error {
	fs, file := flags("user phone", e)
	username := fs.String("username", "", "`username`")
	phone := fs.String("phone", "", "the new cell phone `number` (Canadian, e.g. +1 514 555-0123)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *username == "" || *phone == "" {
		return usagef("usage: sesame user phone --username U --phone +1…")
	}
	if _, err := users.ParseCanadianMobile(*phone); err != nil {
		return flagError(err)
	}
	a, err := openForCommand(ctx, *file, e)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.store.GetUserByUsername(ctx, *username)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", store.FoldUsername(*username))
	}
	if err != nil {
		return err
	}
	tpl, err := templates.New(nil)
	if err != nil {
		return err
	}
	u, err = a.service().SetPhone(ctx, u.ID, *phone, byCLI, func(u store.User) (notify.Email, error) {
		lang := templates.UserLang(u.Locale)
		subject, text, html, err := tpl.Email(lang, "phone_changed", templates.PhoneChangedEmail{
			GivenName: u.GivenName, Phone: users.MaskPhone(u.Phone), When: now().Format(time.RFC3339),
		})
		return notify.Email{To: u.Email, Subject: subject, Text: text, HTML: html, Lang: u.Locale}, err
	})
	if err != nil {
		return flagError(err)
	}
	fmt.Fprintf(e.stdout, "phone of %s set to %s\n", u.Username, users.MaskPhone(u.Phone))
	return nil
}
