package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
	"github.com/sesame-idp/sesame/idp/web"
)

// clientJSON is a registered client, without its secret's hash.
type clientJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Public         bool      `json:"public"`
	RedirectURIs   []string  `json:"redirect_uris"`
	PostLogoutURIs []string  `json:"post_logout_uris"`
	GrantTypes     []string  `json:"grant_types"`
	Scopes         []string  `json:"scopes"`
	AuthMethod     string    `json:"auth_method"`
	PKCERequired   bool      `json:"pkce_required"`
	TokenFormat    string    `json:"token_format"`
	SigningAlg     string    `json:"signing_alg"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// ClientSecret is given once, when the client is created or its
	// secret rotated.
	ClientSecret string `json:"client_secret,omitempty"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func clientOf(c store.Client) clientJSON {
	return clientJSON{
		ID: c.ID, Name: c.Name, Public: c.Public, RedirectURIs: nonNil(c.RedirectURIs), PostLogoutURIs: nonNil(c.PostLogoutURIs),
		GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes), AuthMethod: c.AuthMethod, PKCERequired: c.PKCERequired,
		TokenFormat: c.TokenFormat, SigningAlg: c.IDTokenAlg, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

func (h *Handler) listClients(w http.ResponseWriter, r *http.Request, c *call) error {
	cs, err := h.Users.ListClients(r.Context())
	if err != nil {
		return err
	}
	out := page[clientJSON]{Items: []clientJSON{}}
	for _, cl := range cs {
		out.Items = append(out.Items, clientOf(cl))
	}
	return writeJSON(w, http.StatusOK, out)
}

// createClient registers a client as `sesame client create` does; the
// secret is in the answer, once.
func (h *Handler) createClient(w http.ResponseWriter, r *http.Request, c *call) error {
	var in users.NewClient
	if err := decode(w, r, &in, false); err != nil {
		return err
	}
	cl, secret, err := h.Users.CreateClient(r.Context(), in, c.by(h.ip(r)))
	if err != nil {
		return err
	}
	c.details = map[string]string{"client_id": cl.ID}
	out := clientOf(cl)
	out.ClientSecret = secret
	return writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.details = map[string]string{"client_id": id}
	if err := h.Users.DeleteClient(r.Context(), id, c.by(h.ip(r))); err != nil {
		return err
	}
	h.forget("client", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) rotateClientSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.details = map[string]string{"client_id": id}
	if err := decode(w, r, &struct{}{}, true); err != nil {
		return err
	}
	secret, err := h.Users.RotateClientSecret(r.Context(), id, c.by(h.ip(r)))
	h.forget("client", id)
	if errors.Is(err, users.ErrPublicClient) {
		return &web.PublicError{Status: http.StatusConflict, Key: "api.conflict", Args: []any{"a public client has no secret"},
			Fields: []web.FieldError{fieldError("id", "public_client", "a public client has no secret")}}
	}
	if err != nil {
		return err
	}
	cl, err := h.Store.GetClient(r.Context(), id)
	if err != nil {
		return err
	}
	out := clientOf(cl)
	out.ClientSecret = secret
	return writeJSON(w, http.StatusOK, out)
}
