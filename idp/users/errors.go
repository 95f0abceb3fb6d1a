package users

import (
	"errors"
	"fmt"

	"github.com/sesame-idp/sesame/idp/input"
)

// InputError is a problem with one field of the input, for a person to
// read: the CLI prints it as one line naming its flag, the API as a 422
// (a 409 when Err is store.ErrConflict) naming the field.
type InputError struct {
	// Field is the input's name, as in the JSON of NewUser and NewClient:
	// "username", "redirect_uris"…; the CLI names its flag.
	Field string
	// Message says what is wrong, in English, without the field's name.
	// It never repeats a password or a key.
	Message string
	// Key, when set, is the message's key in templates/locales, for pages
	// that show it in the user's language ("error.phone.us"…).
	Key string
	// Err is the cause when callers may need to tell it apart
	// (store.ErrConflict for a taken username or client id, a password
	// policy error, ErrBadSecret), or nil.
	Err error
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(field, message string) *InputError {
	return &InputError{Field: field, Message: message}
}

// ErrPublicClient: a public client has no secret to rotate.
var ErrPublicClient = errors.New("users: a public client has no secret")

// CheckText: value is one line of text a store can hold (input.Line): valid
// UTF-8, no NUL or other control character, at most max bytes
// (input.MaxLen when max <= 0). The message never repeats the value (it
// may be a password).
func CheckText(field, value string, max int) error {
	if max <= 0 {
		max = input.MaxLen
	}
	if err := input.Line(value, max); err != nil {
		return &InputError{Field: field, Err: err,
			Message: fmt.Sprintf("must be text without control characters (NUL, line breaks…), valid UTF-8, at most %d bytes", max)}
	}
	return nil
}

// checkTexts applies CheckText to field/value/max triples, in order.
func checkTexts(fields ...textField) error {
	for _, f := range fields {
		for _, v := range f.values {
			if err := CheckText(f.name, v, f.max); err != nil {
				return err
			}
		}
	}
	return nil
}

type textField struct {
	name   string
	max    int
	values []string
}

func text(name string, max int, values ...string) textField {
	return textField{name: name, max: max, values: values}
}
