package users

import (
	"errors"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// The refusals of ParseCanadianMobile, each with its message key (FR/EN in
// templates/locales) and its English text.
var (
	PhoneRequired    = phoneErr("error.phone.required", "enter a cell phone number")
	PhoneLetters     = phoneErr("error.phone.letters", "a phone number has digits only, no letters")
	PhoneTooLong     = phoneErr("error.phone.too_long", "too many digits for a Canadian phone number")
	PhoneMalformed   = phoneErr("error.phone.malformed", "this is not a valid phone number")
	PhoneShortCode   = phoneErr("error.phone.short_code", "short codes cannot receive validation codes; enter a 10-digit cell phone number")
	PhoneTollFree    = phoneErr("error.phone.toll_free", "toll-free numbers (800, 888…) cannot receive text messages")
	PhonePremium     = phoneErr("error.phone.premium", "premium-rate numbers (900…) are not accepted")
	PhoneUS          = phoneErr("error.phone.us", "this is a United States number; enter a Canadian cell phone number")
	PhoneNotCanadian = phoneErr("error.phone.not_canadian", "enter a Canadian cell phone number")
	PhoneNotMobile   = phoneErr("error.phone.not_mobile", "this number cannot receive text messages; enter a cell phone number")
)

// phoneErr is a refusal of the field "phone". The values above are shared:
// compare them with errors.Is, never change them.
func phoneErr(key, message string) *InputError {
	return &InputError{Field: "phone", Key: key, Message: message}
}

// maxPhoneInput bounds what is parsed at all (a person's typing, with
// spaces and punctuation, is far shorter).
const maxPhoneInput = 40

// ParseCanadianMobile reads a phone number as people write it ("514
// 555-0123", "(438) 555 0123", "+1 418-555-0123", "1-514-…") and returns it
// in E.164 ("+15145550123") when it is a valid Canadian number that can
// receive SMS (mobile, or fixed-line-or-mobile: Canada's numbering does not
// tell them apart). Otherwise it returns one of the Phone* errors above
// (an *InputError of field "phone" with its message key).
func ParseCanadianMobile(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", PhoneRequired
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case unicode.IsLetter(r):
			// The library would read 1-800-FLOWERS as digits; a person
			// entering letters has made a mistake.
			return "", PhoneLetters
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '+' || r == '\u00a0':
		default:
			return "", PhoneMalformed
		}
	}
	if digits > 11 || len(s) > maxPhoneInput {
		return "", PhoneTooLong
	}
	if digits == 0 || strings.LastIndexByte(s, '+') > 0 {
		return "", PhoneMalformed
	}
	n, err := phonenumbers.Parse(s, "CA")
	if errors.Is(err, phonenumbers.ErrNumTooLong) {
		return "", PhoneTooLong
	}
	if err != nil {
		return "", PhoneMalformed
	}
	if n.GetCountryCode() != 1 {
		return "", PhoneNotCanadian
	}
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.IS_POSSIBLE:
	case phonenumbers.TOO_LONG:
		return "", PhoneTooLong
	default:
		if digits <= 6 && phonenumbers.IsPossibleShortNumberForRegion(n, "CA") {
			return "", PhoneShortCode
		}
		return "", PhoneMalformed
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.TOLL_FREE:
		return "", PhoneTollFree
	case phonenumbers.PREMIUM_RATE:
		return "", PhonePremium
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", PhoneMalformed
	}
	switch phonenumbers.GetRegionCodeForNumber(n) {
	case "CA":
	case "US":
		return "", PhoneUS
	default:
		return "", PhoneNotCanadian
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
		return phonenumbers.Format(n, phonenumbers.E164), nil
	}
	return "", PhoneNotMobile
}

// MaskPhone shows an E.164 number as people recognise it without giving it
// away: "+1 •••-•••-0123".
func MaskPhone(e164 string) string {
	if len(e164) < 4 {
		return "•••"
	}
	return "+1 •••-•••-" + e164[len(e164)-4:]
}
