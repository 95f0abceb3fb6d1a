package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/keys"
	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/provisioning"
	"github.com/sesame-idp/sesame/templates"
)

// loadKeys loads (creating on first start) the signing keys.
func (a *app) loadKeys(ctx context.Context) error {
	if a.keys != nil {
		return nil
	}
	a.keys = keys.New(a.store, a.sealer, keys.Options{Logger: a.log, Algs: []string{"RS256", "ES256"}})
	if err := a.keys.Load(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	return nil
}

// server assembles the HTTP server from the app's dependencies.
func (a *app) server(ctx context.Context, reg *prometheus.Registry) (*idp.Server, error) {
	if err := a.loadKeys(ctx); err != nil {
		return nil, err
	}
	tpl, err := templates.New(nil)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	var proxies []netip.Prefix
	for _, p := range a.cfg.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			proxies = append(proxies, pfx)
		} else if ip, err := netip.ParseAddr(p); err == nil {
			proxies = append(proxies, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return &idp.Server{
		Issuer:         a.cfg.Issuer,
		Store:          a.store,
		Ephemeral:      a.ephemeral,
		SMSPerHour:     a.cfg.SMS.MaxPerHour,
		Keys:           a.keys,
		Templates:      tpl,
		Passwords:      users.Passwords{Params: users.DefaultPasswordParams()},
		Sealer:         a.sealer,
		CryptoKey:      a.derivedKey("sesame/oidc-crypto"),
		TrustedProxies: proxies,
		SessionTTL:     a.cfg.Session.Lifetime,
		FactorWindow:   a.cfg.Session.FactorWindow,
		CacheTTL:       a.cfg.Database.CacheTTL,
		Demo:           a.cfg.DemoEnabled(),
		Regulate:       regulateConfig(a.cfg.Regulate),
		Features:       occupationFeatures(a.cfg.Provisioning),
		Logger:         a.log,
		Registry:       reg,
		Checks: []idp.Check{
			{Name: "database", Ping: a.store.Ping},
			{Name: "ephemeral", Ping: a.ephemeral.Ping},
		},
		ReadyTimeout: 1500 * time.Millisecond,
		Provisioning: &provisioning.Service{Store: a.store, Config: a.cfg.Provisioning, Templates: tpl, Issuer: a.cfg.Issuer,
			Logger: a.log},
	}, nil
}

// outbox builds the worker that delivers queued emails and SMS.
func (a *app) outbox(reg prometheus.Registerer) (*notify.Worker, error) {
	log := notify.LogSender{Logger: a.log}
	var email notify.Sender = log
	if a.cfg.SMTP.Host != "" {
		s, err := notify.NewSMTPSender(notify.SMTPConfig{
			Host: a.cfg.SMTP.Host, Port: a.cfg.SMTP.Port, Username: a.cfg.SMTP.Username, Password: a.cfg.SMTP.Password,
			TLS: a.cfg.SMTP.TLS, From: a.cfg.SMTP.From,
		})
		if err != nil {
			return nil, usagef("smtp: %v", err)
		}
		email = s
	} else {
		a.log.Warn("smtp.host is not set: emails are written to the log, not sent")
	}
	var sms notify.Sender = log
	switch c := a.cfg.SMS; c.Provider {
	case "twilio":
		sms = &notify.TwilioSender{URL: c.URL, AccountSID: c.AccountSID, AuthToken: c.AuthToken, From: c.From}
	case "webhook":
		sms = &notify.WebhookSender{URL: c.URL, Secret: c.AuthToken}
	default:
		a.log.Warn("sms.provider is not set: text messages are written to the log, not sent")
	}
	return &notify.Worker{
		Store:      a.store,
		Senders:    map[string]notify.Sender{notify.KindEmail: email, notify.KindSMS: sms},
		Logger:     a.log,
		Registerer: reg,
	}, nil
}

// derivedKey derives a purpose-specific key from the sealing key, so every
// node that shares the sealing key agrees on it.
func (a *app) derivedKey(purpose string) [32]byte {
	m := hmac.New(sha256.New, a.sealKey.Secret)
	m.Write([]byte(purpose))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// occupationFeatures looks up the features of an occupation in the
// configuration (provisioning.occupations).
func occupationFeatures(p config.Provisioning) func(string) []string {
	byName := map[string][]string{}
	for _, o := range p.OccupationList() {
		byName[o.Name] = o.Features
	}
	return func(occupation string) []string { return byName[occupation] }
}
