package idp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DemoClientID is the public client the demo relying party signs in with.
const DemoClientID = "sesame-demo"

// demo is a tiny relying party served at /demo, so that a newcomer sees the
// whole job from `go run ./cmd/sesame`: it signs in through Sésame (code +
// PKCE, as a public client) and shows the ID token's claims.
type demo struct {
	s      *Server
	prefix string

	mu       sync.Mutex
	verifier *gooidc.IDTokenVerifier
	conf     *oauth2.Config
}

func (d *demo) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /demo", d.home)
	mux.HandleFunc("GET /demo/login", d.login)
	mux.HandleFunc("GET /demo/callback", d.callback)
}

const demoCookie = "sesame_demo"

// setup discovers the provider through its own issuer URL, once.
func (d *demo) setup(r *http.Request) (*oauth2.Config, *gooidc.IDTokenVerifier, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conf != nil {
		return d.conf, d.verifier, nil
	}
	p, err := gooidc.NewProvider(d.ctx(r), d.s.Issuer)
	if err != nil {
		return nil, nil, err
	}
	d.conf = &oauth2.Config{
		ClientID:    d.clientID(),
		Endpoint:    p.Endpoint(),
		RedirectURL: d.s.Issuer + "/demo/callback",
		Scopes:      []string{gooidc.ScopeOpenID, "profile", "email"},
	}
	d.verifier = p.Verifier(&gooidc.Config{ClientID: d.clientID()})
	return d.conf, d.verifier, nil
}

func (d *demo) clientID() string {
	if d.s.DemoClientID != "" {
		return d.s.DemoClientID
	}
	return DemoClientID
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sésame — démo</title><link rel="stylesheet" href="{{.Prefix}}/static/sesame.css"></head>
<body><main class="card">
<h1>Application de démonstration / Demo application</h1>
{{if .Claims}}
<p id="demo-signed-in">Connecté·e / Signed in: <strong>{{.Subject}}</strong></p>
<h2>ID token</h2>
<pre id="claims">{{.Claims}}</pre>
<p><a class="button" href="{{.Logout}}">Se déconnecter / Sign out</a></p>
{{else}}
<p>Cette application se connecte avec Sésame. / This application signs in with Sésame.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<p><a class="button" id="demo-login" href="{{.Prefix}}/demo/login">Se connecter avec Sésame / Sign in with Sésame</a></p>
{{end}}
</main></body></html>`))

type demoData struct {
	Prefix, Subject, Claims, Logout, Error string
}

func (d *demo) render(w http.ResponseWriter, status int, data demoData) {
	data.Prefix = d.prefix
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	setNoStore(w.Header()) // the callback shows ID token claims and a logout link with the ID token
	w.WriteHeader(status)
	_ = demoPage.Execute(w, data)
}

func (d *demo) home(w http.ResponseWriter, r *http.Request) {
	d.render(w, http.StatusOK, demoData{})
}

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (d *demo) login(w http.ResponseWriter, r *http.Request) {
	conf, _, err := d.setup(r)
	if err != nil {
		d.s.Logger.Error("demo: discovery", "err", err)
		d.render(w, http.StatusServiceUnavailable, demoData{Error: "Discovery failed / La découverte a échoué."})
		return
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{
		Name: demoCookie, Value: url.Values{"s": {state}, "n": {nonce}, "v": {verifier}}.Encode(),
		Path: d.prefix + "/demo", MaxAge: 600, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (d *demo) callback(w http.ResponseWriter, r *http.Request) {
	conf, verifier, err := d.setup(r)
	if err != nil {
		d.render(w, http.StatusServiceUnavailable, demoData{Error: "Discovery failed / La découverte a échoué."})
		return
	}
	c, err := r.Cookie(demoCookie)
	if err != nil {
		d.render(w, http.StatusBadRequest, demoData{Error: "Sign-in expired, start again. / Connexion expirée, recommencez."})
		return
	}
	saved, _ := url.ParseQuery(c.Value)
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		d.render(w, http.StatusOK, demoData{Error: "Sésame: " + e})
		return
	}
	if q.Get("state") == "" || q.Get("state") != saved.Get("s") {
		d.render(w, http.StatusBadRequest, demoData{Error: "State mismatch / État incohérent."})
		return
	}
	tok, err := conf.Exchange(d.ctx(r), q.Get("code"), oauth2.VerifierOption(saved.Get("v")))
	if err != nil {
		d.render(w, http.StatusBadRequest, demoData{Error: "Code exchange failed / Échange du code refusé."})
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(d.ctx(r), raw)
	if err != nil || idt.Nonce != saved.Get("n") {
		d.render(w, http.StatusBadRequest, demoData{Error: "Invalid ID token / Jeton d'identité invalide."})
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	pretty, _ := json.MarshalIndent(claims, "", "  ")
	http.SetCookie(w, &http.Cookie{Name: demoCookie, Path: d.prefix + "/demo", MaxAge: -1})
	logout := d.s.Issuer + "/end_session?" + url.Values{
		"id_token_hint":            {raw},
		"post_logout_redirect_uri": {d.s.Issuer + "/demo"},
		"state":                    {randomString()},
	}.Encode()
	d.render(w, http.StatusOK, demoData{Subject: idt.Subject, Claims: string(pretty), Logout: logout})
}

// ctx bounds the demo's calls to its own issuer.
func (d *demo) ctx(r *http.Request) context.Context {
	return gooidc.ClientContext(r.Context(), &http.Client{Timeout: 10 * time.Second})
}
