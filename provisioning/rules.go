package provisioning

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sesame-idp/sesame/config"
	"github.com/sesame-idp/sesame/idp/store"
)

// DefaultRoleMailboxes are local parts of shared mailboxes, in French and
// English, refused as a new user's address (compared without . _ - + and
// trailing digits, on the whole local part and on its first word).
var DefaultRoleMailboxes = []string{
	"info", "infos", "information", "admin", "administration", "administrateur", "reception", "accueil",
	"secretariat", "secretaire", "secretary", "contact", "contactez", "rendezvous", "rdv", "appointments",
	"clinique", "clinic", "bureau", "office", "facturation", "billing", "comptabilite", "accounting",
	"noreply", "donotreply", "nepasrepondre", "support", "soutien", "aide", "help", "service", "services",
	"direction", "management", "rh", "hr", "emploi", "jobs", "courrier", "mail", "webmaster", "postmaster",
	"general", "equipe", "team", "staff", "personnel", "urgence", "triage", "pharmacie", "laboratoire", "lab",
	"infirmieres", "medecins", "dossiers", "archives", "fax", "telecopieur",
}

// evaluation is what the rules say about a request, now.
type evaluation struct {
	draft     store.AccountRequest // the request to store, Kind and TargetUserID set
	problems  problems
	warnings  problems
	forbidden *ForbiddenError
	target    store.User // the account an update changes (zero for a create)
	reference store.User
	insts     map[string]store.Institution
	occ       config.Occupation
}

func (e *evaluation) fail() error {
	if e.forbidden != nil {
		return e.forbidden
	}
	return e.problems.err()
}

