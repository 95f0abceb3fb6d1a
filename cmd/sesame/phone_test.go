package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// `user create --phone` imports a verified number; `user phone` is support
// changing it: the method keeps its place, audited, the user emailed; bad
// numbers and unknown users get a one-line reason.
func TestUserPhoneCommands(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := cli(t, dir, "user", "create", "--username", "lea.roy", "--email", "lea@clinique.example",
		"--password", "une phrase de passe assez longue", "--phone", "(514) 872-1234")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	id := lastWord(out)
	st := openStore(t, dir)
	ctx := context.Background()
	creds, _ := st.ListCredentials(ctx, id, store.CredSMS)
	if len(creds) != 1 || users.CredentialPhone(creds[0]) != "+15148721234" || creds[0].VerifiedAt.IsZero() {
		t.Fatalf("imported phone: %+v", creds)
	}
	if u, _ := st.GetUser(ctx, id); u.Phone != "+15148721234" {
		t.Errorf("user phone %q", u.Phone)
	}

	out, errOut, code = cli(t, dir, "user", "phone", "--username", "Lea.Roy", "--phone", "+1 418-691-2000")
	if code != 0 || !strings.Contains(out, "2000") || strings.Contains(out, "4186912000") {
		t.Fatalf("user phone: %d %q %s", code, out, errOut)
	}
	after, _ := st.ListCredentials(ctx, id, store.CredSMS)
	if len(after) != 1 || after[0].ID != creds[0].ID || users.CredentialPhone(after[0]) != "+14186912000" {
		t.Fatalf("after the change: %+v", after)
	}
	if u, _ := st.GetUser(ctx, id); u.Phone != "+14186912000" {
		t.Errorf("user phone %q", u.Phone)
	}
	if ev, _ := st.ListAuditEvents(ctx, store.AuditFilter{UserID: id, Type: "user.phone_changed"}); len(ev) != 1 || ev[0].ActorID != "cli" {
		t.Errorf("not audited: %+v", ev)
	}
	msgs, err := st.ClaimOutbox(ctx, time.Now().Add(time.Hour), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	mailed := false
	for _, m := range msgs {
		var e map[string]string
		_ = json.Unmarshal(m.Payload, &e)
		if e["to"] == "lea@clinique.example" && strings.Contains(e["subject"], "numéro") && strings.Contains(e["text"], "2000") {
			mailed = true
		}
	}
	if !mailed {
		t.Errorf("the user was not emailed: %d messages", len(msgs))
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"user", "create", "--username", "zoe.roy", "--email", "z@clinique.example", "--password", "une phrase de passe assez longue", "--phone", "212 736-5000"}, 2, "--phone"},
		{[]string{"user", "phone", "--username", "lea.roy", "--phone", "1-800-555-1234"}, 2, "toll-free"},
		{[]string{"user", "phone", "--username", "nobody.here", "--phone", "+14186912000"}, 1, "no user"},
		{[]string{"user", "phone", "--username", "lea.roy"}, 2, "--phone"},
	} {
		_, errOut, code := cli(t, dir, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d %q; want %d, one line with %q", c.args[1:], code, errOut, c.code, c.want)
		}
	}
}
