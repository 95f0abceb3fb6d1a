package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
)

func TestInstitutionAndGrantCommands(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := cli(t, dir, "institution", "create", "--name", "Clinique médicale Omnimed",
		"--billing", "Clinique médicale Omnimed - 123", "--billing", "Omnimed - Succursale Nord - 456")
	if code != 0 {
		t.Fatalf("institution create: %d %s", code, errOut)
	}
	instID := lastWord(out)
	st := openStore(t, dir)
	ctx := context.Background()
	in, err := st.GetInstitution(ctx, instID)
	if err != nil {
		t.Fatalf("institution %q: %v", instID, err)
	}
	wantBilling := []store.BillingAccount{{Name: "Clinique médicale Omnimed", CustomerNumber: "123"},
		{Name: "Omnimed - Succursale Nord", CustomerNumber: "456"}}
	if in.Name != "Clinique médicale Omnimed" || !slices.Equal(in.BillingAccounts, wantBilling) {
		t.Fatalf("institution: %+v", in)
	}
	out, _, _ = cli(t, dir, "institution", "create", "--name", "CLSC Sud", "--billing", "CLSC Sud - 9")
	other := lastWord(out)

	if _, errOut, code := cli(t, dir, "user", "create", "--username", "nadia", "--email", "nadia@clinique.example",
		"--password", "une phrase de passe assez longue"); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	out, errOut, code = cli(t, dir, "user", "grant", "--username", "nadia", "--institution", instID,
		"--mandate", "Soins infirmiers", "--mandate", "reception", "--right", "account_requests")
	if code != 0 {
		t.Fatalf("grant: %d %s", code, errOut)
	}
	u, _ := st.GetUserByUsername(ctx, "nadia")
	m, err := st.GetMembership(ctx, u.ID, instID)
	if err != nil || !m.Primary || !slices.Equal(m.Mandates, []string{"Soins infirmiers", "reception"}) ||
		!slices.Equal(m.Rights, []string{"account_requests"}) {
		t.Fatalf("membership (the first is primary): %+v %v\n%s", m, err, out)
	}
	// A second institution made primary: exactly one primary; grants add up.
	if _, errOut, code := cli(t, dir, "user", "grant", "--username", "nadia", "--institution", other, "--primary"); code != 0 {
		t.Fatalf("grant primary: %s", errOut)
	}
	if _, errOut, code := cli(t, dir, "user", "grant", "--username", "nadia", "--institution", instID, "--right", "patient_merge"); code != 0 {
		t.Fatalf("grant right: %s", errOut)
	}
	ms, _ := st.ListMemberships(ctx, u.ID)
	primaries := 0
	for _, m := range ms {
		if m.Primary {
			primaries++
			if m.InstitutionID != other {
				t.Errorf("primary is %s, want %s", m.InstitutionID, other)
			}
		}
		if m.InstitutionID == instID && !slices.Equal(m.Rights, []string{"account_requests", "patient_merge"}) {
			t.Errorf("rights did not add up: %v", m.Rights)
		}
	}
	if primaries != 1 || len(ms) != 2 {
		t.Fatalf("memberships: %+v", ms)
	}
	events, _ := st.ListAuditEvents(ctx, store.AuditFilter{Type: "membership.granted"})
	if len(events) != 3 || events[0].ActorID != "cli" {
		t.Fatalf("audit: %+v", events)
	}

	for _, bad := range [][]string{
		{"institution", "create", "--name", "X", "--billing", "no number"},
		{"institution", "create", "--name", "", "--billing", "X - 1"},
		{"institution", "create", "--name", "<script>", "--billing", "X - 1"},
		{"institution", "create", "--name", "X\x01Y", "--billing", "X - 1"},
		{"institution", "create", "--name", "X", "--billing", "X - 1", "--billing", "Y - 1"},
		{"institution", "create", "--name", "X", "--billing", "X - 1; DROP TABLE users"},
		{"institution", "create", "--name", strings.Repeat("x", 300), "--billing", "X - 1"},
		{"user", "grant", "--username", "nadia", "--institution", instID, "--right", "superuser"},
		{"user", "grant", "--username", "nadia", "--institution", instID, "--mandate", "<b>"},
		{"user", "grant", "--username", "nobody", "--institution", instID},
		{"user", "grant", "--username", "nadia", "--institution", "no-such-institution"},
		{"user", "grant", "--username", "nadia"},
	} {
		_, errOut, code := cli(t, dir, bad...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 || errOut == "" {
			t.Errorf("%q: exit %d, want a one-line reason:\n%s", bad, code, errOut)
		}
	}
	list, _ := st.ListInstitutions(ctx)
	if len(list) != 2 {
		t.Fatalf("bad input created institutions: %+v", list)
	}
}

// `user grant --support` gives the support right (alone, or with an
// institution); `admin bootstrap` makes a support user.
func TestGrantSupport(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := cli(t, dir, "user", "create", "--username", "agent", "--email", "agent@sesame.example",
		"--password", "une phrase de passe assez longue"); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	out, errOut, code := cli(t, dir, "user", "grant", "--username", "agent", "--support")
	if code != 0 || !strings.Contains(out, "support") {
		t.Fatalf("grant --support: %d %s %s", code, out, errOut)
	}
	if _, _, code := cli(t, dir, "admin", "bootstrap", "--username", "boss", "--email", "boss@sesame.example"); code != 0 {
		t.Fatal("bootstrap")
	}
	if _, errOut, code := cli(t, dir, "user", "grant", "--username", "nobody", "--support"); code == 0 || errOut == "" {
		t.Errorf("unknown user: exit %d %q", code, errOut)
	}
	st := openStore(t, dir)
	ctx := context.Background()
	for _, name := range []string{"agent", "boss"} {
		if u, err := st.GetUserByUsername(ctx, name); err != nil || !u.Support {
			t.Errorf("%s: support %v (%v)", name, u.Support, err)
		}
	}
	if ev, _ := st.ListAuditEvents(ctx, store.AuditFilter{Type: "user.support_granted"}); len(ev) != 1 || ev[0].ActorID != "cli" {
		t.Errorf("audit: %+v", ev)
	}
}
