package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp/regulate"
	"github.com/sesame-idp/sesame/idp/store"
)

// regulateConfig converts the regulate.* keys to the throttle's limits.
func regulateConfig(c config.Regulate) regulate.Config {
	return regulate.Config{
		FreeFailures:    c.FreeFailures,
		BaseDelay:       c.BaseDelay,
		MaxDelay:        c.MaxDelay,
		Window:          c.Window,
		MaxUnknown:      c.MaxUnknown,
		UnknownWindow:   c.UnknownWindow,
		NetworkFailures: c.NetworkFailures,
		NetworkWindow:   c.NetworkWindow,
		IPv4Prefix:      c.IPv4Prefix,
		IPv6Prefix:      c.IPv6Prefix,
		DeviceTTL:       c.DeviceTTL,
		Requests:        c.Requests,
		RequestWindow:   c.RequestWindow,
	}
}

// userUnlock voids an account's throttle counts (password and code, every
// network and device) for support, audited. The counts are in Redis; with
// the in-process store they live in the server's memory, out of reach.
func userUnlock(ctx context.Context, args []string, e env) error {
	fs, file := flags("user unlock", e)
	username := fs.String("username", "", "`username`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usagef("usage: sesame user unlock --username U")
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
	if a.cfg.Redis.URL == "" {
		return errors.New("user unlock: redis.url is not set, so the throttle's counts live in the server's memory (restarting it clears them)")
	}
	r, err := regulate.New(a.ephemeral, regulateConfig(a.cfg.Regulate), nil)
	if err != nil {
		return err
	}
	// Passwords are counted under the username, codes under the user id.
	for _, account := range []string{u.Username, u.ID} {
		if err := r.Unlock(ctx, account); err != nil {
			return fmt.Errorf("unlock %s: %w", u.Username, err)
		}
	}
	if err := a.store.AppendAuditEvent(ctx, store.AuditEvent{ID: uuid.NewString(), At: now(), Type: "user.unlocked", ActorID: "cli", UserID: u.ID}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	fmt.Fprintf(e.stdout, "unlocked %s\n", u.Username)
	return nil
}
