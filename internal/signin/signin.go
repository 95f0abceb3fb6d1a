package signin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/oauth2"
)

// Step names a part of a sign-in, so that a Route can send each to
// another node.
type Step int

const (
	// StepAuthorize: GET /authorize and the sign-in page.
	StepAuthorize Step = iota
	// StepPassword: the password form and the page that follows.
	StepPassword
	// StepFactor: the second-factor form and the callback that issues the code.
	StepFactor
)

// Route returns the base URL ("http://127.0.0.1:8081") a step is sent to;
// nil, or "", sends everything to the issuer.
type Route func(Step) string

// Client is a relying party: its registration at the issuer.
type Client struct {
	// Issuer is the configured issuer: the URLs the server writes start
	// with it, and are sent to the step's node instead.
	Issuer       string
	ClientID     string
	ClientSecret string // empty for a public client
	RedirectURI  string
	Scopes       []string
	// HTTP carries every request (its Jar and CheckRedirect are not used);
	// nil: http.DefaultClient's transport.
	HTTP *http.Client
}

// StatusError is an answer that was not the one expected.
type StatusError struct {
	Op     string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	body := e.Body
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("%s: status %d: %s", e.Op, e.Status, body)
}

// OAuthError returns the "error" member of a JSON error answer, or "".
func OAuthError(err error) string {
	var se *StatusError
	if !errors.As(err, &se) {
		return ""
	}
	var v struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(se.Body), &v)
	return v.Error
}