// evaluate applies every rule of the procedure to req, for requester (zero
// for a client token) acting as actor, reading through q.
func (s *Service) evaluate(ctx context.Context, q store.Tx, actor Actor, requester store.User, req Request) (*evaluation, error) {
	e := &evaluation{insts: map[string]store.Institution{}}
	p := &e.problems
	d := &e.draft

	d.AccountType = req.AccountType
	switch req.AccountType {
	case "", store.AccountPerson:
		d.AccountType = store.AccountPerson
	case store.AccountScanning:
	default:
		p.add("account_type", "invalid_choice", "Must be person or scanning.", "Doit être person ou scanning.")
		d.AccountType = store.AccountPerson
	}
	scanning := d.AccountType == store.AccountScanning

	// The new user.
	if scanning {
		d.StationName = p.label("station_name", req.StationName, maxName)
		if d.StationName == "" && !p.has("station_name") {
			p.required("station_name", "")
		}
		d.ResponsibleName = p.name("responsible_name", req.ResponsibleName, true)
		d.Email = p.email("responsible_email", req.ResponsibleEmail)
		d.GivenName = d.StationName
		for _, f := range []struct{ name, v string }{
			{"new_user.given_name", req.NewUser.GivenName}, {"new_user.family_name", req.NewUser.FamilyName},
			{"occupation", req.Occupation}, {"practice_number", req.PracticeNumber},
			{"prescriber_number", req.PrescriberNumber}, {"reference_account.id", req.ReferenceAccount.ID},
		} {
			if strings.TrimSpace(f.v) != "" {
				p.add(f.name, "not_applicable", "Not for a scanning account.", "Ne s'applique pas à un compte de numérisation.")
			}
		}
		if len(req.LabRegistrations) > 0 {
			p.add("lab_registrations", "not_applicable", "Not for a scanning account.", "Ne s'applique pas à un compte de numérisation.")
		}
		if len(req.SpecialRights) > 0 {
			p.add("special_rights", "not_applicable", "A scanning account holds only the scanning mandate.",
				"Un compte de numérisation n'a que le mandat de numérisation.")
		}
	} else {
		d.GivenName = p.name("new_user.given_name", req.NewUser.GivenName, true)
		d.FamilyName = p.name("new_user.family_name", req.NewUser.FamilyName, true)
		d.Email = p.email("new_user.email", req.NewUser.Email)
		for _, f := range []struct{ name, v string }{
			{"station_name", req.StationName}, {"responsible_name", req.ResponsibleName}, {"responsible_email", req.ResponsibleEmail},
		} {
			if strings.TrimSpace(f.v) != "" {
				p.add(f.name, "not_applicable", "Only for a scanning account.", "Seulement pour un compte de numérisation.")
			}
		}
	}
	emailField := "new_user.email"
	if scanning {
		emailField = "responsible_email"
	}
	d.PreviouslyHadAccount = req.NewUser.PreviouslyHadAccount
	d.Locale = "fr-CA"
	switch req.NewUser.Locale {
	case "", "fr-CA":
	case "en-CA":
		d.Locale = "en-CA"
	default:
		p.add("new_user.locale", "invalid_choice", "Must be fr-CA or en-CA.", "Doit être fr-CA ou en-CA.")
	}

	// Institutions: known, one primary, the requester's right at each.
	if err := s.checkInstitutions(ctx, q, e, actor, req.Institutions, scanning); err != nil {
		return nil, err
	}
	if e.forbidden != nil {
		return e, nil // 403 before anything else is said about the request
	}

	// Occupation.
	if !scanning {
		d.Occupation = strings.TrimSpace(req.Occupation)
		if p.line("occupation", req.Occupation, 64) && p.required("occupation", d.Occupation) {
			o, ok := s.occupation(d.Occupation)
			if !ok {
				p.add("occupation", "invalid_choice", "Choose an occupation from the list.", "Choisissez une profession dans la liste.")
			}
			e.occ = o
		}
	}

	// Numbers.
	if !scanning {
		d.PracticeNumber = p.code("practice_number", req.PracticeNumber, maxNumber)
		d.PrescriberNumber = p.code("prescriber_number", req.PrescriberNumber, maxNumber)
		if e.occ.Name != "" {
			checkNumber(p, "practice_number", d.PracticeNumber, e.occ.PracticeNumber,
				"practice number", "numéro de pratique")
			checkNumber(p, "prescriber_number", d.PrescriberNumber, e.occ.PrescriberNumber,
				"prescriber number", "numéro de prescripteur")
		}
	}

	// The existing account, if any: previously had one, or a match.
	if err := s.findExisting(ctx, q, e, requester, emailField, scanning); err != nil {
		return nil, err
	}

	// Health professionals never get an administrative account.
	if !scanning && e.occ.Name != "" && !e.occ.Health {
		if d.PracticeNumber != "" || d.PrescriberNumber != "" {
			p.add("occupation", "health_professional_administrative",
				"A health professional (with a practice number) cannot have an administrative account, even for administrative work.",
				"Un professionnel de la santé (avec un numéro de pratique) ne peut pas avoir un compte administratif, même pour des tâches administratives.")
		} else if e.target.ID != "" && s.isHealth(e.target.Occupation) {
			p.add("occupation", "health_professional_administrative",
				"This person has an account as a health professional: they cannot have an administrative account.",
				"Cette personne a un compte de professionnel de la santé : elle ne peut pas avoir un compte administratif.")
		}
	}

	// Lab registrations.
	if !scanning {
		s.checkLabs(e, req.LabRegistrations)
	}

	// Reference account.
	if !scanning {
		if err := s.checkReference(ctx, q, e, req.ReferenceAccount); err != nil {
			return nil, err
		}
	}

	// Billing.
	d.BillingName = p.label("billing.name", req.Billing.Name, maxBillingName)
	d.BillingCustomerNumber = p.code("billing.customer_number", req.Billing.CustomerNumber, maxCustomer)
	okName := d.BillingName != "" || p.required("billing.name", d.BillingName)
	okNumber := d.BillingCustomerNumber != "" || p.required("billing.customer_number", d.BillingCustomerNumber)
	if okName && okNumber && !p.has("billing.name") && !p.has("billing.customer_number") {
		if prim, ok := e.insts[d.PrimaryInstitution()]; ok && !billingMatches(prim, d.BillingName, d.BillingCustomerNumber) {
			p.add("billing.customer_number", "billing_mismatch",
				fmt.Sprintf("No billing account %q - %s at %s: copy the exact name and customer number from the monthly invoice.", d.BillingName, d.BillingCustomerNumber, prim.Name),
				fmt.Sprintf("Aucun compte de facturation « %s - %s » pour %s : recopiez le nom et le numéro de client exacts de la facture mensuelle.", d.BillingName, d.BillingCustomerNumber, prim.Name))
		}
	}

	// Special rights: asked for, never copied.
	if !scanning {
		seen := map[string]bool{}
		if len(req.SpecialRights) > maxRights {
			p.add("special_rights", "too_many", "At most three special rights.", "Au plus trois droits spéciaux.")
		} else {
			for i, r := range req.SpecialRights {
				f := fmt.Sprintf("special_rights[%d]", i)
				if !p.line(f, r, 64) {
					continue
				}
				if !slices.Contains(store.Rights, r) {
					p.add(f, "invalid_choice", "Must be patient_merge, admin_account or account_requests.",
						"Doit être patient_merge, admin_account ou account_requests.")
					continue
				}
				if !seen[r] {
					seen[r] = true
					d.SpecialRights = append(d.SpecialRights, r)
				}
			}
		}
	}

	// Comment.
	d.Comment = p.comment("comment", req.Comment, s.cfg().CommentMaxLength)

	d.Warnings = nil
	for _, w := range e.warnings.list {
		d.Warnings = append(d.Warnings, w.Code)
	}
	return e, nil
}

