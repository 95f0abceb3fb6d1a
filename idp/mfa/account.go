package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/session"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/templates"
)

// AccountClientID is Sésame's own client: the account pages sign in
// through the same flow as any relying party.
const AccountClientID = "sesame-account"

// RecentFactor is how fresh a second factor must be for sensitive account
// changes (adding or removing a method, new recovery codes).
const RecentFactor = 10 * time.Minute

// AccountClient is the registration of the account pages' client.
func AccountClient(issuer string, now time.Time) store.Client {
	return store.Client{
		ID: AccountClientID, Name: "Sésame", Public: true, AuthMethod: "none", PKCERequired: true,
		RedirectURIs: []string{issuer + "/account/callback"},
		GrantTypes:   []string{"authorization_code"},
		Scopes:       []string{"openid"},
		TokenFormat:  "opaque", IDTokenAlg: "RS256",
		CreatedAt: now, UpdatedAt: now,
	}
}

// AccountRoutes mounts the security page.
func (h *Handler) AccountRoutes(mux *http.ServeMux, issuer string) {
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) { h.security(w, r, issuer) })
	mux.HandleFunc("GET /account/callback", h.accountCallback)
	mux.HandleFunc("GET /account/methods/add", func(w http.ResponseWriter, r *http.Request) { h.addMethod(w, r, issuer) })
	mux.HandleFunc("POST /account/methods/remove", func(w http.ResponseWriter, r *http.Request) { h.removeMethod(w, r, issuer) })
	mux.HandleFunc("POST /account/recovery", func(w http.ResponseWriter, r *http.Request) { h.regenerateFromAccount(w, r, issuer) })
	mux.HandleFunc("POST /account", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, h.path("/account"), http.StatusSeeOther)
	})
}

// accountRequest creates an auth request of the account client. Its code
// is never exchanged (the account pages use the session), but the client
// is public, so the request carries a PKCE challenge like any other; fresh
// forces the password and a second factor again.
func (h *Handler) accountRequest(r *http.Request, issuer string, fresh bool) (*oidcstore.AuthRequest, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	req := &oidc.AuthRequest{
		ClientID: AccountClientID, RedirectURI: issuer + "/account/callback",
		Scopes: []string{"openid"}, ResponseType: oidc.ResponseTypeCode,
		State:               base64.RawURLEncoding.EncodeToString(secret[:12]),
		CodeChallenge:       base64.RawURLEncoding.EncodeToString(sum[:]),
		CodeChallengeMethod: oidc.CodeChallengeMethodS256,
	}
	if fresh {
		req.Prompt = []string{oidc.PromptLogin}
		req.MaxAge = oidc.NewMaxAge(0)
	}
	a, err := h.Storage.CreateAuthRequest(r.Context(), req, "")
	if err != nil {
		return nil, err
	}
	return a.(*oidcstore.AuthRequest), nil
}

// signIn sends the browser through the sign-in flow of the account client.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, issuer string, fresh bool) {
	a, err := h.accountRequest(r, issuer, fresh)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.path("/login?flow="+url.QueryEscape(a.ID)), http.StatusSeeOther)
}

// accountCallback burns the code (the account pages use the session, not
// tokens) and shows the security page.
func (h *Handler) accountCallback(w http.ResponseWriter, r *http.Request) {
	if code := r.URL.Query().Get("code"); code != "" && len(code) < 1024 {
		if a, err := h.Storage.AuthRequestByCode(r.Context(), code); err == nil {
			_ = h.Storage.DeleteAuthRequest(r.Context(), a.GetID())
		}
	}
	http.Redirect(w, r, h.path("/account"), http.StatusSeeOther)
}

// account returns the signed-in user of a session verified from this
// network, or starts a sign-in.
func (h *Handler) account(w http.ResponseWriter, r *http.Request, issuer string) (*session.Session, store.User, bool) {
	s, err := h.Login.Sessions.Load(r)
	if err == nil && s.VerifiedOn(h.Login.Networks.Of(h.Login.Networks.ClientIP(r))) {
		if u, err := h.Store.GetUser(r.Context(), s.UserID); err == nil && u.Status == store.StatusActive {
			return s, u, true
		}
	}
	h.signIn(w, r, issuer, false)
	return nil, store.User{}, false
}

// sensitive returns the user when a second factor was verified within
// RecentFactor; otherwise it asks for the password and a factor again.
func (h *Handler) sensitive(w http.ResponseWriter, r *http.Request, issuer string) (*session.Session, store.User, bool) {
	if r.Method == http.MethodPost && !h.Login.CheckPost(w, r) {
		return nil, store.User{}, false
	}
	s, u, ok := h.account(w, r, issuer)
	if !ok {
		return nil, store.User{}, false
	}
	if s.FactorAt.IsZero() || h.now().Sub(s.FactorAt) > RecentFactor {
		h.signIn(w, r, issuer, true)
		return nil, store.User{}, false
	}
	return s, u, true
}

