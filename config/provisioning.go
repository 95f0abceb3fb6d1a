package config

import (
	"fmt"
	"regexp"
	"time"
	_ "time/tzdata" // provisioning.time_zone works without the system's zone files
)

// Provisioning configures account requests (provisioning) and the
// sesame:institutions claims (occupation features).
type Provisioning struct {
	// Occupations a request may name; empty: DefaultOccupations.
	Occupations []Occupation `yaml:"occupations"`
	// Holidays is the holiday calendar skipped by due dates: "quebec"
	// (default: Québec's statutory holidays, computed for every year) or
	// "none".
	Holidays string `yaml:"holidays"`
	// ExtraHolidays are more days off, as YYYY-MM-DD.
	ExtraHolidays []string `yaml:"extra_holidays"`
	// TimeZone of business days (default America/Toronto).
	TimeZone string `yaml:"time_zone"`
	// BusinessDays from submission to due date (default 3).
	BusinessDays int `yaml:"business_days"`
	// ActivationTTL is how long the welcome email's activation link works
	// (default 7 days).
	ActivationTTL time.Duration `yaml:"activation_ttl"`
	// CommentMaxLength caps the comment, in characters (default 2000).
	CommentMaxLength int `yaml:"comment_max_length"`
	// RoleMailboxes are the local parts of shared mailboxes refused as a new
	// user's address; empty: the built-in FR/EN list of provisioning.
	RoleMailboxes []string `yaml:"role_mailboxes"`
}

// Occupation is an occupation a request may name.
type Occupation struct {
	Name    string `yaml:"name"` // e.g. "physician"; "administrative" is the one non-health occupation
	LabelFR string `yaml:"label_fr"`
	LabelEN string `yaml:"label_en"`
	// Health: a health profession (such a person may not hold an
	// administrative account).
	Health bool `yaml:"health"`
	// LabResults: lab registration numbers apply (non-physician health
	// professions); missing ones give a warning.
	LabResults bool `yaml:"lab_results"`
	// Features enabled by the profession, exposed in the "features" claim.
	Features []string `yaml:"features"`
	// Numbers: a pattern (Go regexp, whole value) and whether it is required.
	PracticeNumber   NumberRule `yaml:"practice_number"`
	PrescriberNumber NumberRule `yaml:"prescriber_number"`
}

// NumberRule validates a practice or prescriber number. An empty Pattern
// means the profession has no such number (any given is refused).
type NumberRule struct {
	Pattern  string `yaml:"pattern"`
	Required bool   `yaml:"required"`
}