func checkNumber(p *problems, field, v string, rule config.NumberRule, en, fr string) {
	if p.has(field) {
		return
	}
	switch {
	case v == "" && rule.Required:
		p.add(field, "required", fmt.Sprintf("Required for this profession: the %s as printed on prescriptions.", en),
			fmt.Sprintf("Obligatoire pour cette profession : le %s tel qu'imprimé sur les ordonnances.", fr))
	case v == "":
	case rule.Pattern == "":
		p.add(field, "not_applicable", fmt.Sprintf("This profession has no %s: leave it empty.", en),
			fmt.Sprintf("Cette profession n'a pas de %s : laissez-le vide.", fr))
	case !regexp.MustCompile(`^(?:` + rule.Pattern + `)$`).MatchString(v):
		p.add(field, "format", fmt.Sprintf("This is not a valid %s for this profession: check it.", en),
			fmt.Sprintf("Ce n'est pas un %s valide pour cette profession : vérifiez-le.", fr))
	}
}

func billingMatches(in store.Institution, name, number string) bool {
	for _, b := range in.BillingAccounts {
		if b.CustomerNumber == number && strings.EqualFold(strings.Join(strings.Fields(b.Name), " "), name) {
			return true
		}
	}
	return false
}

func (s *Service) checkInstitutions(ctx context.Context, q store.Tx, e *evaluation, actor Actor, in []InstitutionChoice, scanning bool) error {
	p := &e.problems
	if len(in) == 0 {
		p.add("institutions", "required", "Name at least one institution.", "Indiquez au moins un établissement.")
		return nil
	}
	if len(in) > maxInstitutions {
		p.add("institutions", "too_many", fmt.Sprintf("At most %d institutions.", maxInstitutions),
			fmt.Sprintf("Au plus %d établissements.", maxInstitutions))
		return nil
	}
	if scanning && len(in) > 1 {
		p.add("institutions", "one_only", "A scanning account is for one institution.", "Un compte de numérisation est pour un seul établissement.")
	}
	var memberships map[string]store.Membership
	if !actor.Admin {
		memberships = map[string]store.Membership{}
		if actor.UserID != "" {
			ms, err := q.ListMemberships(ctx, actor.UserID)
			if err != nil {
				return err
			}
			for _, m := range ms {
				memberships[m.InstitutionID] = m
			}
		}
	}
	primaries := 0
	for i, c := range in {
		f := fmt.Sprintf("institutions[%d].id", i)
		if !p.line(f, c.ID, 64) {
			continue
		}
		id := strings.TrimSpace(c.ID)
		if !p.required(f, id) {
			continue
		}
		if _, dup := e.insts[id]; dup {
			p.add(f, "duplicate", "This institution is listed twice.", "Cet établissement est indiqué deux fois.")
			continue
		}
		inst, err := q.GetInstitution(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			p.add(f, "unknown", "No such institution.", "Établissement inconnu.")
			continue
		} else if err != nil {
			return err
		}
		e.insts[id] = inst
		if memberships != nil && e.forbidden == nil && !slices.Contains(memberships[id].Rights, store.RightAccountRequests) {
			e.forbidden = forbiddenAt(inst)
		}
		primary := c.Primary || (scanning && len(in) == 1)
		if primary {
			primaries++
		}
		e.draft.Institutions = append(e.draft.Institutions, store.RequestInstitution{ID: id, Primary: primary})
	}
	switch {
	case primaries == 0 && len(e.insts) > 0:
		p.add("institutions", "primary_required", "Mark the primary institution.", "Indiquez l'établissement principal.")
	case primaries > 1:
		p.add("institutions", "one_primary", "Only one institution can be the primary one.", "Un seul établissement peut être l'établissement principal.")
	}
	return nil
}