func (h *Handler) security(w http.ResponseWriter, r *http.Request, issuer string) {
	_, u, ok := h.account(w, r, issuer)
	if !ok {
		return
	}
	h.renderSecurity(w, r, u, "", nil)
}

func (h *Handler) renderSecurity(w http.ResponseWriter, r *http.Request, u store.User, notice string, args []any) {
	lang := h.Login.Lang(w, r, nil, u.Locale)
	factors, err := h.verifiedFactors(r.Context(), u.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var methods []templates.SecurityMethod
	for _, c := range factors {
		m := templates.SecurityMethod{ID: c.ID, Type: string(c.Type), Name: c.Name, Added: formatDay(c.CreatedAt)}
		if !c.LastUsedAt.IsZero() {
			m.LastUsed = formatDay(c.LastUsedAt)
		}
		if len(factors) > 1 { // never the last one
			m.RemoveAction = h.path("/account/methods/remove")
		}
		methods = append(methods, m)
	}
	b := h.Login.Base(w, r, lang)
	b.Notice, b.NoticeArgs = notice, args
	_ = h.Templates.Security(w, http.StatusOK, templates.SecurityPage{
		Base:              b,
		Username:          u.Username,
		Methods:           methods,
		AddMethodURL:      h.path("/account/methods/add"),
		RegenerateAction:  h.path("/account/recovery"),
		RemainingRecovery: h.remainingRecovery(r.Context(), u.ID),
	})
}

func formatDay(t time.Time) string { return t.In(montreal).Format("2006-01-02 15:04") }

// addMethod starts an enrollment for a signed-in user with a recent second
// factor: a flow of the account client, already past its factors.
func (h *Handler) addMethod(w http.ResponseWriter, r *http.Request, issuer string) {
	s, u, ok := h.sensitive(w, r, issuer)
	if !ok {
		return
	}
	a, err := h.accountRequest(r, issuer, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	a.Flow = oidcstore.Flow{
		Browser: h.Login.Sessions.BrowserHash(r), UserID: u.ID, PasswordAt: s.AuthTime,
		Step: stepVerified, Factors: withoutPwdMFA(s.AMR),
	}
	if !h.save(w, r, a) {
		return
	}
	http.Redirect(w, r, h.flowURL("/mfa/setup", a), http.StatusSeeOther)
}

func withoutPwdMFA(amr []string) []string {
	var out []string
	for _, v := range amr {
		if v != "pwd" && v != "mfa" {
			out = append(out, v)
		}
	}
	return out
}

func (h *Handler) removeMethod(w http.ResponseWriter, r *http.Request, issuer string) {
	_, u, ok := h.sensitive(w, r, issuer)
	if !ok {
		return
	}
	id := r.PostFormValue("id")
	var removed store.Credential
	err := h.Store.InTx(r.Context(), func(tx store.Tx) error {
		creds, err := tx.ListCredentials(r.Context(), u.ID, "")
		if err != nil {
			return err
		}
		usable := 0
		for _, c := range creds {
			if c.Type != store.CredPassword && !c.VerifiedAt.IsZero() {
				usable++
			}
			if c.ID == id && c.Type != store.CredPassword {
				removed = c
			}
		}
		if removed.ID == "" {
			return store.ErrNotFound
		}
		if usable <= 1 && !removed.VerifiedAt.IsZero() {
			return errLastMethod
		}
		if err := tx.DeleteCredential(r.Context(), id); err != nil {
			return err
		}
		return tx.AppendAuditEvent(r.Context(), h.event(r, store.AuditEvent{Type: "mfa.removed", ActorID: u.ID, UserID: u.ID,
			Details: map[string]string{"method": string(removed.Type), "credential_id": id}}))
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errLastMethod):
		h.Login.ErrorPage(w, r, http.StatusBadRequest, "", "error.forbidden.title", "error.forbidden.message")
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	h.renderSecurity(w, r, u, "notice.method_removed", []any{removed.Name})
}

var errLastMethod = errors.New("mfa: the last method cannot be removed")

func (h *Handler) regenerateFromAccount(w http.ResponseWriter, r *http.Request, issuer string) {
	_, u, ok := h.sensitive(w, r, issuer)
	if !ok {
		return
	}
	codes, err := h.Regenerate(r, u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	_ = h.Templates.RecoveryCodes(w, http.StatusOK, templates.RecoveryCodesPage{
		Base:           h.Login.Base(w, r, h.Login.Lang(w, r, nil, u.Locale)),
		Codes:          codes,
		ContinueAction: h.path("/account"),
		Regenerated:    true,
	})
}
