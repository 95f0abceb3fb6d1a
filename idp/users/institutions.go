package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/store"
)

// NewInstitution is an institution to create, from the CLI or the API
// (POST /api/v1/institutions).
type NewInstitution struct {
	Name            string           `json:"name"`
	BillingAccounts []BillingAccount `json:"billing_accounts"`
}

// BillingAccount is a billing account of an institution, as on its
// monthly invoice: "Clinique médicale Omnimed - 123".
type BillingAccount struct {
	Name           string `json:"name"`
	CustomerNumber string `json:"customer_number"`
}

var customerNumberRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)

// ParseBilling parses "NAME - NUMBER" (the last " - " separates them), the
// form of the CLI's --billing.
func ParseBilling(s string) (BillingAccount, error) {
	i := strings.LastIndex(s, " - ")
	if i < 0 {
		return BillingAccount{}, inputErr("billing", fmt.Sprintf("%q must be NAME - NUMBER, e.g. \"Clinique médicale Omnimed - 123\"", s))
	}
	return BillingAccount{Name: strings.TrimSpace(s[:i]), CustomerNumber: strings.TrimSpace(s[i+3:])}, nil
}

// Validate checks the name and every billing account.
func (n NewInstitution) Validate() error {
	if err := CheckText("name", n.Name, 200); err != nil {
		return err
	}
	if strings.TrimSpace(n.Name) == "" {
		return inputErr("name", "is required")
	}
	if strings.ContainsAny(n.Name, "<>{}\\`") {
		return inputErr("name", "must not contain < > { } \\ or `")
	}
	if len(n.BillingAccounts) > 100 {
		return inputErr("billing_accounts", "at most 100")
	}
	seen := map[string]bool{}
	for _, b := range n.BillingAccounts {
		if err := CheckText("billing_accounts", b.Name, 200); err != nil {
			return err
		}
		if strings.TrimSpace(b.Name) == "" || strings.ContainsAny(b.Name, "<>{}\\`") {
			return inputErr("billing_accounts", "each needs a name, without < > { } \\ or `")
		}
		if !customerNumberRE.MatchString(b.CustomerNumber) {
			return inputErr("billing_accounts", fmt.Sprintf("customer number %q must be 1 to 32 letters, digits or -", b.CustomerNumber))
		}
		if seen[b.CustomerNumber] {
			return inputErr("billing_accounts", fmt.Sprintf("customer number %q is listed twice", b.CustomerNumber))
		}
		seen[b.CustomerNumber] = true
	}
	return nil
}

// CreateInstitution creates an institution with its billing accounts and
// an "institution.created" event.
func (s *Service) CreateInstitution(ctx context.Context, n NewInstitution, by store.AuditEvent) (store.Institution, error) {
	if err := n.Validate(); err != nil {
		return store.Institution{}, err
	}
	now := s.now()
	in := store.Institution{ID: uuid.NewString(), Name: strings.Join(strings.Fields(n.Name), " "), CreatedAt: now, UpdatedAt: now}
	for _, b := range n.BillingAccounts {
		in.BillingAccounts = append(in.BillingAccounts, store.BillingAccount{
			Name: strings.Join(strings.Fields(b.Name), " "), CustomerNumber: b.CustomerNumber})
	}
	slices.SortFunc(in.BillingAccounts, func(a, b store.BillingAccount) int { return strings.Compare(a.CustomerNumber, b.CustomerNumber) })
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateInstitution(ctx, in); err != nil {
			return err
		}
		e := s.event(ctx, by, "institution.created", map[string]string{"institution_id": in.ID, "name": in.Name})
		return tx.AppendAuditEvent(ctx, e)
	})
	if err != nil {
		return store.Institution{}, fmt.Errorf("create institution: %w", err)
	}
	return in, nil
}

// GetInstitution returns one institution; store.ErrNotFound (wrapped) if none.
func (s *Service) GetInstitution(ctx context.Context, id string) (store.Institution, error) {
	if err := CheckText("id", id, 64); err != nil {
		return store.Institution{}, err
	}
	return s.Store.GetInstitution(ctx, id)
}

// ListInstitutions lists every institution, by name.
func (s *Service) ListInstitutions(ctx context.Context) ([]store.Institution, error) {
	return s.Store.ListInstitutions(ctx)
}

