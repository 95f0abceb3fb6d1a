package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// ---- institutions ----

const institutionCols = `id, name, auto_approve, role_mailbox_patterns, created_at, updated_at`

func scanInstitution(row row) (store.Institution, error) {
	var in store.Institution
	err := row.Scan(&in.ID, &in.Name, &in.AutoApprove, (*listCol)(&in.RoleMailboxPatterns),
		(*timeCol)(&in.CreatedAt), (*timeCol)(&in.UpdatedAt))
	return in, mapErr(err)
}

func (q queries) CreateInstitution(ctx context.Context, in store.Institution) error {
	const query = `INSERT INTO institutions (` + institutionCols + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6)`

	err := q.atomic(ctx, func(q queries) error {
		if _, err := q.w.ExecContext(ctx, query, in.ID, in.Name, in.AutoApprove, jsonList(in.RoleMailboxPatterns),
			ts(in.CreatedAt), ts(in.UpdatedAt)); err != nil {
			return mapErr(err)
		}
		return q.putBilling(ctx, in.ID, in.BillingAccounts)
	})
	if err != nil {
		return fmt.Errorf("create institution %s: %w", in.ID, err)
	}
	return nil
}

func (q queries) putBilling(ctx context.Context, id string, accounts []store.BillingAccount) error {
	const del = `DELETE FROM billing_accounts WHERE institution_id = ?1`
	const ins = `INSERT INTO billing_accounts (institution_id, name, customer_number) VALUES (?1, ?2, ?3)`

	if _, err := q.w.ExecContext(ctx, del, id); err != nil {
		return mapErr(err)
	}
	for _, b := range accounts {
		if _, err := q.w.ExecContext(ctx, ins, id, b.Name, b.CustomerNumber); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

func (q queries) billing(ctx context.Context, ids []string) (map[string][]store.BillingAccount, error) {
	const query = `SELECT institution_id, name, customer_number FROM billing_accounts
		WHERE institution_id IN (SELECT value FROM json_each(?1)) ORDER BY institution_id, customer_number`

	type brow struct {
		id string
		b  store.BillingAccount
	}
	rows, err := q.r.QueryContext(ctx, query, jsonList(ids))
	list, err := collect(rows, err, func(r row) (brow, error) {
		var v brow
		return v, r.Scan(&v.id, &v.b.Name, &v.b.CustomerNumber)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]store.BillingAccount)
	for _, v := range list {
		out[v.id] = append(out[v.id], v.b)
	}
	return out, nil
}

func (q queries) GetInstitution(ctx context.Context, id string) (store.Institution, error) {
	const query = `SELECT ` + institutionCols + ` FROM institutions WHERE id = ?1`

	in, err := scanInstitution(q.r.QueryRowContext(ctx, query, id))
	if err == nil {
		var b map[string][]store.BillingAccount
		b, err = q.billing(ctx, []string{id})
		in.BillingAccounts = b[id]
	}
	if err != nil {
		return store.Institution{}, fmt.Errorf("get institution %s: %w", id, err)
	}
	return in, nil
}

func (q queries) ListInstitutions(ctx context.Context) ([]store.Institution, error) {
	const query = `SELECT ` + institutionCols + ` FROM institutions ORDER BY name, id`

	rows, err := q.r.QueryContext(ctx, query)
	list, err := collect(rows, err, scanInstitution)
	if err == nil && len(list) > 0 {
		ids := make([]string, len(list))
		for i, in := range list {
			ids[i] = in.ID
		}
		var b map[string][]store.BillingAccount
		b, err = q.billing(ctx, ids)
		for i := range list {
			list[i].BillingAccounts = b[list[i].ID]
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list institutions: %w", err)
	}
	return list, nil
}

func (q queries) UpdateInstitution(ctx context.Context, in store.Institution) error {
	const query = `UPDATE institutions SET name = ?2, auto_approve = ?3, role_mailbox_patterns = ?4,
		updated_at = ?5 WHERE id = ?1`

	err := q.atomic(ctx, func(q queries) error {
		if err := affected(q.w.ExecContext(ctx, query, in.ID, in.Name, in.AutoApprove,
			jsonList(in.RoleMailboxPatterns), ts(in.UpdatedAt))); err != nil {
			return err
		}
		return q.putBilling(ctx, in.ID, in.BillingAccounts)
	})
	if err != nil {
		return fmt.Errorf("update institution %s: %w", in.ID, err)
	}
	return nil
}

// ---- memberships ----

func (q queries) PutMembership(ctx context.Context, m store.Membership) error {
	const upsert = `INSERT INTO memberships (user_id, institution_id, is_primary, billing_customer_number, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT (user_id, institution_id) DO UPDATE SET is_primary = EXCLUDED.is_primary,
			billing_customer_number = EXCLUDED.billing_customer_number`
	const delMandates = `DELETE FROM mandates WHERE user_id = ?1 AND institution_id = ?2`
	const delRights = `DELETE FROM special_rights WHERE user_id = ?1 AND institution_id = ?2`
	const insMandate = `INSERT INTO mandates (user_id, institution_id, mandate) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING`
	const insRight = `INSERT INTO special_rights (user_id, institution_id, right_name) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING`

	// A savepoint: a lost primary or a missing user must not abort the
	// caller's transaction.
	err := q.atomic(ctx, func(q queries) error {
		if _, err := q.w.ExecContext(ctx, upsert, m.UserID, m.InstitutionID, m.Primary, m.BillingCustomerNumber,
			ts(m.CreatedAt)); err != nil {
			return mapErr(err)
		}
		for _, del := range []string{delMandates, delRights} {
			if _, err := q.w.ExecContext(ctx, del, m.UserID, m.InstitutionID); err != nil {
				return mapErr(err)
			}
		}
		for _, v := range m.Mandates {
			if _, err := q.w.ExecContext(ctx, insMandate, m.UserID, m.InstitutionID, v); err != nil {
				return mapErr(err)
			}
		}
		for _, v := range m.Rights {
			if _, err := q.w.ExecContext(ctx, insRight, m.UserID, m.InstitutionID, v); err != nil {
				return fmt.Errorf("right %q: %w", v, mapErr(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put membership of %s at %s: %w", m.UserID, m.InstitutionID, err)
	}
	return nil
}

const membershipQuery = `SELECT m.user_id, m.institution_id, m.is_primary, m.billing_customer_number, m.created_at,
		COALESCE((SELECT json_group_array(mandate ORDER BY mandate) FROM mandates d
			WHERE d.user_id = m.user_id AND d.institution_id = m.institution_id), '[]'),
		COALESCE((SELECT json_group_array(right_name ORDER BY right_name) FROM special_rights r
			WHERE r.user_id = m.user_id AND r.institution_id = m.institution_id), '[]')
	FROM memberships m`

func scanMembership(row row) (store.Membership, error) {
	var m store.Membership
	err := row.Scan(&m.UserID, &m.InstitutionID, &m.Primary, &m.BillingCustomerNumber, (*timeCol)(&m.CreatedAt),
		(*listCol)(&m.Mandates), (*listCol)(&m.Rights))
	return m, mapErr(err)
}

func (q queries) GetMembership(ctx context.Context, userID, institutionID string) (store.Membership, error) {
	const query = membershipQuery + ` WHERE m.user_id = ?1 AND m.institution_id = ?2`

	m, err := scanMembership(q.r.QueryRowContext(ctx, query, userID, institutionID))
	if err != nil {
		return store.Membership{}, fmt.Errorf("get membership of %s at %s: %w", userID, institutionID, err)
	}
	return m, nil
}

func (q queries) ListMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	const query = membershipQuery + ` WHERE m.user_id = ?1 ORDER BY m.institution_id`

	rows, err := q.r.QueryContext(ctx, query, userID)
	list, err := collect(rows, err, scanMembership)
	if err != nil {
		return nil, fmt.Errorf("list memberships of %s: %w", userID, err)
	}
	return list, nil
}

func (q queries) DeleteMembership(ctx context.Context, userID, institutionID string) error {
	const query = `DELETE FROM memberships WHERE user_id = ?1 AND institution_id = ?2`

	if err := affected(q.w.ExecContext(ctx, query, userID, institutionID)); err != nil {
		return fmt.Errorf("delete membership of %s at %s: %w", userID, institutionID, err)
	}
	return nil
}

// ---- lab registrations ----

func (q queries) AddLabRegistration(ctx context.Context, userID string, r store.LabRegistration) error {
	const query = `INSERT INTO lab_registrations (user_id, laboratory, number) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING`

	if _, err := q.w.ExecContext(ctx, query, userID, r.Laboratory, r.Number); err != nil {
		return fmt.Errorf("add lab registration of %s: %w", userID, mapErr(err))
	}
	return nil
}

func (q queries) ListLabRegistrations(ctx context.Context, userID string) ([]store.LabRegistration, error) {
	const query = `SELECT laboratory, number FROM lab_registrations WHERE user_id = ?1 ORDER BY laboratory, number`

	rows, err := q.r.QueryContext(ctx, query, userID)
	list, err := collect(rows, err, func(r row) (store.LabRegistration, error) {
		var v store.LabRegistration
		return v, r.Scan(&v.Laboratory, &v.Number)
	})
	if err != nil {
		return nil, fmt.Errorf("list lab registrations of %s: %w", userID, err)
	}
	return list, nil
}

// ---- user lookups ----

func (q queries) usersWhere(ctx context.Context, what, where string, args ...any) ([]store.User, error) {
	query := `SELECT ` + userCols + ` FROM users u WHERE ` + where + ` ORDER BY created_at, id`
	rows, err := q.r.QueryContext(ctx, query, args...)
	list, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users by %s: %w", what, err)
	}
	return list, nil
}

// asciiLower folds A-Z only, as lower() does.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func (q queries) ListUsersByEmail(ctx context.Context, email string) ([]store.User, error) {
	if email == "" {
		return nil, nil
	}
	list, err := q.usersWhere(ctx, "email", `email <> '' AND lower(email) = lower(?1)`, email)
	out := list[:0]
	for _, u := range list {
		if asciiLower(u.Email) == asciiLower(email) {
			out = append(out, u)
		}
	}
	return out, err
}

func (q queries) ListUsersByPracticeNumber(ctx context.Context, number string) ([]store.User, error) {
	if number == "" {
		return nil, nil
	}
	return q.usersWhere(ctx, "practice number", `practice_number <> '' AND practice_number = ?1`, number)
}

func (q queries) ListUsersByPrescriberNumber(ctx context.Context, number string) ([]store.User, error) {
	if number == "" {
		return nil, nil
	}
	return q.usersWhere(ctx, "prescriber number", `prescriber_number <> '' AND prescriber_number = ?1`, number)
}

func (q queries) ListUsersByNameAt(ctx context.Context, givenName, familyName, institutionID string) ([]store.User, error) {
	list, err := q.usersWhere(ctx, "name", `lower(given_name) = lower(?1) AND lower(family_name) = lower(?2)
		AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.institution_id = ?3)`,
		givenName, familyName, institutionID)
	out := list[:0]
	for _, u := range list {
		if asciiLower(u.GivenName) == asciiLower(givenName) && asciiLower(u.FamilyName) == asciiLower(familyName) {
			out = append(out, u)
		}
	}
	return out, err
}

// ---- account requests ----

const requestCols = `id, kind, account_type, status, requester_id, requester_email, requester_name, requester_locale,
	given_name, family_name, email, locale, previously_had_account, occupation, practice_number, prescriber_number,
	lab_registrations, reference_given_name, reference_family_name, reference_id, billing_name,
	billing_customer_number, special_rights, comment, station_name, responsible_name, target_user_id, warnings,
	due_at, reviewer_id, decision_reason, decided_at, granted_rights, user_id, welcome_outbox_id, completed_at,
	created_at, updated_at`

// requestSelect adds the institutions, as a JSON array in their order.
const requestSelect = `SELECT ` + requestCols + `,
	COALESCE((SELECT json_group_array(json_object('id', i.institution_id, 'primary', json(CASE WHEN i.is_primary THEN 'true' ELSE 'false' END)) ORDER BY i.position)
		FROM account_request_institutions i WHERE i.request_id = r.id), '[]')
	FROM account_requests r`

type jsonCol struct{ v any }

func (c jsonCol) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, c.v)
}

func scanRequest(row row) (store.AccountRequest, error) {
	var r store.AccountRequest
	err := row.Scan(&r.ID, &r.Kind, &r.AccountType, &r.Status, &r.RequesterID, &r.RequesterEmail, &r.RequesterName,
		&r.RequesterLocale, &r.GivenName, &r.FamilyName, &r.Email, &r.Locale, &r.PreviouslyHadAccount, &r.Occupation,
		&r.PracticeNumber, &r.PrescriberNumber, jsonCol{&r.LabRegistrations}, &r.ReferenceGivenName,
		&r.ReferenceFamilyName, &r.ReferenceID, &r.BillingName, &r.BillingCustomerNumber,
		(*listCol)(&r.SpecialRights), &r.Comment, &r.StationName, &r.ResponsibleName, &r.TargetUserID,
		(*listCol)(&r.Warnings), (*timeCol)(&r.DueAt), &r.ReviewerID, &r.DecisionReason, (*timeCol)(&r.DecidedAt),
		(*listCol)(&r.GrantedRights), &r.UserID, &r.WelcomeOutboxID, (*timeCol)(&r.CompletedAt),
		(*timeCol)(&r.CreatedAt), (*timeCol)(&r.UpdatedAt), jsonCol{&r.Institutions})
	if len(r.LabRegistrations) == 0 {
		r.LabRegistrations = nil
	}
	if len(r.Institutions) == 0 {
		r.Institutions = nil
	}
	return r, mapErr(err)
}

func labsJSON(l []store.LabRegistration) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // cannot fail
	return string(b)
}

func (q queries) CreateAccountRequest(ctx context.Context, r store.AccountRequest) error {
	const query = `INSERT INTO account_requests (` + requestCols + `, email_folded, primary_institution_id)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
			?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40)
		ON CONFLICT DO NOTHING`
	const inst = `INSERT INTO account_request_institutions (request_id, institution_id, is_primary, position)
		VALUES (?1, ?2, ?3, ?4)`

	folded := asciiLower(r.Email)
	if r.AccountType == store.AccountScanning {
		folded = "" // the responsible's address, shared by their stations
	}
	err := q.atomic(ctx, func(q queries) error {
		tag, err := q.w.ExecContext(ctx, query, r.ID, r.Kind, r.AccountType, string(r.Status), r.RequesterID,
			r.RequesterEmail, r.RequesterName, r.RequesterLocale, r.GivenName, r.FamilyName, r.Email, r.Locale,
			r.PreviouslyHadAccount, r.Occupation, r.PracticeNumber, r.PrescriberNumber, labsJSON(r.LabRegistrations),
			r.ReferenceGivenName, r.ReferenceFamilyName, r.ReferenceID, r.BillingName, r.BillingCustomerNumber,
			jsonList(r.SpecialRights), r.Comment, r.StationName, r.ResponsibleName, r.TargetUserID,
			jsonList(r.Warnings), ts(r.DueAt), r.ReviewerID, r.DecisionReason, ts(r.DecidedAt),
			jsonList(r.GrantedRights), r.UserID, r.WelcomeOutboxID, ts(r.CompletedAt), ts(r.CreatedAt),
			ts(r.UpdatedAt), folded, r.PrimaryInstitution())
		if n, err := rowsAffected(tag, err); err != nil {
			return err
		} else if n == 0 {
			return store.ErrConflict // same id, or a pending request for the email
		}
		for i, in := range r.Institutions {
			if _, err := q.w.ExecContext(ctx, inst, r.ID, in.ID, in.Primary, i); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create account request %s: %w", r.ID, err)
	}
	return nil
}

func (q queries) GetAccountRequest(ctx context.Context, id string) (store.AccountRequest, error) {
	const query = requestSelect + ` WHERE r.id = ?1`

	r, err := scanRequest(q.r.QueryRowContext(ctx, query, id))
	if err != nil {
		return store.AccountRequest{}, fmt.Errorf("get account request %s: %w", id, err)
	}
	return r, nil
}

func (q queries) PendingAccountRequestByEmail(ctx context.Context, email string) (store.AccountRequest, error) {
	const query = requestSelect + ` WHERE r.email_folded = ?1 AND r.status = 'submitted' AND r.email_folded <> ''`

	r, err := scanRequest(q.r.QueryRowContext(ctx, query, asciiLower(email)))
	if err != nil {
		return store.AccountRequest{}, fmt.Errorf("pending account request by email: %w", err)
	}
	return r, nil
}

func (q queries) UpdateAccountRequest(ctx context.Context, r store.AccountRequest, from store.AccountRequestStatus) error {
	const query = `UPDATE account_requests SET status = ?3, kind = ?4, target_user_id = ?5, warnings = ?6,
		reviewer_id = ?7, decision_reason = ?8, decided_at = ?9, granted_rights = ?10, user_id = ?11,
		welcome_outbox_id = ?12, completed_at = ?13, updated_at = ?14
		WHERE id = ?1 AND status = ?2`
	const exists = `SELECT EXISTS (SELECT 1 FROM account_requests WHERE id = ?1)`

	tag, err := q.w.ExecContext(ctx, query, r.ID, string(from), string(r.Status), r.Kind, r.TargetUserID,
		jsonList(r.Warnings), r.ReviewerID, r.DecisionReason, ts(r.DecidedAt), jsonList(r.GrantedRights),
		r.UserID, r.WelcomeOutboxID, ts(r.CompletedAt), ts(r.UpdatedAt))
	if n, aerr := rowsAffected(tag, err); aerr != nil {
		err = aerr
	} else if n == 0 {
		err = q.lostOrMissing(ctx, exists, r.ID)
	}
	if err != nil {
		return fmt.Errorf("update account request %s: %w", r.ID, mapErr(err))
	}
	return nil
}

func (q queries) ListAccountRequests(ctx context.Context, f store.AccountRequestFilter) ([]store.AccountRequest, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("?%d", len(args))
	}
	if f.Status != "" {
		where = append(where, "r.status = "+arg(string(f.Status)))
	}
	if f.InstitutionID != "" {
		where = append(where, "EXISTS (SELECT 1 FROM account_request_institutions i WHERE i.request_id = r.id AND i.institution_id = "+arg(f.InstitutionID)+")")
	}
	if f.RequesterID != "" {
		where = append(where, "r.requester_id = "+arg(f.RequesterID))
	}
	if !f.OverdueAt.IsZero() {
		where = append(where, "r.status = 'submitted' AND r.due_at < "+arg(ts(f.OverdueAt)))
	}
	if !f.AfterDueAt.IsZero() {
		d, id := arg(ts(f.AfterDueAt)), arg(f.AfterID)
		where = append(where, "(r.due_at, r.id) > ("+d+", "+id+")")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query := requestSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY r.due_at, r.id LIMIT " + arg(limit)
	rows, err := q.r.QueryContext(ctx, query, args...)
	list, err := collect(rows, err, scanRequest)
	if err != nil {
		return nil, fmt.Errorf("list account requests: %w", err)
	}
	return list, nil
}

func (q queries) CountAccountRequests(ctx context.Context, now time.Time) (store.AccountRequestCounts, error) {
	const query = `SELECT status, count(*), sum(CASE WHEN status = 'submitted' AND due_at < ?1 THEN 1 ELSE 0 END)
		FROM account_requests GROUP BY status`

	c := store.AccountRequestCounts{ByStatus: map[store.AccountRequestStatus]int64{}}
	for _, s := range []store.AccountRequestStatus{store.RequestSubmitted, store.RequestApproved, store.RequestRejected, store.RequestCompleted} {
		c.ByStatus[s] = 0
	}
	rows, err := q.r.QueryContext(ctx, query, ts(now))
	if err != nil {
		return c, fmt.Errorf("count account requests: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n, overdue int64
		if err := rows.Scan(&s, &n, &overdue); err != nil {
			return c, fmt.Errorf("count account requests: %w", err)
		}
		c.ByStatus[store.AccountRequestStatus(s)] = n
		c.Overdue += overdue
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count account requests: %w", mapErr(err))
	}
	return c, nil
}

// completeOnSent is run by MarkOutboxSent: the follow-up, and the request
// whose welcome this is.
func (q queries) completeOnSent(ctx context.Context, id string, at time.Time) error {
	const then = `SELECT then_id, then_kind, then_key, then_payload FROM outbox WHERE id = ?1`
	const ins = `INSERT INTO outbox (id, kind, idempotency_key, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT DO NOTHING`
	const complete = `UPDATE account_requests SET status = 'completed', completed_at = ?2, updated_at = ?2
		WHERE welcome_outbox_id = ?1 AND status = 'approved'`

	var tid, kind, key string
	var payload []byte
	if err := q.r.QueryRowContext(ctx, then, id).Scan(&tid, &kind, &key, &payload); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	}
	if tid != "" {
		if _, err := q.w.ExecContext(ctx, ins, tid, kind, key, blob(payload), ts(at)); err != nil {
			return mapErr(err)
		}
	}
	if _, err := q.w.ExecContext(ctx, complete, id, ts(at)); err != nil {
		return mapErr(err)
	}
	return nil
}
