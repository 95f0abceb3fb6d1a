package flow

import (
	"slices"
)

// Method is an authentication method reference (RFC 8176 §2).
type Method string

// The methods Sésame uses.
const (
	PWD Method = "pwd" // password
	OTP Method = "otp" // one-time code: authenticator app, recovery code
	SMS Method = "sms" // code sent by SMS
	HWK Method = "hwk" // proof of possession of a hardware key (security key)
	SWK Method = "swk" // proof of possession of a software key (passkey)
	MFA Method = "mfa" // several factors
)

// secondFactor reports whether m is a second factor.
func (m Method) secondFactor() bool { return m == OTP || m == SMS || m == HWK || m == SWK }

// AMR is the set of methods a sign-in used.
type AMR []Method

// ParseAMR reads stored RFC 8176 names.
func ParseAMR(names []string) AMR {
	var a AMR
	for _, n := range names {
		a = a.With(Method(n))
	}
	return a
}

// With returns a with m added once.
func (a AMR) With(m Method) AMR {
	if slices.Contains(a, m) {
		return a
	}
	return append(slices.Clip(a), m)
}

// Has reports whether a contains m.
func (a AMR) Has(m Method) bool { return slices.Contains(a, m) }

// MultiFactor reports whether a second factor was used.
func (a AMR) MultiFactor() bool { return slices.ContainsFunc(a, Method.secondFactor) }

// Names renders a as the amr claim: pwd first, then the second factors in
// the order used, then "mfa" when a second factor is present.
func (a AMR) Names() []string {
	var out []string
	if a.Has(PWD) {
		out = append(out, string(PWD))
	}
	for _, m := range a {
		if m.secondFactor() && !slices.Contains(out, string(m)) {
			out = append(out, string(m))
		}
	}
	if a.MultiFactor() {
		out = append(out, string(MFA))
	}
	return out
}

// ACR is the authentication context class Sésame asserts.
type ACR string

const (
	// ACRNone: a password alone (an account in its grace period).
	ACRNone ACR = ""
	// ACRMFA: a password and a second factor.
	ACRMFA ACR = "urn:sesame:acr:mfa"
	// ACRPhishingResistant: a second factor bound to the origin (passkey,
	// security key).
	ACRPhishingResistant ACR = "urn:sesame:acr:phishing-resistant"
)

// ACROf is the class a set of methods reaches.
func ACROf(a AMR) ACR {
	switch {
	case a.Has(HWK) || a.Has(SWK):
		return ACRPhishingResistant
	case a.MultiFactor():
		return ACRMFA
	}
	return ACRNone
}

func (c ACR) rank() int {
	switch c {
	case ACRPhishingResistant:
		return 2
	case ACRMFA:
		return 1
	}
	return 0
}

// Satisfies reports whether c meets acr_values (alternatives, OIDC Core
// §3.1.2.1): at least one of ours that c reaches; values that are not ours
// are voluntary and never refuse.
func (c ACR) Satisfies(requested []string) bool {
	ours := false
	for _, v := range requested {
		want := ACR(v)
		if want != ACRMFA && want != ACRPhishingResistant {
			continue
		}
		ours = true
		if c.rank() >= want.rank() {
			return true
		}
	}
	return !ours
}

// Required is the lowest of our classes that requested asks for
// (ACRNone when it asks for none of ours).
func Required(requested []string) ACR {
	req := ACRNone
	for _, v := range requested {
		if want := ACR(v); want == ACRMFA || want == ACRPhishingResistant {
			if req == ACRNone || want.rank() < req.rank() {
				req = want
			}
		}
	}
	return req
}