func (s *Service) checkLabs(e *evaluation, labs []LabRegistration) {
	p, d := &e.problems, &e.draft
	if len(labs) > maxLabs {
		p.add("lab_registrations", "too_many", fmt.Sprintf("At most %d laboratory registrations.", maxLabs),
			fmt.Sprintf("Au plus %d numéros d'inscription de laboratoire.", maxLabs))
		return
	}
	seen := map[LabRegistration]bool{}
	for i, l := range labs {
		lf, nf := fmt.Sprintf("lab_registrations[%d].laboratory", i), fmt.Sprintf("lab_registrations[%d].number", i)
		lab := p.label(lf, l.Laboratory, maxLaboratory)
		num := p.code(nf, l.Number, maxNumber)
		if p.has(lf) || p.has(nf) {
			continue
		}
		if lab == "" && num == "" {
			continue // an empty pair of the form
		}
		if !p.required(lf, lab) || !p.required(nf, num) {
			continue
		}
		r := LabRegistration{Laboratory: lab, Number: num}
		if !seen[r] {
			seen[r] = true
			d.LabRegistrations = append(d.LabRegistrations, r)
		}
	}
	if e.occ.Name == "" {
		return
	}
	if !e.occ.LabResults && len(d.LabRegistrations) > 0 {
		p.add("lab_registrations", "not_applicable", "Laboratory registration numbers are for non-physician health professionals.",
			"Les numéros d'inscription de laboratoire sont pour les professionnels de la santé non médecins.")
		return
	}
	if e.occ.LabResults && len(d.LabRegistrations) == 0 && !p.has("lab_registrations") {
		e.warnings.add("lab_registrations", "lab_registrations_missing",
			"No laboratory registration number: this user will not receive laboratory results electronically. Ask the laboratories for their numbers.",
			"Aucun numéro d'inscription de laboratoire : cet utilisateur ne recevra pas les résultats de laboratoire par voie électronique. Demandez ses numéros aux laboratoires.")
	}
}

func (s *Service) checkReference(ctx context.Context, q store.Tx, e *evaluation, ref ReferenceAccount) error {
	p, d := &e.problems, &e.draft
	d.ReferenceGivenName = p.name("reference_account.given_name", ref.GivenName, false)
	d.ReferenceFamilyName = p.name("reference_account.family_name", ref.FamilyName, false)
	if !p.line("reference_account.id", ref.ID, maxRefID) {
		return nil
	}
	d.ReferenceID = strings.TrimSpace(ref.ID)
	if d.ReferenceID == "" {
		if d.ReferenceGivenName != "" || d.ReferenceFamilyName != "" {
			p.required("reference_account.id", "")
			return nil
		}
		e.warnings.add("reference_account", "no_reference", "No reference account: no mandate will be copied; support assigns them.",
			"Aucun compte de référence : aucun mandat ne sera copié; le soutien les attribuera.")
		return nil
	}
	u, err := q.GetUser(ctx, d.ReferenceID)
	if errors.Is(err, store.ErrNotFound) {
		u, err = q.GetUserByUsername(ctx, d.ReferenceID)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.add("reference_account.id", "unknown", "No account has this ID.", "Aucun compte n'a cet identifiant.")
		return nil
	case err != nil:
		return err
	}
	if u.Status != store.StatusActive {
		p.add("reference_account.id", "reference_inactive", "The reference account must be an active account.",
			"Le compte de référence doit être un compte actif.")
		return nil
	}
	if (d.ReferenceGivenName != "" && !strings.EqualFold(d.ReferenceGivenName, cleanName(u.GivenName))) ||
		(d.ReferenceFamilyName != "" && !strings.EqualFold(d.ReferenceFamilyName, cleanName(u.FamilyName))) {
		p.add("reference_account.id", "reference_mismatch", "This ID belongs to someone else: check the name and the ID.",
			"Cet identifiant appartient à quelqu'un d'autre : vérifiez le nom et l'identifiant.")
		return nil
	}
	if u.ID == e.target.ID && u.ID != "" {
		p.add("reference_account.id", "reference_self", "The reference account is the account being updated.",
			"Le compte de référence est le compte mis à jour.")
		return nil
	}
	d.ReferenceID = u.ID
	e.reference = u
	mandates, err := s.referenceMandates(ctx, q, u.ID, d.Institutions)
	if err != nil {
		return err
	}
	if len(mandates) == 0 {
		e.warnings.add("reference_account", "reference_no_mandates",
			"The reference account has no mandate at the requested institutions: none will be copied.",
			"Le compte de référence n'a aucun mandat dans les établissements demandés : aucun ne sera copié.")
	}
	return nil
}