// Browser is one user's browser: a cookie jar that follows no redirect by
// itself.
type Browser struct {
	c    *Client
	http *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func (c *Client) NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	var tr http.RoundTripper
	if c.HTTP != nil {
		tr = c.HTTP.Transport
	}
	return &Browser{c: c, http: &http.Client{
		Transport:     tr,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Code is what a sign-in ends with.
type Code struct {
	Code, Verifier, State string
}

// SignIn runs authorize → password → second factor, each step on the node
// route gives, and returns the authorization code. code gives the
// second-factor code when the challenge asks for it.
func (b *Browser) SignIn(ctx context.Context, route Route, username, password string, code func() (string, error)) (Code, error) {
	base := func(s Step) string {
		if route != nil {
			if u := route(s); u != "" {
				return strings.TrimSuffix(u, "/")
			}
		}
		return strings.TrimSuffix(b.c.Issuer, "/")
	}
	verifier, state := oauth2.GenerateVerifier(), randomString()
	q := url.Values{
		"client_id": {b.c.ClientID}, "redirect_uri": {b.c.RedirectURI}, "response_type": {"code"},
		"scope": {strings.Join(b.c.Scopes, " ")}, "state": {state}, "nonce": {randomString()},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	p, err := b.follow(ctx, base(StepAuthorize), http.MethodGet, base(StepAuthorize)+"/authorize?"+q.Encode(), nil)
	if err != nil {
		return Code{}, fmt.Errorf("authorize: %w", err)
	}
	action, vals, err := p.form("login")
	if err != nil {
		return Code{}, err
	}
	vals.Set("username", username)
	vals.Set("password", password)
	if p, err = b.follow(ctx, base(StepPassword), http.MethodPost, action, vals); err != nil {
		return Code{}, fmt.Errorf("password: %w", err)
	}
	if p.redirect == nil {
		action, vals, err := p.form("mfa")
		if err != nil {
			return Code{}, err
		}
		c, err := code()
		if err != nil {
			return Code{}, err
		}
		vals.Set("code", c)
		if p, err = b.follow(ctx, base(StepFactor), http.MethodPost, action, vals); err != nil {
			return Code{}, fmt.Errorf("second factor: %w", err)
		}
	}
	if p.redirect == nil {
		return Code{}, &StatusError{Op: "sign-in did not reach the relying party", Status: p.status, Body: p.body}
	}
	rq := p.redirect.Query()
	if rq.Get("state") != state || rq.Get("code") == "" {
		return Code{}, fmt.Errorf("redirect to the relying party without a code or with another state: %v", rq)
	}
	return Code{Code: rq.Get("code"), Verifier: verifier, State: state}, nil
}

// page is an HTML page reached, or the redirect to the relying party.
type page struct {
	status   int
	url      *url.URL
	body     string
	redirect *url.URL
}

// follow sends a request to node, then follows its redirects there until
// a 200 page or the redirect to the relying party.
func (b *Browser) follow(ctx context.Context, node, method, target string, form url.Values) (page, error) {
	for range 10 {
		u, err := b.onNode(node, target)
		if err != nil {
			return page{}, err
		}
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
		if err != nil {
			return page{}, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := b.http.Do(req)
		if err != nil {
			return page{}, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return page{}, err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return page{status: resp.StatusCode, url: u, body: string(data)}, nil
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			loc := resp.Header.Get("Location")
			if strings.HasPrefix(loc, b.c.RedirectURI) {
				r, err := url.Parse(loc)
				if err != nil {
					return page{}, err
				}
				return page{status: resp.StatusCode, url: u, redirect: r}, nil
			}
			ref, err := url.Parse(loc)
			if err != nil {
				return page{}, err
			}
			target, method, form = u.ResolveReference(ref).String(), http.MethodGet, nil
		default:
			return page{}, &StatusError{Op: method + " " + u.Path, Status: resp.StatusCode, Body: string(data)}
		}
	}
	return page{}, errors.New("too many redirects")
}

// onNode rewrites a URL of the issuer (or of any node) to node.
func (b *Browser) onNode(node, target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	n, err := url.Parse(node)
	if err != nil {
		return nil, err
	}
	u.Scheme, u.Host = n.Scheme, n.Host
	return u, nil
}

var (
	formRE  = regexp.MustCompile(`(?s)<form[^>]*id="([^"]+)"[^>]*>.*?</form>`)
	actRE   = regexp.MustCompile(`action="([^"]*)"`)
	inputRE = regexp.MustCompile(`<input[^>]*>`)
	attrRE  = regexp.MustCompile(`(\w[\w-]*)="([^"]*)"`)
)

// form returns form#id's absolute action and its inputs' values.
func (p page) form(id string) (string, url.Values, error) {
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] != id {
			continue
		}
		action := p.url.String()
		if a := actRE.FindStringSubmatch(m[0]); a != nil && a[1] != "" {
			ref, err := url.Parse(html.UnescapeString(a[1]))
			if err != nil {
				return "", nil, err
			}
			action = p.url.ResolveReference(ref).String()
		}
		vals := url.Values{}
		for _, in := range inputRE.FindAllString(m[0], -1) {
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["name"] != "" {
				vals.Set(attrs["name"], attrs["value"])
			}
		}
		return action, vals, nil
	}
	return "", nil, &StatusError{Op: "no form#" + id + " on " + p.url.Path, Status: p.status, Body: p.body}
}

// Tokens is a token response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

// Exchange trades a code at node's token endpoint.
func (c *Client) Exchange(ctx context.Context, node string, code Code) (Tokens, error) {
	return c.token(ctx, node, url.Values{"grant_type": {"authorization_code"}, "code": {code.Code},
		"redirect_uri": {c.RedirectURI}, "code_verifier": {code.Verifier}})
}

// Refresh trades a refresh token at node's token endpoint.
func (c *Client) Refresh(ctx context.Context, node, refreshToken string) (Tokens, error) {
	return c.token(ctx, node, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// ClientCredentials asks node's token endpoint for the client's own token.
func (c *Client) ClientCredentials(ctx context.Context, node, scope string) (Tokens, error) {
	return c.token(ctx, node, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
}

func (c *Client) token(ctx context.Context, node string, form url.Values) (Tokens, error) {
	var t Tokens
	body, err := c.post(ctx, node+"/oauth/token", form)
	if err != nil {
		return t, fmt.Errorf("token (%s): %w", form.Get("grant_type"), err)
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return t, fmt.Errorf("token response: %w", err)
	}
	if t.AccessToken == "" {
		return t, errors.New("token response without an access token")
	}
	return t, nil
}

// Introspect asks node whether token is active (RFC 7662).
func (c *Client) Introspect(ctx context.Context, node, token string) (bool, error) {
	body, err := c.post(ctx, node+"/oauth/introspect", url.Values{"token": {token}})
	if err != nil {
		return false, fmt.Errorf("introspect: %w", err)
	}
	var v struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return false, fmt.Errorf("introspection response: %w", err)
	}
	return v.Active, nil
}

// UserInfo calls node's userinfo endpoint with an access token and
// returns the claims.
func (c *Client) UserInfo(ctx context.Context, node, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+"/userinfo", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	body, err := c.do(req, "userinfo")
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, fmt.Errorf("userinfo response: %w", err)
	}
	return claims, nil
}

// Get fetches node+path (discovery, JWKS) and returns the body of a 200.
func (c *Client) Get(ctx context.Context, node, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+path, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, "GET "+path)
}

func (c *Client) post(ctx context.Context, u string, form url.Values) ([]byte, error) {
	if c.ClientSecret == "" {
		form.Set("client_id", c.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	return c.do(req, "POST "+req.URL.Path)
}

func (c *Client) do(req *http.Request, op string) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Op: op, Status: resp.StatusCode, Body: string(body)}
	}
	return body, nil
}

func randomString() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Reauthorize sends a new authorization request to node from a browser
// already signed in: the session answers it, and the code comes back
// without any page.
func (b *Browser) Reauthorize(ctx context.Context, node string) (Code, error) {
	node = strings.TrimSuffix(node, "/")
	verifier, state := oauth2.GenerateVerifier(), randomString()
	q := url.Values{
		"client_id": {b.c.ClientID}, "redirect_uri": {b.c.RedirectURI}, "response_type": {"code"},
		"scope": {strings.Join(b.c.Scopes, " ")}, "state": {state}, "nonce": {randomString()},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	p, err := b.follow(ctx, node, http.MethodGet, node+"/authorize?"+q.Encode(), nil)
	if err != nil {
		return Code{}, fmt.Errorf("authorize: %w", err)
	}
	if p.redirect == nil {
		return Code{}, &StatusError{Op: "authorize with a session showed a page", Status: p.status, Body: p.body}
	}
	rq := p.redirect.Query()
	if rq.Get("state") != state || rq.Get("code") == "" {
		return Code{}, fmt.Errorf("redirect to the relying party without a code or with another state: %v", rq)
	}
	return Code{Code: rq.Get("code"), Verifier: verifier, State: state}, nil
}
