package flow

import (
	"slices"
	"testing"
)

func TestAMRNames(t *testing.T) {
	tests := []struct {
		in   AMR
		want []string
	}{
		{AMR{PWD}, []string{"pwd"}},
		{AMR{OTP, PWD}, []string{"pwd", "otp", "mfa"}},
		{AMR{PWD, OTP, OTP, SMS}, []string{"pwd", "otp", "sms", "mfa"}},
		{AMR{PWD, HWK}, []string{"pwd", "hwk", "mfa"}},
		{ParseAMR([]string{"pwd", "otp", "mfa"}), []string{"pwd", "otp", "mfa"}},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := tt.in.With(OTP).Names(); tt.in != nil && !slices.Contains(got, "otp") {
			t.Errorf("%v.With(otp).Names() = %v", tt.in, got)
		}
		if got := tt.in.Names(); !slices.Equal(got, tt.want) {
			t.Errorf("%v.Names() = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestACR(t *testing.T) {
	if ACROf(AMR{PWD}) != ACRNone || ACROf(AMR{PWD, OTP}) != ACRMFA || ACROf(AMR{PWD, SWK}) != ACRPhishingResistant {
		t.Fatal("ACROf")
	}
	tests := []struct {
		have      ACR
		requested []string
		want      bool
	}{
		{ACRNone, nil, true},
		{ACRNone, []string{"urn:example:other"}, true}, // not ours: voluntary
		{ACRNone, []string{"urn:sesame:acr:mfa"}, false},
		{ACRMFA, []string{"urn:sesame:acr:mfa"}, true},
		{ACRMFA, []string{"urn:sesame:acr:phishing-resistant"}, false},
		{ACRPhishingResistant, []string{"urn:sesame:acr:mfa"}, true},
		{ACRMFA, []string{"urn:sesame:acr:phishing-resistant", "urn:sesame:acr:mfa"}, true}, // alternatives
	}
	for _, tt := range tests {
		if got := tt.have.Satisfies(tt.requested); got != tt.want {
			t.Errorf("%q.Satisfies(%v) = %v, want %v", tt.have, tt.requested, got, tt.want)
		}
	}
	if Required([]string{"urn:example:x"}) != ACRNone || Required([]string{"urn:sesame:acr:phishing-resistant", "urn:sesame:acr:mfa"}) != ACRMFA {
		t.Fatal("Required")
	}
}
