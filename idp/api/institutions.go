package api

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/users"
)

// institutionJSON is an institution with its billing accounts.
type institutionJSON struct {
	ID                  string        `json:"id"`
	Name                string        `json:"name"`
	BillingAccounts     []billingJSON `json:"billing_accounts"`
	AutoApprove         bool          `json:"auto_approve"`
	RoleMailboxPatterns []string      `json:"role_mailbox_patterns"`
	CreatedAt           time.Time     `json:"created_at"`
	UpdatedAt           time.Time     `json:"updated_at"`
}

type billingJSON struct {
	Name           string `json:"name"`
	CustomerNumber string `json:"customer_number"`
}

func institutionOf(in store.Institution) institutionJSON {
	out := institutionJSON{ID: in.ID, Name: in.Name, BillingAccounts: []billingJSON{}, AutoApprove: in.AutoApprove,
		RoleMailboxPatterns: nonNil(in.RoleMailboxPatterns), CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC()}
	for _, b := range in.BillingAccounts {
		out.BillingAccounts = append(out.BillingAccounts, billingJSON{Name: b.Name, CustomerNumber: b.CustomerNumber})
	}
	return out
}

// membershipJSON is what a user holds at one institution.
type membershipJSON struct {
	InstitutionID         string    `json:"institution_id"`
	InstitutionName       string    `json:"institution_name"`
	Primary               bool      `json:"primary"`
	BillingCustomerNumber string    `json:"billing_customer_number"`
	Mandates              []string  `json:"mandates"`
	Rights                []string  `json:"rights"`
	CreatedAt             time.Time `json:"created_at"`
}

func (h *Handler) membershipOf(ctx context.Context, m store.Membership, names map[string]string) (membershipJSON, error) {
	name, ok := names[m.InstitutionID]
	if !ok {
		in, err := h.Store.GetInstitution(ctx, m.InstitutionID)
		if err != nil {
			return membershipJSON{}, err
		}
		name = in.Name
		names[m.InstitutionID] = name
	}
	return membershipJSON{InstitutionID: m.InstitutionID, InstitutionName: name, Primary: m.Primary,
		BillingCustomerNumber: m.BillingCustomerNumber, Mandates: nonNil(m.Mandates), Rights: nonNil(m.Rights),
		CreatedAt: m.CreatedAt.UTC()}, nil
}

func (h *Handler) createInstitution(w http.ResponseWriter, r *http.Request, c *call) error {
	var in users.NewInstitution
	if err := decode(w, r, &in, false); err != nil {
		return err
	}
	inst, err := h.Users.CreateInstitution(r.Context(), in, c.by(h.ip(r)))
	if err != nil {
		return err
	}
	c.details = map[string]string{"institution_id": inst.ID}
	return writeJSON(w, http.StatusCreated, institutionOf(inst))
}

func (h *Handler) listInstitutions(w http.ResponseWriter, r *http.Request, c *call) error {
	list, err := h.Users.ListInstitutions(r.Context())
	if err != nil {
		return err
	}
	out := page[institutionJSON]{Items: []institutionJSON{}}
	for _, in := range list {
		out.Items = append(out.Items, institutionOf(in))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getInstitution(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if len(id) > 64 {
		return notFound()
	}
	in, err := h.Users.GetInstitution(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, institutionOf(in))
}

// grantBody is the body of PUT /users/{id}/memberships/{institution_id}.
type grantBody struct {
	Primary  bool     `json:"primary"`
	Mandates []string `json:"mandates"`
	Rights   []string `json:"rights"`
}

// putMembership sets what the user holds at the institution: mandates and
// rights are replaced (users.PutMembership).
func (h *Handler) putMembership(w http.ResponseWriter, r *http.Request, c *call) error {
	userID, instID := r.PathValue("id"), r.PathValue("institution_id")
	if _, err := uuid.Parse(userID); err != nil || len(userID) != 36 || len(instID) > 64 {
		return notFound()
	}
	var b grantBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	c.details = map[string]string{"institution_id": instID}
	m, err := h.Users.PutMembership(r.Context(), users.Grant{UserID: userID, InstitutionID: instID, Primary: b.Primary,
		Mandates: b.Mandates, Rights: b.Rights}, c.by(h.ip(r)))
	if err != nil {
		return err
	}
	j, err := h.membershipOf(r.Context(), m, map[string]string{})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}
