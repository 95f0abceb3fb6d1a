package sqlite

import (
	"context"
	"fmt"

	"github.com/sesame-idp/sesame/idp/store"
)

const signingKeyCols = `id, alg, sealed, state, created_at, activated_at, retired_at`

func scanSigningKey(row row) (store.SigningKey, error) {
	var k store.SigningKey
	err := row.Scan(&k.ID, &k.Alg, &k.Sealed, &k.State, (*timeCol)(&k.CreatedAt),
		(*timeCol)(&k.ActivatedAt), (*timeCol)(&k.RetiredAt))
	return k, mapErr(err)
}

func (q queries) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	const query = `INSERT INTO signing_keys (` + signingKeyCols + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`

	_, err := q.w.ExecContext(ctx, query, k.ID, k.Alg, blob(k.Sealed), string(k.State), ts(k.CreatedAt),
		ts(k.ActivatedAt), ts(k.RetiredAt))
	if err != nil {
		return fmt.Errorf("create signing key %s: %w", k.ID, mapErr(err))
	}
	return nil
}

func (q queries) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	const query = `SELECT ` + signingKeyCols + ` FROM signing_keys ORDER BY created_at, id`

	rows, err := q.r.QueryContext(ctx, query)
	keys, err := collect(rows, err, scanSigningKey)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}

func (q queries) UpdateSigningKey(ctx context.Context, k store.SigningKey) error {
	const query = `UPDATE signing_keys SET state = ?2, activated_at = ?3, retired_at = ?4 WHERE id = ?1`

	if err := affected(q.w.ExecContext(ctx, query, k.ID, string(k.State), ts(k.ActivatedAt), ts(k.RetiredAt))); err != nil {
		return fmt.Errorf("update signing key %s: %w", k.ID, err)
	}
	return nil
}

func (q queries) DeleteSigningKey(ctx context.Context, id string) error {
	const query = `DELETE FROM signing_keys WHERE id = ?1`

	if err := affected(q.w.ExecContext(ctx, query, id)); err != nil {
		return fmt.Errorf("delete signing key %s: %w", id, err)
	}
	return nil
}
