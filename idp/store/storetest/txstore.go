package storetest

import (
	"context"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

// txStore runs every call of the table in a transaction of its own, so
// that each method is also tested on a store.Tx. It does not embed the
// store: a method it forgot to wrap would not compile.
type txStore struct {
	s store.Store
}

var _ store.Store = txStore{}

func (s txStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.s.InTx(ctx, fn)
}
func (s txStore) Ping(ctx context.Context) error { return s.s.Ping(ctx) }
func (s txStore) Close() error                   { return s.s.Close() }

func in[T any](ctx context.Context, s txStore, fn func(tx store.Tx) (T, error)) (T, error) {
	var v T
	err := s.InTx(ctx, func(tx store.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}

func do(ctx context.Context, s txStore, fn func(tx store.Tx) error) error {
	return s.InTx(ctx, fn)
}

func (s txStore) CreateUser(ctx context.Context, u store.User) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateUser(ctx, u) })
}

func (s txStore) GetUser(ctx context.Context, id string) (store.User, error) {
	return in(ctx, s, func(tx store.Tx) (store.User, error) { return tx.GetUser(ctx, id) })
}

func (s txStore) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	return in(ctx, s, func(tx store.Tx) (store.User, error) { return tx.GetUserByUsername(ctx, username) })
}

func (s txStore) LockUser(ctx context.Context, userID string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.LockUser(ctx, userID) })
}
func (s txStore) UpdateUser(ctx context.Context, u store.User) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UpdateUser(ctx, u) })
}

func (s txStore) ListUsers(ctx context.Context, afterUsername string, limit int) ([]store.User, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.User, error) { return tx.ListUsers(ctx, afterUsername, limit) })
}

func (s txStore) SetPassword(ctx context.Context, userID, phc string, at time.Time) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.SetPassword(ctx, userID, phc, at) })
}

func (s txStore) CreateCredential(ctx context.Context, c store.Credential) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateCredential(ctx, c) })
}

func (s txStore) GetCredential(ctx context.Context, id string) (store.Credential, error) {
	return in(ctx, s, func(tx store.Tx) (store.Credential, error) { return tx.GetCredential(ctx, id) })
}

func (s txStore) ListCredentials(ctx context.Context, userID string, typ store.CredentialType) ([]store.Credential, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.Credential, error) { return tx.ListCredentials(ctx, userID, typ) })
}

func (s txStore) UpdateCredential(ctx context.Context, c store.Credential) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UpdateCredential(ctx, c) })
}

func (s txStore) DeleteCredential(ctx context.Context, id string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.DeleteCredential(ctx, id) })
}

func (s txStore) AdvanceTOTPStep(ctx context.Context, credentialID string, step int64, at time.Time) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.AdvanceTOTPStep(ctx, credentialID, step, at) })
}

func (s txStore) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.ReplaceRecoveryCodes(ctx, userID, hashes, at) })
}

func (s txStore) ListRecoveryCodes(ctx context.Context, userID string) ([]store.RecoveryCode, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.RecoveryCode, error) { return tx.ListRecoveryCodes(ctx, userID) })
}

func (s txStore) ConsumeRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.ConsumeRecoveryCode(ctx, userID, hash, at) })
}

func (s txStore) CreateActionToken(ctx context.Context, t store.ActionToken) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateActionToken(ctx, t) })
}

func (s txStore) ConsumeActionToken(ctx context.Context, hash, kind string, now time.Time) (store.ActionToken, error) {
	return in(ctx, s, func(tx store.Tx) (store.ActionToken, error) { return tx.ConsumeActionToken(ctx, hash, kind, now) })
}

func (s txStore) ExpireActionTokens(ctx context.Context, userID, kind string, now time.Time) (int64, error) {
	return in(ctx, s, func(tx store.Tx) (int64, error) { return tx.ExpireActionTokens(ctx, userID, kind, now) })
}

func (s txStore) CreateClient(ctx context.Context, c store.Client) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateClient(ctx, c) })
}

func (s txStore) GetClient(ctx context.Context, id string) (store.Client, error) {
	return in(ctx, s, func(tx store.Tx) (store.Client, error) { return tx.GetClient(ctx, id) })
}

func (s txStore) ListClients(ctx context.Context) ([]store.Client, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.Client, error) { return tx.ListClients(ctx) })
}

