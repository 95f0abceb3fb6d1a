package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp/mfa"
	"github.com/sesame-idp/sesame/idp/seal"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/internal/signin"
	"github.com/sesame-idp/sesame/internal/testenv"
)

// TestThreeNodes: three `sesame serve` processes share one PostgreSQL
// schema, one Redis (under a prefix of the test) and the sealing key. A
// sign-in moves from node to node at each step (authorize on node 1,
// password on node 2, second factor on node 3), the code is exchanged on
// node 1 and the refresh token rotated on node 2; a code used on node 2 is
// refused on node 3. The JSON logs of all three carry request ids and no
// password, code, token or secret.
func TestThreeNodes(t *testing.T) {
	pgURL := testenv.PostgresSchema(t)
	redisURL := testenv.RedisURL(t)
	root := t.TempDir()
	prefix := "sesame-test-" + filepath.Base(root) + ":"
	t.Cleanup(func() { testenv.CleanRedisPrefix(t, redisURL, prefix) })
	const issuer = "http://127.0.0.1:9" // the balancer's address: never contacted
	env := []string{
		"SESAME_DATABASE_URL=" + pgURL, "SESAME_REDIS_URL=" + redisURL, "SESAME_REDIS_PREFIX=" + prefix,
		"SESAME_SEAL_KEY=" + seal.FormatKey(seal.GenerateKey()), "SESAME_ISSUER=" + issuer,
		"SESAME_LOG_FORMAT=json", "SESAME_DEMO_ENABLED=false",
	}
	var nodes []*server
	for i := range 3 {
		dir := filepath.Join(root, "node"+string(rune('1'+i)))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, startServe(t, dir, env...))
	}

	// Provisioning through the CLI, against the same database.
	const password = "Tr0ub4dor&3-correct-horse"
	secrets := map[string][]byte{}
	for _, name := range []string{"sophie", "marc"} {
		secret := users.NewTOTPSecret()
		secrets[name] = secret
		if out, errOut, code := cliEnv(t, root, env, "user", "create", "--username", name, "--email", name+"@clinic.example",
			"--password", password, "--totp-secret", users.EncodeSecret(secret)); code != 0 {
			t.Fatalf("user create %s: %d %s %s", name, code, out, errOut)
		}
	}
	out, errOut, code := cliEnv(t, root, env, "client", "create", "--id", "emr", "--redirect-uri", "http://localhost:9999/cb",
		"--grant", "authorization_code,refresh_token")
	if code != 0 {
		t.Fatalf("client create: %d %s %s", code, out, errOut)
	}
	rp := &signin.Client{Issuer: issuer, ClientID: "emr", ClientSecret: lastWord(out),
		RedirectURI: "http://localhost:9999/cb", Scopes: []string{"openid", "profile", "offline_access"}}
	totp := func(name string) func() (string, error) {
		return func() (string, error) { return mfa.TOTPCode(secrets[name], mfa.TOTPStep(time.Now())), nil }
	}
	route := func(s signin.Step) string { return nodes[int(s)].url } // authorize 1, password 2, factor 3

	ctx := context.Background()
	c, err := rp.NewBrowser().SignIn(ctx, route, "sophie", password, totp("sophie"))
	if err != nil {
		t.Fatalf("sign-in across three nodes: %v", err)
	}
	tok, err := rp.Exchange(ctx, nodes[0].url, c)
	if err != nil {
		t.Fatalf("code exchange on node 1: %v", err)
	}
	if tok.IDToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token response lacks an ID or refresh token: %+v", tok)
	}
	tok2, err := rp.Refresh(ctx, nodes[1].url, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh on node 2: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh token not rotated")
	}
	if claims, err := rp.UserInfo(ctx, nodes[2].url, tok2.AccessToken); err != nil || claims["sub"] == nil {
		t.Fatalf("userinfo on node 3 with node 2's token: %v %v", claims, err)
	}

	// A code used on node 2 cannot be used again on node 3.
	c2, err := rp.NewBrowser().SignIn(ctx, route, "marc", password, totp("marc"))
	if err != nil {
		t.Fatalf("second sign-in: %v", err)
	}
	tok3, err := rp.Exchange(ctx, nodes[1].url, c2)
	if err != nil {
		t.Fatalf("code exchange on node 2: %v", err)
	}
	if _, err := rp.Exchange(ctx, nodes[2].url, c2); signin.OAuthError(err) != "invalid_grant" {
		t.Fatalf("the same code on node 3: %v, want invalid_grant", err)
	}
	// …and its reuse revoked what it issued, on every node.
	if _, err := rp.Refresh(ctx, nodes[0].url, tok3.RefreshToken); signin.OAuthError(err) != "invalid_grant" {
		t.Errorf("refresh token of a replayed code on node 1: %v, want invalid_grant", err)
	}

	// The JWKS is the same on every node.
	var jwks []string
	for _, n := range nodes {
		b, err := rp.Get(ctx, n.url, "/keys")
		if err != nil {
			t.Fatal(err)
		}
		jwks = append(jwks, string(b))
	}
	if jwks[0] != jwks[1] || jwks[1] != jwks[2] {
		t.Errorf("JWKS differ between nodes:\n%s\n%s\n%s", jwks[0], jwks[1], jwks[2])
	}

	// Logs: JSON lines, request ids, no secret.
	secretsInLogs := []string{password, c.Code, c2.Code, c.Verifier, tok.AccessToken, tok.RefreshToken, tok.IDToken,
		tok2.AccessToken, tok2.RefreshToken, tok3.AccessToken, tok3.RefreshToken, rp.ClientSecret,
		users.EncodeSecret(secrets["sophie"]), users.EncodeSecret(secrets["marc"])}
	withUser := 0
	for i, n := range nodes {
		logs := n.logs.String()
		for _, s := range secretsInLogs {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("node %d logged a secret (%.12s…)", i+1, s)
			}
		}
		sc := bufio.NewScanner(strings.NewReader(logs))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		requests := 0
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("node %d: a log line is not JSON: %s", i+1, sc.Text())
				continue
			}
			if line["msg"] == "http request" {
				requests++
				if id, _ := line["request_id"].(string); id == "" {
					t.Errorf("node %d: request logged without request_id: %s", i+1, sc.Text())
				}
				if _, ok := line["user_id"]; ok {
					withUser++
				}
			}
		}
		if requests == 0 {
			t.Errorf("node %d logged no request", i+1)
		}
	}
	if withUser == 0 {
		t.Error("no request log line names the user")
	}
}
