package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sesame-idp/sesame/idp/store"
)

const refreshTokenCols = `id, hash, family, parent_id, user_id, client_id, scopes, audience, auth_time,
	amr, acr, session_id, created_at, expires_at, rotated_at, revoked_at`

func scanRefreshToken(row pgx.Row) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := row.Scan(refreshTokenDest(&t)...)
	return t, mapErr(err)
}

// refreshTokenDest are the scan destinations of refreshTokenCols, in order.
func refreshTokenDest(t *store.RefreshToken) []any {
	return []any{&t.ID, &t.Hash, &t.Family, &t.ParentID, &t.UserID, &t.ClientID,
		(*listCol)(&t.Scopes), (*listCol)(&t.Audience), (*timeCol)(&t.AuthTime), (*listCol)(&t.AMR),
		&t.ACR, &t.SessionID, (*timeCol)(&t.CreatedAt), (*timeCol)(&t.ExpiresAt),
		(*timeCol)(&t.RotatedAt), (*timeCol)(&t.RevokedAt)}
}

// refreshTokenArgs are the values of refreshTokenCols, in order.
func refreshTokenArgs(t store.RefreshToken) []any {
	return []any{t.ID, t.Hash, t.Family, t.ParentID, t.UserID, t.ClientID, jsonList(t.Scopes),
		jsonList(t.Audience), ts(t.AuthTime), jsonList(t.AMR), t.ACR, t.SessionID, ts(t.CreatedAt),
		ts(t.ExpiresAt), ts(t.RotatedAt), ts(t.RevokedAt)}
}

// CreateRefreshToken: store.ErrConflict on a duplicate ID or hash,
// store.ErrNotFound when the user or the client does not exist.
func (q queries) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	const query = `INSERT INTO refresh_tokens (` + refreshTokenCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

	if _, err := q.q.Exec(ctx, query, refreshTokenArgs(t)...); err != nil {
		return fmt.Errorf("create refresh token %s: %w", t.ID, mapErr(err))
	}
	return nil
}

func (q queries) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	const query = `SELECT ` + refreshTokenCols + ` FROM refresh_tokens WHERE id = $1`

	t, err := scanRefreshToken(q.q.QueryRow(ctx, query, id))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("get refresh token %s: %w", id, err)
	}
	return t, nil
}

func (q queries) GetRefreshTokenByHash(ctx context.Context, hash string) (store.RefreshToken, error) {
	const query = `SELECT ` + refreshTokenCols + ` FROM refresh_tokens WHERE hash = $1`

	t, err := scanRefreshToken(q.q.QueryRow(ctx, query, hash))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("get refresh token by hash: %w", err)
	}
	return t, nil
}