func (s txStore) UpdateClient(ctx context.Context, c store.Client) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UpdateClient(ctx, c) })
}

func (s txStore) DeleteClient(ctx context.Context, id string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.DeleteClient(ctx, id) })
}

func (s txStore) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateRefreshToken(ctx, t) })
}

func (s txStore) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	return in(ctx, s, func(tx store.Tx) (store.RefreshToken, error) { return tx.GetRefreshToken(ctx, id) })
}

func (s txStore) GetRefreshTokenByHash(ctx context.Context, hash string) (store.RefreshToken, error) {
	return in(ctx, s, func(tx store.Tx) (store.RefreshToken, error) { return tx.GetRefreshTokenByHash(ctx, hash) })
}

func (s txStore) ClaimRefreshToken(ctx context.Context, hash, clientID, nextID, nextHash string, at time.Time) (store.RefreshToken, bool, error) {
	var claimed bool
	t, err := in(ctx, s, func(tx store.Tx) (store.RefreshToken, error) {
		t, c, err := tx.ClaimRefreshToken(ctx, hash, clientID, nextID, nextHash, at)
		claimed = c
		return t, err
	})
	return t, claimed, err
}
func (s txStore) UnclaimRefreshToken(ctx context.Context, oldID, nextID string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UnclaimRefreshToken(ctx, oldID, nextID) })
}
func (s txStore) RotateRefreshToken(ctx context.Context, oldID string, next store.RefreshToken) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.RotateRefreshToken(ctx, oldID, next) })
}

func (s txStore) RevokeRefreshToken(ctx context.Context, id string, at time.Time) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.RevokeRefreshToken(ctx, id, at) })
}

func (s txStore) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) (int64, error) {
	return in(ctx, s, func(tx store.Tx) (int64, error) { return tx.RevokeRefreshFamily(ctx, family, at) })
}

func (s txStore) RevokeRefreshTokensBySession(ctx context.Context, sessionID string, at time.Time) (int64, error) {
	return in(ctx, s, func(tx store.Tx) (int64, error) { return tx.RevokeRefreshTokensBySession(ctx, sessionID, at) })
}

func (s txStore) RevokeUserRefreshTokens(ctx context.Context, userID, exceptSession string, at time.Time) (int64, error) {
	return in(ctx, s, func(tx store.Tx) (int64, error) { return tx.RevokeUserRefreshTokens(ctx, userID, exceptSession, at) })
}

func (s txStore) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	return in(ctx, s, func(tx store.Tx) (int64, error) { return tx.DeleteExpiredRefreshTokens(ctx, before) })
}

func (s txStore) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateSigningKey(ctx, k) })
}

func (s txStore) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.SigningKey, error) { return tx.ListSigningKeys(ctx) })
}

func (s txStore) UpdateSigningKey(ctx context.Context, k store.SigningKey) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UpdateSigningKey(ctx, k) })
}

func (s txStore) DeleteSigningKey(ctx context.Context, id string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.DeleteSigningKey(ctx, id) })
}

func (s txStore) AppendAuditEvent(ctx context.Context, e store.AuditEvent) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.AppendAuditEvent(ctx, e) })
}

func (s txStore) ListAuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.AuditEvent, error) { return tx.ListAuditEvents(ctx, f) })
}

func (s txStore) EnqueueOutbox(ctx context.Context, m store.OutboxMessage) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.EnqueueOutbox(ctx, m) })
}

func (s txStore) GetOutboxMessage(ctx context.Context, id string) (store.OutboxMessage, error) {
	return in(ctx, s, func(tx store.Tx) (store.OutboxMessage, error) { return tx.GetOutboxMessage(ctx, id) })
}

func (s txStore) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.OutboxMessage, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.OutboxMessage, error) { return tx.ClaimOutbox(ctx, now, lease, limit) })
}

func (s txStore) MarkOutboxSent(ctx context.Context, id string, at time.Time) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.MarkOutboxSent(ctx, id, at) })
}

func (s txStore) MarkOutboxFailed(ctx context.Context, id string, nextAttempt time.Time, lastError string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.MarkOutboxFailed(ctx, id, nextAttempt, lastError) })
}

func (s txStore) SearchUsers(ctx context.Context, q store.UserQuery) ([]store.User, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.User, error) { return tx.SearchUsers(ctx, q) })
}
