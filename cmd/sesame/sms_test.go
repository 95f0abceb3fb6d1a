package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/notify"
	"github.com/sesame-idp/sesame/idp/store"
)

// sms.* picks the gateway: with sms.provider twilio the worker posts to
// {sms.url}/2010-04-01/Accounts/{sid}/Messages.json, with webhook to
// sms.url, signed with sms.auth_token.
func TestSMSProviderFromConfig(t *testing.T) {
	for _, c := range []struct{ provider, path string }{
		{"twilio", "/2010-04-01/Accounts/AC42/Messages.json"},
		{"webhook", "/hook"},
	} {
		t.Run(c.provider, func(t *testing.T) {
			var mu sync.Mutex
			var got []*http.Request
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if c.provider == "webhook" && !notify.VerifySignature("tok", body, r.Header.Get(notify.SignatureHeader)) {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if u, p, _ := r.BasicAuth(); c.provider == "twilio" && (u != "AC42" || p != "tok") {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				w.WriteHeader(http.StatusCreated)
			}))
			defer gw.Close()
			url := gw.URL
			if c.provider == "webhook" {
				url += "/hook"
			}
			cfg, err := loadConfig("", env{environ: []string{"SESAME_DATA_DIR=" + t.TempDir(),
				"SESAME_SMS_PROVIDER=" + c.provider, "SESAME_SMS_URL=" + url, "SESAME_SMS_ACCOUNT_SID=AC42",
				"SESAME_SMS_AUTH_TOKEN=tok", "SESAME_SMS_FROM=+15145550000"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			a, err := openApp(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			if err := a.migrate(ctx); err != nil {
				t.Fatal(err)
			}
			w, err := a.outbox(nil)
			if err != nil {
				t.Fatal(err)
			}
			err = a.store.InTx(ctx, func(tx store.Tx) error {
				return notify.EnqueueSMS(ctx, tx, "sms:cfg", notify.SMS{To: "+15148721234", Body: "x"}, time.Now())
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].URL.Path != c.path {
				t.Fatalf("gateway got %d requests (%v), want one on %s", len(got), got, c.path)
			}
		})
	}
}
