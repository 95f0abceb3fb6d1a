package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

const clientCols = `id, name, secret_hash, public, redirect_uris, post_logout_uris, grant_types, scopes,
	auth_method, pkce_required, token_format, id_token_alg, access_token_ttl_ns, id_token_ttl_ns,
	refresh_token_ttl_ns, backchannel_uri, created_at, updated_at`

func scanClient(row row) (store.Client, error) {
	var c store.Client
	var accessTTL, idTTL, refreshTTL int64
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, (*listCol)(&c.RedirectURIs),
		(*listCol)(&c.PostLogoutURIs), (*listCol)(&c.GrantTypes), (*listCol)(&c.Scopes), &c.AuthMethod,
		&c.PKCERequired, &c.TokenFormat, &c.IDTokenAlg, &accessTTL, &idTTL, &refreshTTL,
		&c.BackchannelURI, (*timeCol)(&c.CreatedAt), (*timeCol)(&c.UpdatedAt))
	c.AccessTokenTTL = time.Duration(accessTTL)
	c.IDTokenTTL = time.Duration(idTTL)
	c.RefreshTokenTTL = time.Duration(refreshTTL)
	return c, mapErr(err)
}

func (q queries) CreateClient(ctx context.Context, c store.Client) error {
	const query = `INSERT INTO clients (` + clientCols + `)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)`

	_, err := q.w.ExecContext(ctx, query, c.ID, c.Name, c.SecretHash, c.Public, jsonList(c.RedirectURIs),
		jsonList(c.PostLogoutURIs), jsonList(c.GrantTypes), jsonList(c.Scopes), c.AuthMethod,
		c.PKCERequired, c.TokenFormat, c.IDTokenAlg, int64(c.AccessTokenTTL), int64(c.IDTokenTTL),
		int64(c.RefreshTokenTTL), c.BackchannelURI, ts(c.CreatedAt), ts(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create client %s: %w", c.ID, mapErr(err))
	}
	return nil
}

func (q queries) GetClient(ctx context.Context, id string) (store.Client, error) {
	const query = `SELECT ` + clientCols + ` FROM clients WHERE id = ?1`

	c, err := scanClient(q.r.QueryRowContext(ctx, query, id))
	if err != nil {
		return store.Client{}, fmt.Errorf("get client %s: %w", id, err)
	}
	return c, nil
}

// ListClients returns every client, by ID.
func (q queries) ListClients(ctx context.Context) ([]store.Client, error) {
	const query = `SELECT ` + clientCols + ` FROM clients ORDER BY id`

	rows, err := q.r.QueryContext(ctx, query)
	clients, err := collect(rows, err, scanClient)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return clients, nil
}

// UpdateClient writes every field but ID and CreatedAt.
func (q queries) UpdateClient(ctx context.Context, c store.Client) error {
	const query = `UPDATE clients SET name = ?2, secret_hash = ?3, public = ?4, redirect_uris = ?5,
		post_logout_uris = ?6, grant_types = ?7, scopes = ?8, auth_method = ?9, pkce_required = ?10,
		token_format = ?11, id_token_alg = ?12, access_token_ttl_ns = ?13, id_token_ttl_ns = ?14,
		refresh_token_ttl_ns = ?15, backchannel_uri = ?16, updated_at = ?17
		WHERE id = ?1`

	err := affected(q.w.ExecContext(ctx, query, c.ID, c.Name, c.SecretHash, c.Public, jsonList(c.RedirectURIs),
		jsonList(c.PostLogoutURIs), jsonList(c.GrantTypes), jsonList(c.Scopes), c.AuthMethod,
		c.PKCERequired, c.TokenFormat, c.IDTokenAlg, int64(c.AccessTokenTTL), int64(c.IDTokenTTL),
		int64(c.RefreshTokenTTL), c.BackchannelURI, ts(c.UpdatedAt)))
	if err != nil {
		return fmt.Errorf("update client %s: %w", c.ID, err)
	}
	return nil
}

// DeleteClient deletes the client and its refresh tokens.
func (q queries) DeleteClient(ctx context.Context, id string) error {
	const query = `DELETE FROM clients WHERE id = ?1`

	if err := affected(q.w.ExecContext(ctx, query, id)); err != nil {
		return fmt.Errorf("delete client %s: %w", id, err)
	}
	return nil
}