// referenceMandates returns the reference account's mandates at the
// requested institutions only.
func (s *Service) referenceMandates(ctx context.Context, q store.Tx, refID string, insts []store.RequestInstitution) (map[string][]string, error) {
	out := map[string][]string{}
	if refID == "" {
		return out, nil
	}
	ms, err := q.ListMemberships(ctx, refID)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if slices.ContainsFunc(insts, func(r store.RequestInstitution) bool { return r.ID == m.InstitutionID }) && len(m.Mandates) > 0 {
			out[m.InstitutionID] = m.Mandates
		}
	}
	return out, nil
}

// findExisting finds the account this request is about: the one the
// requester knows of (previously had an account), or a match by email,
// practice number or name at a requested institution. It checks the email
// and number rules that depend on other accounts.
func (s *Service) findExisting(ctx context.Context, q store.Tx, e *evaluation, requester store.User, emailField string, scanning bool) error {
	p, d := &e.problems, &e.draft
	sameName := func(u store.User) bool {
		return strings.EqualFold(cleanName(u.GivenName), d.GivenName) && strings.EqualFold(cleanName(u.FamilyName), d.FamilyName)
	}
	candidates := map[string]store.User{}
	why := map[string]string{}

	if d.Email != "" && !p.has(emailField) {
		folded := foldEmail(d.Email)
		local, _, _ := strings.Cut(folded, "@")
		switch {
		case requester.ID != "" && foldEmail(requester.Email) == folded && !scanning:
			p.add(emailField, "requester_email", "This is your own address: give the new user's own address (business or personal), which only they use.",
				"C'est votre propre adresse : indiquez l'adresse du nouvel utilisateur (professionnelle ou personnelle), que lui seul utilise.")
		case isRoleMailbox(local, s.roleMailboxes()):
			p.add(emailField, "role_mailbox", "This looks like a shared mailbox (reception, info…): the access is sent confidentially, give an address only this person uses.",
				"Cette adresse semble être une boîte partagée (accueil, info…) : les accès sont envoyés de façon confidentielle, indiquez une adresse que seule cette personne utilise.")
		default:
			for _, in := range e.insts {
				if m := matchesPattern(folded, in.RoleMailboxPatterns); m {
					p.add(emailField, "role_mailbox", fmt.Sprintf("%s lists this address as a shared mailbox: give an address only this person uses.", in.Name),
						fmt.Sprintf("%s indique que cette adresse est une boîte partagée : indiquez une adresse que seule cette personne utilise.", in.Name))
					break
				}
			}
		}
		if !scanning && !p.has(emailField) {
			us, err := q.ListUsersByEmail(ctx, folded)
			if err != nil {
				return err
			}
			for _, u := range us {
				if sameName(u) {
					candidates[u.ID], why[u.ID] = u, "email"
				} else if u.Status != store.StatusClosed {
					p.add(emailField, "email_in_use", "This address is used by another person's account: give an address only the new user uses.",
						"Cette adresse est utilisée par le compte d'une autre personne : indiquez une adresse que seul le nouvel utilisateur utilise.")
					break
				}
			}
		}
	}
	if scanning {
		d.Kind = store.RequestCreate
		return nil
	}
	for _, n := range []struct {
		field, v string
		list     func(context.Context, string) ([]store.User, error)
	}{
		{"practice_number", d.PracticeNumber, q.ListUsersByPracticeNumber},
		{"prescriber_number", d.PrescriberNumber, q.ListUsersByPrescriberNumber},
	} {
		if n.v == "" || p.has(n.field) {
			continue
		}
		us, err := n.list(ctx, n.v)
		if err != nil {
			return err
		}
		for _, u := range us {
			// Unique per profession; and an administrative request with the
			// number of a health professional is about that professional.
			relevant := u.Occupation == d.Occupation || (s.isHealth(u.Occupation) && e.occ.Name != "" && !e.occ.Health)
			switch {
			case !relevant:
			case sameName(u):
				candidates[u.ID], why[u.ID] = u, n.field
			case u.Occupation == d.Occupation && !p.has(n.field):
				p.add(n.field, "number_taken", "This number belongs to another person's account: check it.",
					"Ce numéro appartient au compte d'une autre personne : vérifiez-le.")
			}
		}
	}
	if d.GivenName != "" && d.FamilyName != "" {
		for _, in := range d.Institutions {
			us, err := q.ListUsersByNameAt(ctx, d.GivenName, d.FamilyName, in.ID)
			if err != nil {
				return err
			}
			for _, u := range us {
				if _, ok := candidates[u.ID]; !ok {
					candidates[u.ID], why[u.ID] = u, "name"
				}
			}
		}
	}
	switch len(candidates) {
	case 0:
		d.Kind = store.RequestCreate
		if d.PreviouslyHadAccount {
			e.warnings.add("new_user.previously_had_account", "previous_account_not_found",
				"No existing account was found for this person: support will look for it before creating one.",
				"Aucun compte existant n'a été trouvé pour cette personne : le soutien le cherchera avant d'en créer un.")
		}
	case 1:
		for _, u := range candidates {
			e.target = u
		}
		d.Kind, d.TargetUserID = store.RequestUpdate, e.target.ID
		msgEN := "This person already has an account: it will be updated (institutions and mandates added), not duplicated."
		msgFR := "Cette personne a déjà un compte : il sera mis à jour (établissements et mandats ajoutés), sans doublon."
		if e.target.Status == store.StatusClosed || e.target.Status == store.StatusDisabled {
			msgEN = "This person has a closed account: it will be reopened and updated, not duplicated."
			msgFR = "Cette personne a un compte fermé : il sera rouvert et mis à jour, sans doublon."
		}
		e.warnings.add("new_user", "update_existing", msgEN, msgFR)
		if e.target.AccountType == store.AccountScanning {
			p.add("new_user", "matches_scanning", "This matches a scanning account, not a person's.",
				"Ceci correspond à un compte de numérisation, pas à celui d'une personne.")
		}
	default:
		p.add("new_user", "ambiguous_match", "Several existing accounts match this person (email, practice number, name): contact support.",
			"Plusieurs comptes existants correspondent à cette personne (courriel, numéro de pratique, nom) : communiquez avec le soutien.")
		d.Kind = store.RequestCreate
	}
	return nil
}

// isRoleMailbox: the local part, without separators and trailing digits,
// or its first word, is a role.
func isRoleMailbox(local string, roles []string) bool {
	local, _, _ = strings.Cut(local, "+")
	words := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '\'' || r == '%' })
	whole := strings.Join(words, "")
	candidates := []string{strings.TrimRight(whole, "0123456789")}
	if len(words) > 0 {
		candidates = append(candidates, strings.TrimRight(words[0], "0123456789"))
	}
	for _, c := range candidates {
		for _, r := range roles {
			r = strings.ToLower(strings.NewReplacer(".", "", "_", "", "-", "").Replace(r))
			if c == r {
				return true
			}
		}
	}
	return false
}

func matchesPattern(addr string, patterns []string) bool {
	for _, pat := range patterns {
		re, err := regexp.Compile(`(?i)^(?:` + pat + `)$`)
		if err == nil && re.MatchString(addr) {
			return true
		}
	}
	return false
}
