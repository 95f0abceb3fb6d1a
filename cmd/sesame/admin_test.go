package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/store/sqlite"
)

// cli runs the binary in dir and returns stdout, stderr and the exit code.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SESAME_LOG_LEVEL=warn"}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "data", "sesame.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestClientCommands(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := cli(t, dir, "client", "create", "--id", "emr", "--redirect-uri", "https://emr.example/cb",
		"--redirect-uri", "https://emr.example/cb2", "--post-logout-uri", "https://emr.example/bye",
		"--grant", "authorization_code,refresh_token,client_credentials", "--scope", "openid profile sesame:institutions", "--token-format", "jwt")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	secret := lastWord(out)
	if len(secret) < 40 {
		t.Fatalf("secret %q is not the last word of stdout:\n%s", secret, out)
	}
	st := openStore(t, dir)
	c, err := st.GetClient(context.Background(), "emr")
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretHash == secret || c.SecretHash == "" || len(c.RedirectURIs) != 2 || c.TokenFormat != "jwt" || len(c.Scopes) != 3 {
		t.Fatalf("stored client: %+v", c)
	}

	out, _, code = cli(t, dir, "client", "create", "--id", "spa", "--redirect-uri", "http://localhost:3000/cb", "--public")
	if code != 0 || strings.Contains(out, "secret (shown") {
		t.Fatalf("public create: %d %s", code, out)
	}
	if c, _ := st.GetClient(context.Background(), "spa"); !c.Public || !c.PKCERequired || c.SecretHash != "" {
		t.Fatalf("public client: %+v", c)
	}

	out, _, code = cli(t, dir, "client", "list")
	if code != 0 || !strings.Contains(out, "emr") || !strings.Contains(out, "spa") || !strings.Contains(out, "public") {
		t.Fatalf("list: %d\n%s", code, out)
	}

	out, _, code = cli(t, dir, "client", "rotate-secret", "--id", "emr")
	if code != 0 || lastWord(out) == secret || len(lastWord(out)) < 40 {
		t.Fatalf("rotate: %d\n%s", code, out)
	}

	for _, bad := range [][]string{
		{"client", "create", "--id", "emr", "--redirect-uri", "https://emr.example/cb"},    // exists
		{"client", "create", "--id", "x:y", "--redirect-uri", "https://emr.example/cb"},    // bad id
		{"client", "create", "--id", "z", "--redirect-uri", "http://emr.example/cb"},       // http off loopback
		{"client", "create", "--id", "z", "--redirect-uri", "https://emr.example/cb#frag"}, // fragment
		{"client", "create", "--id", "z", "--redirect-uri", "https://e/cb", "--grant", "implicit"},
		{"client", "create", "--id", "z", "--redirect-uri", "https://e/cb", "--token-format", "xml"},
		{"client", "delete", "--id", "nope"},
		{"client", "frobnicate"},
	} {
		_, errOut, code := cli(t, dir, bad...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 || !strings.HasPrefix(errOut, "sesame: ") {
			t.Errorf("%v: exit %d, want a one-line reason:\n%s", bad, code, errOut)
		}
	}

	if _, errOut, code := cli(t, dir, "client", "delete", "spa"); code != 0 {
		t.Fatalf("delete: %d %s", code, errOut)
	}
	if _, err := st.GetClient(context.Background(), "spa"); err == nil {
		t.Fatal("client not deleted")
	}
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := cli(t, dir, "user", "create", "--username", "Sophie.Tremblay", "--email", "sophie@clinique.example",
		"--password", "une phrase de passe assez longue", "--given-name", "Sophie", "--family-name", "Tremblay",
		"--locale", "fr-CA", "--totp-secret", "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	id := lastWord(out)
	st := openStore(t, dir)
	u, err := st.GetUser(context.Background(), id)
	if err != nil || u.Username != "sophie.tremblay" || u.Status != store.StatusActive {
		t.Fatalf("user %q: %+v %v", id, u, err)
	}
	creds, _ := st.ListCredentials(context.Background(), id, store.CredTOTP)
	if len(creds) != 1 || creds[0].VerifiedAt.IsZero() || strings.Contains(string(creds[0].Secret), "JBSW") {
		t.Fatalf("imported authenticator: %+v", creds)
	}

	for _, bad := range [][]string{
		{"user", "create", "--username", "x", "--email", "x@example.org", "--password", "long enough password"},    // short username
		{"user", "create", "--username", "nadia", "--email", "not-an-email", "--password", "long enough password"}, // email
		{"user", "create", "--username", "nadia", "--email", "n@example.org", "--password", "short"},               // policy
		{"user", "create", "--username", "nadia", "--email", "n@example.org", "--password", "password123"},         // common
		{"user", "create", "--username", "nadia", "--email", "n@example.org", "--password", "long enough password", "--totp-secret", "not base32!"},
		{"user", "create", "--username", "nadia", "--email", "n@example.org", "--password", "long enough password", "--locale", "de-DE"},
		{"user", "create", "--username", "sophie.tremblay", "--email", "s@example.org", "--password", "long enough password"}, // taken
	} {
		_, errOut, code := cli(t, dir, bad...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d, want a one-line reason:\n%s", bad[1:], code, errOut)
		}
	}

	file := filepath.Join(dir, "users.jsonl")
	os.WriteFile(file, []byte(`{"username":"nadia","email":"nadia@clinique.example","password":"une autre phrase de passe"}
{"username":"marc","email":"marc@clinique.example","password":"encore une phrase de passe","locale":"en-CA"}
`), 0o600)
	out, errOut, code = cli(t, dir, "user", "import", file)
	if code != 0 || !strings.Contains(out, "imported 2 users") {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	// A bad line: nothing is imported, the line is named.
	os.WriteFile(file, []byte(`{"username":"lea","email":"lea@clinique.example","password":"une phrase de passe"}
{"username":"zoe","email":"zoe","password":"une phrase de passe"}
`), 0o600)
	_, errOut, code = cli(t, dir, "user", "import", file)
	if code == 0 || !strings.Contains(errOut, "line 2") {
		t.Fatalf("bad import: %d %s", code, errOut)
	}
	if _, err := st.GetUserByUsername(context.Background(), "lea"); err == nil {
		t.Fatal("a failed import created users")
	}

	out, errOut, code = cli(t, dir, "user", "mfa-grace", "--username", "nadia", "--until", "now")
	if code != 0 || !strings.Contains(out, "nadia") {
		t.Fatalf("mfa-grace: %d %s", code, errOut)
	}
	if _, _, code := cli(t, dir, "user", "mfa-grace", "--username", "nadia", "--until", "2099-01-01"); code != 2 {
		t.Fatalf("a grace period of years was accepted: %d", code)
	}
}

func TestAdminBootstrapAndKeysRotate(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := cli(t, dir, "admin", "bootstrap", "--username", "admin.clinique", "--email", "it@clinique.example")
	if code != 0 || !strings.Contains(lastWord(out), "/activate?token=") {
		t.Fatalf("bootstrap: %d %s %s", code, out, errOut)
	}
	st := openStore(t, dir)
	u, err := st.GetUserByUsername(context.Background(), "admin.clinique")
	if err != nil || u.Status != store.StatusPendingActivation {
		t.Fatalf("admin: %+v %v", u, err)
	}
	if _, _, code := cli(t, dir, "admin", "bootstrap", "--username", "admin.clinique", "--email", "it@clinique.example"); code == 0 {
		t.Fatal("bootstrap of an existing username succeeded")
	}

	out, errOut, code = cli(t, dir, "keys", "rotate")
	if code != 0 {
		t.Fatalf("rotate: %d %s", code, errOut)
	}
	first := lastWord(out)
	out, _, _ = cli(t, dir, "keys", "rotate")
	if second := lastWord(out); second == first || second == "" {
		t.Fatalf("rotation did not change the active key: %q → %q", first, second)
	}
	keys, _ := st.ListSigningKeys(context.Background())
	states := map[store.KeyState]int{}
	for _, k := range keys {
		if k.Alg == "RS256" {
			states[k.State]++
		}
	}
	if states[store.KeyActive] != 1 || states[store.KeyNext] != 1 || states[store.KeyRetired] < 1 {
		t.Fatalf("key states after rotation: %v", states)
	}
}

func TestFirstStartPrintsAdminActivationLink(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	_ = s
	// The link goes to stdout, which startServe does not capture: check the store.
	st := openStore(t, dir)
	u, err := st.GetUserByUsername(context.Background(), "admin")
	if err != nil || u.Status != store.StatusPendingActivation {
		t.Fatalf("first admin: %+v %v", u, err)
	}
	if _, err := st.GetClient(context.Background(), "sesame-demo"); err != nil {
		t.Fatalf("demo client not registered: %v", err)
	}
}

// TestCommandsRefuseBadText: a flag, an argument or an imported field
// that is not text a store can hold (control characters, invalid UTF-8)
// is a usage error naming it, on one line, without the value; nothing is
// created.
func TestCommandsRefuseBadText(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"user", "create", "--username", "nadia", "--email", "n@example.org", "--password", "long enough password", "--given-name", "Nadia\x1b[31m"}, "--given-name"},
		{[]string{"user", "create", "--username", "nadia", "--email", "n@example.org", "--password", "long enough\x7fpassword"}, "--password"},
		{[]string{"user", "create", "--username", "na\xffdia", "--email", "n@example.org", "--password", "long enough password"}, "--username"},
		{[]string{"user", "unlock", "--username", "nadia\x01"}, "--username"},
		{[]string{"user", "mfa-grace", "--username", "nadia\x02", "--until", "now"}, "--username"},
		{[]string{"client", "create", "--id", "emr", "--name", "EMR\x07", "--redirect-uri", "https://emr.example/cb"}, "--name"},
		{[]string{"client", "delete", "emr\x03"}, "argument 1"},
	} {
		_, errOut, code := cli(t, dir, tt.args...)
		line := strings.TrimSpace(errOut)
		if code != 2 || strings.Contains(line, "\n") || !strings.Contains(line, tt.flag+":") || strings.Contains(line, "Nadia") || strings.Contains(line, "enough") {
			t.Errorf("%q: exit %d, want 2 naming %s on one line:\n%s", tt.args, code, tt.flag, errOut)
		}
	}
	file := filepath.Join(dir, "users.jsonl")
	os.WriteFile(file, []byte(`{"username":"lea","email":"lea@clinique.example","password":"une phrase de passe","given_name":"L\u0000a"}`+"\n"), 0o600)
	_, errOut, code := cli(t, dir, "user", "import", file)
	if code != 2 || !strings.Contains(errOut, "line 1") || !strings.Contains(errOut, "--given-name") {
		t.Errorf("import with a NUL: exit %d %s", code, errOut)
	}
	// Refused before the store was even opened.
	if _, err := os.Stat(filepath.Join(dir, "data", "sesame.db")); err == nil {
		t.Error("a refused command opened the store")
	}
}
