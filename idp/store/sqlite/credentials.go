package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

const credentialCols = `id, user_id, type, name, secret, data, totp_last_step, verified_at, last_used_at, created_at`

func scanCredential(row row) (store.Credential, error) {
	var c store.Credential
	err := row.Scan(&c.ID, &c.UserID, &c.Type, &c.Name, &c.Secret, &c.Data, &c.TOTPLastStep,
		(*timeCol)(&c.VerifiedAt), (*timeCol)(&c.LastUsedAt), (*timeCol)(&c.CreatedAt))
	return c, mapErr(err)
}

// SetPassword stores the user's password, or replaces it in place: the
// credential keeps its ID, CreatedAt and VerifiedAt become at, LastUsedAt is
// cleared.
func (q queries) SetPassword(ctx context.Context, userID, phc string, at time.Time) error {
	const query = `INSERT INTO credentials (id, user_id, type, secret, verified_at, created_at)
		VALUES (?1, ?2, 'password', ?3, ?4, ?4)
		ON CONFLICT (user_id) WHERE type = 'password' DO UPDATE
		SET secret = excluded.secret, verified_at = excluded.verified_at,
			created_at = excluded.created_at, last_used_at = NULL`

	if _, err := q.w.ExecContext(ctx, query, newID(), userID, []byte(phc), ts(at)); err != nil {
		return fmt.Errorf("set password of %s: %w", userID, mapErr(err))
	}
	return nil
}