// DefaultOccupations are the occupations when none is configured. The
// number patterns are the formats of the Québec orders' permit numbers as
// printed on prescriptions (physicians: CMQ, 5 digits; nurses and nurse
// practitioners: OIIQ, 6 or 7 digits; pharmacists: OPQ, 6 digits; the
// others: 4 to 7 digits); operators adjust them in the configuration.
func DefaultOccupations() []Occupation {
	digits := func(p string, req bool) NumberRule { return NumberRule{Pattern: p, Required: req} }
	return []Occupation{
		{Name: "administrative", LabelFR: "Personnel administratif", LabelEN: "Administrative staff"},
		{Name: "physician", LabelFR: "Médecin", LabelEN: "Physician", Health: true,
			Features:       []string{"DSQ", "SAFIR", "prescription"},
			PracticeNumber: digits(`[0-9]{5}`, true), PrescriberNumber: digits(`[0-9]{5,6}`, false)},
		{Name: "resident", LabelFR: "Résident(e) en médecine", LabelEN: "Medical resident", Health: true,
			Features: []string{"DSQ", "SAFIR"}, PracticeNumber: digits(`[0-9]{5,7}`, true)},
		{Name: "nurse", LabelFR: "Infirmier(ère)", LabelEN: "Nurse", Health: true, LabResults: true,
			Features: []string{"DSQ"}, PracticeNumber: digits(`[0-9]{6,7}`, true)},
		{Name: "nurse_practitioner", LabelFR: "Infirmier(ère) praticien(ne) spécialisé(e)", LabelEN: "Nurse practitioner",
			Health: true, LabResults: true, Features: []string{"DSQ", "SAFIR", "prescription"},
			PracticeNumber: digits(`[0-9]{6,7}`, true), PrescriberNumber: digits(`[0-9]{6,7}`, true)},
		{Name: "pharmacist", LabelFR: "Pharmacien(ne)", LabelEN: "Pharmacist", Health: true, LabResults: true,
			Features: []string{"DSQ", "prescription"}, PracticeNumber: digits(`[0-9]{6}`, true)},
		{Name: "respiratory_therapist", LabelFR: "Inhalothérapeute", LabelEN: "Respiratory therapist", Health: true,
			LabResults: true, Features: []string{"DSQ"}, PracticeNumber: digits(`[0-9]{4,7}`, true)},
		{Name: "psychologist", LabelFR: "Psychologue", LabelEN: "Psychologist", Health: true, LabResults: true,
			PracticeNumber: digits(`[0-9]{4,7}`, true)},
		{Name: "social_worker", LabelFR: "Travailleur(euse) social(e)", LabelEN: "Social worker", Health: true,
			LabResults: true, PracticeNumber: digits(`[0-9A-Z]{4,10}`, true)},
		{Name: "nutritionist", LabelFR: "Nutritionniste", LabelEN: "Nutritionist", Health: true, LabResults: true,
			PracticeNumber: digits(`[0-9]{4,7}`, true)},
		{Name: "physiotherapist", LabelFR: "Physiothérapeute", LabelEN: "Physiotherapist", Health: true,
			LabResults: true, PracticeNumber: digits(`[0-9]{4,7}`, true)},
	}
}

// DefaultProvisioning is the provisioning section of Default.
func DefaultProvisioning() Provisioning {
	return Provisioning{
		Holidays:         "quebec",
		TimeZone:         "America/Toronto",
		BusinessDays:     3,
		ActivationTTL:    7 * 24 * time.Hour,
		CommentMaxLength: 2000,
	}
}

// OccupationList is Occupations, or DefaultOccupations when empty.
func (p Provisioning) OccupationList() []Occupation {
	if len(p.Occupations) == 0 {
		return DefaultOccupations()
	}
	return p.Occupations
}

func (p Provisioning) validate(bad func(key, format string, args ...any)) {
	seen := map[string]bool{}
	for i, o := range p.Occupations {
		key := fmt.Sprintf("provisioning.occupations[%d]", i)
		if o.Name == "" || seen[o.Name] {
			bad(key+".name", "%q must be set and unique", o.Name)
		}
		seen[o.Name] = true
		for k, r := range map[string]NumberRule{"practice_number": o.PracticeNumber, "prescriber_number": o.PrescriberNumber} {
			if _, err := regexp.Compile(`^(?:` + r.Pattern + `)$`); err != nil {
				bad(key+"."+k+".pattern", "%q is not a regular expression: %v", r.Pattern, err)
			}
			if r.Required && r.Pattern == "" {
				bad(key+"."+k, "required needs a pattern")
			}
		}
	}
	if p.Holidays != "quebec" && p.Holidays != "none" {
		bad("provisioning.holidays", "%q must be quebec or none", p.Holidays)
	}
	for _, d := range p.ExtraHolidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			bad("provisioning.extra_holidays", "%q must be YYYY-MM-DD", d)
		}
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil || p.TimeZone == "" {
		bad("provisioning.time_zone", "%q is not a time zone", p.TimeZone)
	}
	if p.BusinessDays < 0 || p.BusinessDays > 60 {
		bad("provisioning.business_days", "must be between 0 and 60")
	}
	if p.ActivationTTL < time.Hour || p.ActivationTTL > 90*24*time.Hour {
		bad("provisioning.activation_ttl", "must be between 1h and 90 days")
	}
	if p.CommentMaxLength < 1 || p.CommentMaxLength > 100_000 {
		bad("provisioning.comment_max_length", "must be between 1 and 100000")
	}
}