// RotateRefreshToken is one statement: the insert of next only happens if
// the update of oldID did, so that of concurrent rotations one wins. Inside
// a transaction it runs in a savepoint: a failure leaves the transaction
// usable.
func (q queries) RotateRefreshToken(ctx context.Context, oldID string, next store.RefreshToken) error {
	const (
		rotateSQL = `WITH old AS (
				UPDATE refresh_tokens SET rotated_at = $13
				WHERE id = $17 AND rotated_at IS NULL AND revoked_at IS NULL
				RETURNING id
			)
			INSERT INTO refresh_tokens (` + refreshTokenCols + `)
			SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::jsonb, $8::jsonb,
				$9::timestamptz, $10::jsonb, $11::text, $12::text, $13::timestamptz, $14::timestamptz,
				$15::timestamptz, $16::timestamptz
			FROM old`
		existsSQL = `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE id = $1)`
	)

	err := q.guarded(ctx, func(q queries) error {
		tag, err := q.q.Exec(ctx, rotateSQL, append(refreshTokenArgs(next), oldID)...)
		if err == nil && tag.RowsAffected() == 0 {
			// Already rotated or revoked (a reuse), or no such token.
			err = q.lostOrMissing(ctx, existsSQL, oldID)
		}
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token %s: %w", oldID, err)
	}
	return nil
}

// ClaimRefreshToken is one statement (one round trip, committed on its
// own outside a transaction): the token as found (cur), its rotation when
// live (old), and the insert of its successor, which only happens if the
// update did. Of concurrent claims one wins; a loser's update waits for
// the winner's commit, then finds rotated_at set and changes nothing.
func (q queries) ClaimRefreshToken(ctx context.Context, hash, clientID, nextID, nextHash string, at time.Time) (store.RefreshToken, bool, error) {
	const query = `WITH cur AS (
			SELECT ` + refreshTokenCols + ` FROM refresh_tokens WHERE hash = $1
		), old AS (
			UPDATE refresh_tokens t SET rotated_at = $5
			FROM cur
			WHERE t.id = cur.id AND t.rotated_at IS NULL AND t.revoked_at IS NULL
				AND t.expires_at > $5 AND t.client_id = $2
			RETURNING t.id, t.family, t.user_id, t.client_id, t.scopes, t.audience, t.auth_time,
				t.amr, t.acr, t.session_id, t.expires_at
		), next AS (
			INSERT INTO refresh_tokens (` + refreshTokenCols + `)
			SELECT $3::text, $4::text, family, id, user_id, client_id, scopes, audience, auth_time,
				amr, acr, session_id, $5::timestamptz, expires_at, NULL, NULL
			FROM old
			RETURNING id
		)
		SELECT ` + refreshTokenCols + `, EXISTS (SELECT 1 FROM next) FROM cur`

	var (
		t       store.RefreshToken
		claimed bool
	)
	err := q.guarded(ctx, func(q queries) error {
		row := q.q.QueryRow(ctx, query, hash, clientID, nextID, nextHash, at)
		return mapErr(row.Scan(append(refreshTokenDest(&t), &claimed)...))
	})
	if err != nil {
		return store.RefreshToken{}, false, fmt.Errorf("claim refresh token: %w", err)
	}
	if claimed {
		t.RotatedAt = at.UTC()
	}
	return t, claimed, nil
}

// UnclaimRefreshToken is one statement: the successor is deleted, and the
// claimed token's rotation cleared only if the successor was there.
func (q queries) UnclaimRefreshToken(ctx context.Context, oldID, nextID string) error {
	const query = `WITH gone AS (
			DELETE FROM refresh_tokens WHERE id = $2 AND parent_id = $1 RETURNING parent_id
		)
		UPDATE refresh_tokens SET rotated_at = NULL WHERE id IN (SELECT parent_id FROM gone)`

	if _, err := q.q.Exec(ctx, query, oldID, nextID); err != nil {
		return fmt.Errorf("unclaim refresh token %s: %w", oldID, mapErr(err))
	}
	return nil
}

// RevokeRefreshToken keeps the time of the first revocation.
func (q queries) RevokeRefreshToken(ctx context.Context, id string, at time.Time) error {
	const query = `UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`

	if err := affected(q.q.Exec(ctx, query, id, ts(at))); err != nil {
		return fmt.Errorf("revoke refresh token %s: %w", id, err)
	}
	return nil
}

func (q queries) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) (int64, error) {
	const query = `UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`

	tag, err := q.q.Exec(ctx, query, family, ts(at))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh family %s: %w", family, mapErr(err))
	}
	return tag.RowsAffected(), nil
}

func (q queries) RevokeRefreshTokensBySession(ctx context.Context, sessionID string, at time.Time) (int64, error) {
	const query = `UPDATE refresh_tokens SET revoked_at = $2
		WHERE session_id = $1 AND session_id <> '' AND revoked_at IS NULL`

	tag, err := q.q.Exec(ctx, query, sessionID, ts(at))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of session %s: %w", sessionID, mapErr(err))
	}
	return tag.RowsAffected(), nil
}

func (q queries) RevokeUserRefreshTokens(ctx context.Context, userID, exceptSession string, at time.Time) (int64, error) {
	const query = `UPDATE refresh_tokens SET revoked_at = $3
		WHERE user_id = $1 AND revoked_at IS NULL AND ($2 = '' OR session_id <> $2)`

	tag, err := q.q.Exec(ctx, query, userID, exceptSession, ts(at))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of user %s: %w", userID, mapErr(err))
	}
	return tag.RowsAffected(), nil
}

// DeleteExpiredRefreshTokens deletes the tokens with ExpiresAt before
// before; tokens without expiry stay.
func (q queries) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	const query = `DELETE FROM refresh_tokens WHERE expires_at < $1`

	tag, err := q.q.Exec(ctx, query, ts(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", mapErr(err))
	}
	return tag.RowsAffected(), nil
}