func (q queries) CreateCredential(ctx context.Context, c store.Credential) error {
	const query = `INSERT INTO credentials (` + credentialCols + `)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)`

	_, err := q.w.ExecContext(ctx, query, c.ID, c.UserID, string(c.Type), c.Name, blob(c.Secret), blob(c.Data),
		c.TOTPLastStep, ts(c.VerifiedAt), ts(c.LastUsedAt), ts(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create %s credential %s: %w", c.Type, c.ID, mapErr(err))
	}
	return nil
}

func (q queries) GetCredential(ctx context.Context, id string) (store.Credential, error) {
	const query = `SELECT ` + credentialCols + ` FROM credentials WHERE id = ?1`

	c, err := scanCredential(q.r.QueryRowContext(ctx, query, id))
	if err != nil {
		return store.Credential{}, fmt.Errorf("get credential %s: %w", id, err)
	}
	return c, nil
}

func (q queries) ListCredentials(ctx context.Context, userID string, typ store.CredentialType) ([]store.Credential, error) {
	const query = `SELECT ` + credentialCols + ` FROM credentials
		WHERE user_id = ?1 AND (?2 = '' OR type = ?2)
		ORDER BY created_at, id`

	rows, err := q.r.QueryContext(ctx, query, userID, string(typ))
	creds, err := collect(rows, err, scanCredential)
	if err != nil {
		return nil, fmt.Errorf("list credentials of %s: %w", userID, err)
	}
	return creds, nil
}

func (q queries) UpdateCredential(ctx context.Context, c store.Credential) error {
	const query = `UPDATE credentials SET name = ?2, secret = ?3, data = ?4, verified_at = ?5, last_used_at = ?6
		WHERE id = ?1`

	err := affected(q.w.ExecContext(ctx, query, c.ID, c.Name, blob(c.Secret), blob(c.Data), ts(c.VerifiedAt), ts(c.LastUsedAt)))
	if err != nil {
		return fmt.Errorf("update credential %s: %w", c.ID, err)
	}
	return nil
}

func (q queries) DeleteCredential(ctx context.Context, id string) error {
	const query = `DELETE FROM credentials WHERE id = ?1`

	if err := affected(q.w.ExecContext(ctx, query, id)); err != nil {
		return fmt.Errorf("delete credential %s: %w", id, err)
	}
	return nil
}

// AdvanceTOTPStep also sets LastUsedAt to at. A credential that is not a
// TOTP one is store.ErrNotFound.
func (q queries) AdvanceTOTPStep(ctx context.Context, credentialID string, step int64, at time.Time) error {
	const (
		advanceSQL = `UPDATE credentials SET totp_last_step = ?2, last_used_at = ?3
			WHERE id = ?1 AND type = 'totp' AND totp_last_step < ?2`
		existsSQL = `SELECT EXISTS (SELECT 1 FROM credentials WHERE id = ?1 AND type = 'totp')`
	)

	n, err := rowsAffected(q.w.ExecContext(ctx, advanceSQL, credentialID, step, ts(at)))
	if err == nil && n == 0 {
		// The step was not greater (a replay), or there is no such credential.
		err = q.lostOrMissing(ctx, existsSQL, credentialID)
	}
	if err != nil {
		return fmt.Errorf("advance totp step of %s: %w", credentialID, mapErr(err))
	}
	return nil
}

const recoveryCodeCols = `id, user_id, hash, created_at, used_at`

func scanRecoveryCode(row row) (store.RecoveryCode, error) {
	var c store.RecoveryCode
	err := row.Scan(&c.ID, &c.UserID, &c.Hash, (*timeCol)(&c.CreatedAt), (*timeCol)(&c.UsedAt))
	return c, mapErr(err)
}

func (q queries) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error {
	const (
		deleteSQL = `DELETE FROM recovery_codes WHERE user_id = ?1`
		insertSQL = `INSERT INTO recovery_codes (id, user_id, hash, created_at) VALUES (?1, ?2, ?3, ?4)`
	)

	err := q.atomic(ctx, func(q queries) error {
		if _, err := q.w.ExecContext(ctx, deleteSQL, userID); err != nil {
			return mapErr(err)
		}
		for _, h := range hashes {
			if _, err := q.w.ExecContext(ctx, insertSQL, newID(), userID, h, ts(at)); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes of %s: %w", userID, err)
	}
	return nil
}

// ListRecoveryCodes returns the user's codes, used or not, in the order
// they were stored.
func (q queries) ListRecoveryCodes(ctx context.Context, userID string) ([]store.RecoveryCode, error) {
	const query = `SELECT ` + recoveryCodeCols + ` FROM recovery_codes WHERE user_id = ?1 ORDER BY created_at, id`

	rows, err := q.r.QueryContext(ctx, query, userID)
	codes, err := collect(rows, err, scanRecoveryCode)
	if err != nil {
		return nil, fmt.Errorf("list recovery codes of %s: %w", userID, err)
	}
	return codes, nil
}

func (q queries) ConsumeRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error {
	const query = `UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND hash = ?2 AND used_at IS NULL`

	if err := affected(q.w.ExecContext(ctx, query, userID, hash, ts(at))); err != nil {
		return fmt.Errorf("consume recovery code of %s: %w", userID, err)
	}
	return nil
}

const actionTokenCols = `hash, kind, user_id, created_at, expires_at, used_at`

func (q queries) CreateActionToken(ctx context.Context, t store.ActionToken) error {
	const query = `INSERT INTO action_tokens (` + actionTokenCols + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6)`

	_, err := q.w.ExecContext(ctx, query, t.Hash, t.Kind, t.UserID, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.UsedAt))
	if err != nil {
		return fmt.Errorf("create %s token for %s: %w", t.Kind, t.UserID, mapErr(err))
	}
	return nil
}

// ConsumeActionToken: a token is expired when ExpiresAt <= now.
func (q queries) ConsumeActionToken(ctx context.Context, hash string, kind string, now time.Time) (store.ActionToken, error) {
	const query = `UPDATE action_tokens SET used_at = ?3
		WHERE hash = ?1 AND kind = ?2 AND used_at IS NULL AND expires_at > ?3
		RETURNING ` + actionTokenCols

	var t store.ActionToken
	err := q.w.QueryRowContext(ctx, query, hash, kind, ts(now)).Scan(&t.Hash, &t.Kind, &t.UserID,
		(*timeCol)(&t.CreatedAt), (*timeCol)(&t.ExpiresAt), (*timeCol)(&t.UsedAt))
	if err != nil {
		return store.ActionToken{}, fmt.Errorf("consume %s token: %w", kind, mapErr(err))
	}
	return t, nil
}

func (q queries) ExpireActionTokens(ctx context.Context, userID, kind string, now time.Time) (int64, error) {
	const query = `UPDATE action_tokens SET expires_at = ?3
		WHERE user_id = ?1 AND kind = ?2 AND used_at IS NULL AND expires_at > ?3`

	n, err := rowsAffected(q.w.ExecContext(ctx, query, userID, kind, ts(now)))
	if err != nil {
		return 0, fmt.Errorf("expire %s tokens of %s: %w", kind, userID, err)
	}
	return n, nil
}
