package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

const refreshTokenCols = `id, hash, family, parent_id, user_id, client_id, scopes, audience, auth_time,
	amr, acr, session_id, created_at, expires_at, rotated_at, revoked_at`

func scanRefreshToken(row row) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := row.Scan(&t.ID, &t.Hash, &t.Family, &t.ParentID, &t.UserID, &t.ClientID,
		(*listCol)(&t.Scopes), (*listCol)(&t.Audience), (*timeCol)(&t.AuthTime), (*listCol)(&t.AMR),
		&t.ACR, &t.SessionID, (*timeCol)(&t.CreatedAt), (*timeCol)(&t.ExpiresAt),
		(*timeCol)(&t.RotatedAt), (*timeCol)(&t.RevokedAt))
	return t, mapErr(err)
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
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)`

	if _, err := q.w.ExecContext(ctx, query, refreshTokenArgs(t)...); err != nil {
		return fmt.Errorf("create refresh token %s: %w", t.ID, mapErr(err))
	}
	return nil
}

func (q queries) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	const query = `SELECT ` + refreshTokenCols + ` FROM refresh_tokens WHERE id = ?1`

	t, err := scanRefreshToken(q.r.QueryRowContext(ctx, query, id))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("get refresh token %s: %w", id, err)
	}
	return t, nil
}

func (q queries) GetRefreshTokenByHash(ctx context.Context, hash string) (store.RefreshToken, error) {
	const query = `SELECT ` + refreshTokenCols + ` FROM refresh_tokens WHERE hash = ?1`

	t, err := scanRefreshToken(q.r.QueryRowContext(ctx, query, hash))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("get refresh token by hash: %w", err)
	}
	return t, nil
}

// RotateRefreshToken marks oldID rotated and stores next in one
// transaction (or savepoint), which holds the write lock: of concurrent
// rotations one wins.
func (q queries) RotateRefreshToken(ctx context.Context, oldID string, next store.RefreshToken) error {
	const (
		rotateSQL = `UPDATE refresh_tokens SET rotated_at = ?2
			WHERE id = ?1 AND rotated_at IS NULL AND revoked_at IS NULL`
		insertSQL = `INSERT INTO refresh_tokens (` + refreshTokenCols + `)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)`
		existsSQL = `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE id = ?1)`
	)

	err := q.atomic(ctx, func(q queries) error {
		n, err := rowsAffected(q.w.ExecContext(ctx, rotateSQL, oldID, ts(next.CreatedAt)))
		if err != nil {
			return err
		}
		if n == 0 {
			// Already rotated or revoked (a reuse), or no such token.
			return q.lostOrMissing(ctx, existsSQL, oldID)
		}
		_, err = q.w.ExecContext(ctx, insertSQL, refreshTokenArgs(next)...)
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token %s: %w", oldID, err)
	}
	return nil
}

// ClaimRefreshToken reads, rotates and inserts in one transaction, which
// holds the write lock: of concurrent claims one wins.
func (q queries) ClaimRefreshToken(ctx context.Context, hash, clientID, nextID, nextHash string, at time.Time) (store.RefreshToken, bool, error) {
	const (
		getSQL    = `SELECT ` + refreshTokenCols + ` FROM refresh_tokens WHERE hash = ?1`
		rotateSQL = `UPDATE refresh_tokens SET rotated_at = ?2
			WHERE id = ?1 AND rotated_at IS NULL AND revoked_at IS NULL`
		insertSQL = `INSERT INTO refresh_tokens (` + refreshTokenCols + `)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)`
	)

	var (
		t       store.RefreshToken
		claimed bool
	)
	err := q.atomic(ctx, func(q queries) error {
		var err error
		if t, err = scanRefreshToken(q.w.QueryRowContext(ctx, getSQL, hash)); err != nil {
			return err
		}
		if !t.RotatedAt.IsZero() || !t.RevokedAt.IsZero() || !at.Before(t.ExpiresAt) || t.ClientID != clientID {
			return nil
		}
		if n, err := rowsAffected(q.w.ExecContext(ctx, rotateSQL, t.ID, ts(at))); err != nil || n != 1 {
			return cmp.Or(err, store.ErrConflict)
		}
		next := t
		next.ID, next.Hash, next.ParentID, next.CreatedAt = nextID, nextHash, t.ID, at
		next.RotatedAt, next.RevokedAt = time.Time{}, time.Time{}
		if _, err := q.w.ExecContext(ctx, insertSQL, refreshTokenArgs(next)...); err != nil {
			return mapErr(err)
		}
		claimed = true
		return nil
	})
	if err != nil {
		return store.RefreshToken{}, false, fmt.Errorf("claim refresh token: %w", err)
	}
	if claimed {
		t.RotatedAt = at.UTC()
	}
	return t, claimed, nil
}

// UnclaimRefreshToken deletes the successor and, if it was there, clears
// the claimed token's rotation, in one transaction.
func (q queries) UnclaimRefreshToken(ctx context.Context, oldID, nextID string) error {
	const (
		deleteSQL   = `DELETE FROM refresh_tokens WHERE id = ?2 AND parent_id = ?1`
		unrotateSQL = `UPDATE refresh_tokens SET rotated_at = NULL WHERE id = ?1`
	)

	err := q.atomic(ctx, func(q queries) error {
		n, err := rowsAffected(q.w.ExecContext(ctx, deleteSQL, oldID, nextID))
		if err != nil || n == 0 {
			return err
		}
		_, err = q.w.ExecContext(ctx, unrotateSQL, oldID)
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("unclaim refresh token %s: %w", oldID, err)
	}
	return nil
}

// RevokeRefreshToken keeps the time of the first revocation.
func (q queries) RevokeRefreshToken(ctx context.Context, id string, at time.Time) error {
	const query = `UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1`

	if err := affected(q.w.ExecContext(ctx, query, id, ts(at))); err != nil {
		return fmt.Errorf("revoke refresh token %s: %w", id, err)
	}
	return nil
}

func (q queries) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) (int64, error) {
	const query = `UPDATE refresh_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL`

	n, err := rowsAffected(q.w.ExecContext(ctx, query, family, ts(at)))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh family %s: %w", family, err)
	}
	return n, nil
}

func (q queries) RevokeRefreshTokensBySession(ctx context.Context, sessionID string, at time.Time) (int64, error) {
	const query = `UPDATE refresh_tokens SET revoked_at = ?2
		WHERE session_id = ?1 AND session_id <> '' AND revoked_at IS NULL`

	n, err := rowsAffected(q.w.ExecContext(ctx, query, sessionID, ts(at)))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of session %s: %w", sessionID, err)
	}
	return n, nil
}

func (q queries) RevokeUserRefreshTokens(ctx context.Context, userID, exceptSession string, at time.Time) (int64, error) {
	const query = `UPDATE refresh_tokens SET revoked_at = ?3
		WHERE user_id = ?1 AND revoked_at IS NULL AND (?2 = '' OR session_id <> ?2)`

	n, err := rowsAffected(q.w.ExecContext(ctx, query, userID, exceptSession, ts(at)))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of user %s: %w", userID, err)
	}
	return n, nil
}

// DeleteExpiredRefreshTokens deletes the tokens with ExpiresAt before
// before; tokens without expiry stay.
func (q queries) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	const query = `DELETE FROM refresh_tokens WHERE expires_at < ?1`

	n, err := rowsAffected(q.w.ExecContext(ctx, query, ts(before)))
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return n, nil
}
