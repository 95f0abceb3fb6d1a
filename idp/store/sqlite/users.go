package sqlite

import (
	"context"
	"fmt"

	"github.com/sesame-idp/sesame/idp/store"
)

const userCols = `id, username, email, given_name, family_name, locale, status, account_type,
	occupation, practice_number, prescriber_number, phone, mfa_grace_until, created_at, updated_at, support`

func scanUser(row row) (store.User, error) {
	var u store.User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.GivenName, &u.FamilyName, &u.Locale, &u.Status,
		&u.AccountType, &u.Occupation, &u.PracticeNumber, &u.PrescriberNumber, &u.Phone,
		(*timeCol)(&u.MFAGraceUntil), (*timeCol)(&u.CreatedAt), (*timeCol)(&u.UpdatedAt), &u.Support)
	return u, mapErr(err)
}

func (q queries) CreateUser(ctx context.Context, u store.User) error {
	const query = `INSERT INTO users (` + userCols + `)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)`

	_, err := q.w.ExecContext(ctx, query, u.ID, store.FoldUsername(u.Username), u.Email, u.GivenName, u.FamilyName,
		u.Locale, string(u.Status), u.AccountType, u.Occupation, u.PracticeNumber, u.PrescriberNumber,
		u.Phone, ts(u.MFAGraceUntil), ts(u.CreatedAt), ts(u.UpdatedAt), u.Support)
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, mapErr(err))
	}
	return nil
}

func (q queries) GetUser(ctx context.Context, id string) (store.User, error) {
	const query = `SELECT ` + userCols + ` FROM users WHERE id = ?1`

	u, err := scanUser(q.r.QueryRowContext(ctx, query, id))
	if err != nil {
		return store.User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

func (q queries) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	const query = `SELECT ` + userCols + ` FROM users WHERE username = ?1`

	u, err := scanUser(q.r.QueryRowContext(ctx, query, store.FoldUsername(username)))
	if err != nil {
		return store.User{}, fmt.Errorf("get user by username: %w", err)
	}
	return u, nil
}

// LockUser only checks that the user exists: a transaction holds the
// database's write lock from its BEGIN IMMEDIATE, so transactions already
// run one after the other.
func (q queries) LockUser(ctx context.Context, userID string) error {
	const query = `SELECT id FROM users WHERE id = ?1`

	var id string
	if err := q.r.QueryRowContext(ctx, query, userID).Scan(&id); err != nil {
		return fmt.Errorf("lock user %s: %w", userID, mapErr(err))
	}
	return nil
}

func (q queries) UpdateUser(ctx context.Context, u store.User) error {
	const query = `UPDATE users SET username = ?2, email = ?3, given_name = ?4, family_name = ?5,
		locale = ?6, status = ?7, account_type = ?8, occupation = ?9, practice_number = ?10,
		prescriber_number = ?11, phone = ?12, mfa_grace_until = ?13, updated_at = ?14, support = ?15
		WHERE id = ?1`

	err := affected(q.w.ExecContext(ctx, query, u.ID, store.FoldUsername(u.Username), u.Email, u.GivenName,
		u.FamilyName, u.Locale, string(u.Status), u.AccountType, u.Occupation, u.PracticeNumber,
		u.PrescriberNumber, u.Phone, ts(u.MFAGraceUntil), ts(u.UpdatedAt), u.Support))
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, err)
	}
	return nil
}

// ListUsers returns up to limit users (100 when limit <= 0) whose folded
// username sorts after afterUsername, byte-wise, in that order.
func (q queries) ListUsers(ctx context.Context, afterUsername string, limit int) ([]store.User, error) {
	const query = `SELECT ` + userCols + ` FROM users WHERE username > ?1 ORDER BY username LIMIT ?2`

	if limit <= 0 {
		limit = 100
	}
	rows, err := q.r.QueryContext(ctx, query, store.FoldUsername(afterUsername), limit)
	users, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SearchUsers returns up to q.Limit users (100 when <= 0) that q selects,
// by folded username.
func (q queries) SearchUsers(ctx context.Context, uq store.UserQuery) ([]store.User, error) {
	const query = `SELECT ` + userCols + ` FROM users
		WHERE username > ?1 AND (?2 = '' OR id = ?3
			OR lower(username) LIKE ?2 ESCAPE '\' OR lower(email) LIKE ?2 ESCAPE '\'
			OR lower(given_name) LIKE ?2 ESCAPE '\' OR lower(family_name) LIKE ?2 ESCAPE '\'
			OR lower(given_name || ' ' || family_name) LIKE ?2 ESCAPE '\')
		AND (?5 = '' OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.institution_id = ?5))
		ORDER BY username LIMIT ?4`

	limit := uq.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := q.r.QueryContext(ctx, query, store.FoldUsername(uq.AfterUsername), store.LikePattern(uq.Text), uq.Text, limit, uq.InstitutionID)
	users, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return users, nil
}
