package storetest

import (
	"context"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
)

func (s txStore) CreateInstitution(ctx context.Context, in store.Institution) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateInstitution(ctx, in) })
}

func (s txStore) GetInstitution(ctx context.Context, id string) (store.Institution, error) {
	return in(ctx, s, func(tx store.Tx) (store.Institution, error) { return tx.GetInstitution(ctx, id) })
}

func (s txStore) ListInstitutions(ctx context.Context) ([]store.Institution, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.Institution, error) { return tx.ListInstitutions(ctx) })
}

func (s txStore) UpdateInstitution(ctx context.Context, i store.Institution) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UpdateInstitution(ctx, i) })
}

func (s txStore) PutMembership(ctx context.Context, m store.Membership) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.PutMembership(ctx, m) })
}

func (s txStore) GetMembership(ctx context.Context, userID, institutionID string) (store.Membership, error) {
	return in(ctx, s, func(tx store.Tx) (store.Membership, error) { return tx.GetMembership(ctx, userID, institutionID) })
}

func (s txStore) ListMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.Membership, error) { return tx.ListMemberships(ctx, userID) })
}

func (s txStore) DeleteMembership(ctx context.Context, userID, institutionID string) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.DeleteMembership(ctx, userID, institutionID) })
}

func (s txStore) AddLabRegistration(ctx context.Context, userID string, r store.LabRegistration) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.AddLabRegistration(ctx, userID, r) })
}

func (s txStore) ListLabRegistrations(ctx context.Context, userID string) ([]store.LabRegistration, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.LabRegistration, error) { return tx.ListLabRegistrations(ctx, userID) })
}

func (s txStore) ListUsersByEmail(ctx context.Context, email string) ([]store.User, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.User, error) { return tx.ListUsersByEmail(ctx, email) })
}

func (s txStore) ListUsersByPracticeNumber(ctx context.Context, number string) ([]store.User, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.User, error) { return tx.ListUsersByPracticeNumber(ctx, number) })
}

func (s txStore) ListUsersByPrescriberNumber(ctx context.Context, number string) ([]store.User, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.User, error) { return tx.ListUsersByPrescriberNumber(ctx, number) })
}

func (s txStore) ListUsersByNameAt(ctx context.Context, given, family, institutionID string) ([]store.User, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.User, error) {
		return tx.ListUsersByNameAt(ctx, given, family, institutionID)
	})
}

func (s txStore) CreateAccountRequest(ctx context.Context, r store.AccountRequest) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.CreateAccountRequest(ctx, r) })
}

func (s txStore) GetAccountRequest(ctx context.Context, id string) (store.AccountRequest, error) {
	return in(ctx, s, func(tx store.Tx) (store.AccountRequest, error) { return tx.GetAccountRequest(ctx, id) })
}

func (s txStore) PendingAccountRequestByEmail(ctx context.Context, email string) (store.AccountRequest, error) {
	return in(ctx, s, func(tx store.Tx) (store.AccountRequest, error) { return tx.PendingAccountRequestByEmail(ctx, email) })
}

func (s txStore) UpdateAccountRequest(ctx context.Context, r store.AccountRequest, from store.AccountRequestStatus) error {
	return do(ctx, s, func(tx store.Tx) error { return tx.UpdateAccountRequest(ctx, r, from) })
}

func (s txStore) ListAccountRequests(ctx context.Context, f store.AccountRequestFilter) ([]store.AccountRequest, error) {
	return in(ctx, s, func(tx store.Tx) ([]store.AccountRequest, error) { return tx.ListAccountRequests(ctx, f) })
}

func (s txStore) CountAccountRequests(ctx context.Context, now time.Time) (store.AccountRequestCounts, error) {
	return in(ctx, s, func(tx store.Tx) (store.AccountRequestCounts, error) { return tx.CountAccountRequests(ctx, now) })
}