// Grant is what a user gets at an institution.
type Grant struct {
	UserID        string   `json:"-"`
	InstitutionID string   `json:"-"`
	Primary       bool     `json:"primary"`
	Mandates      []string `json:"mandates"`
	Rights        []string `json:"rights"`
}

var mandateRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._/-]{0,63}$`)

func (g Grant) validate() error {
	if err := checkTexts(text("user", 64, g.UserID), text("institution", 64, g.InstitutionID),
		text("mandates", 64, g.Mandates...), text("rights", 64, g.Rights...)); err != nil {
		return err
	}
	if len(g.Mandates) > 100 {
		return inputErr("mandates", "at most 100")
	}
	for _, m := range g.Mandates {
		if !mandateRE.MatchString(m) {
			return inputErr("mandates", fmt.Sprintf("%q must be 1 to 64 letters, digits, spaces or . _ / -", m))
		}
	}
	for _, r := range g.Rights {
		if !slices.Contains(store.Rights, r) {
			return inputErr("rights", fmt.Sprintf("%q must be one of %s", r, strings.Join(store.Rights, ", ")))
		}
	}
	return nil
}

// GrantAccess adds to what the user holds at the institution: the
// membership (primary if asked, or if the user has no primary one yet),
// the mandates and special rights, with a "membership.granted" event. A
// new primary institution replaces the old one: a user has exactly one.
func (s *Service) GrantAccess(ctx context.Context, g Grant, by store.AuditEvent) (store.Membership, error) {
	return s.putMembership(ctx, g, by, false)
}

// PutMembership sets what the user holds at the institution (PUT
// /api/v1/users/{id}/memberships/{institution_id}): mandates and rights
// are replaced. Unsetting the primary flag of the primary institution is
// refused (make another one primary instead).
func (s *Service) PutMembership(ctx context.Context, g Grant, by store.AuditEvent) (store.Membership, error) {
	return s.putMembership(ctx, g, by, true)
}

func (s *Service) putMembership(ctx context.Context, g Grant, by store.AuditEvent, replace bool) (store.Membership, error) {
	if err := g.validate(); err != nil {
		return store.Membership{}, err
	}
	now := s.now()
	var m store.Membership
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockUser(ctx, g.UserID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &InputError{Field: "user", Message: "no such user", Err: store.ErrNotFound}
			}
			return err
		}
		if _, err := tx.GetInstitution(ctx, g.InstitutionID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &InputError{Field: "institution", Message: fmt.Sprintf("no institution %q", g.InstitutionID), Err: store.ErrNotFound}
			}
			return err
		}
		existing, err := tx.ListMemberships(ctx, g.UserID)
		if err != nil {
			return err
		}
		m = store.Membership{UserID: g.UserID, InstitutionID: g.InstitutionID, Primary: g.Primary, CreatedAt: now}
		hasPrimary := false
		for _, x := range existing {
			if x.InstitutionID == g.InstitutionID {
				m.CreatedAt, m.BillingCustomerNumber = x.CreatedAt, x.BillingCustomerNumber
				if !replace {
					m.Mandates, m.Rights = x.Mandates, x.Rights
					m.Primary = m.Primary || x.Primary
				} else if x.Primary && !g.Primary {
					return inputErr("primary", "this is the user's primary institution: make another institution primary instead")
				}
			} else if x.Primary {
				hasPrimary = true
			}
		}
		if !hasPrimary {
			m.Primary = true // exactly one primary
		}
		m.Mandates = mergeSorted(m.Mandates, g.Mandates)
		m.Rights = mergeSorted(m.Rights, g.Rights)
		if m.Primary {
			for _, x := range existing {
				if x.Primary && x.InstitutionID != g.InstitutionID {
					x.Primary = false
					if err := tx.PutMembership(ctx, x); err != nil {
						return err
					}
				}
			}
		}
		if err := tx.PutMembership(ctx, m); err != nil {
			return err
		}
		e := s.event(ctx, withUser(by, g.UserID), "membership.granted", map[string]string{
			"institution_id": g.InstitutionID, "primary": fmt.Sprint(m.Primary),
			"mandates": strings.Join(m.Mandates, ","), "rights": strings.Join(m.Rights, ","),
		})
		return tx.AppendAuditEvent(ctx, e)
	})
	if err != nil {
		return store.Membership{}, err
	}
	return m, nil
}

func mergeSorted(a, b []string) []string {
	var out []string
	for _, v := range append(append([]string(nil), a...), b...) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}
