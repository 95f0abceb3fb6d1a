package input

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"unicode/utf8"
)

// MaxLen is the default bound on one value, in bytes.
const MaxLen = 4096

// ErrInvalid is the error every check returns (wrapped with the reason).
var ErrInvalid = errors.New("invalid text")

var (
	errUTF8    = fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	errControl = fmt.Errorf("%w: a control character", ErrInvalid)
	errLong    = fmt.Errorf("%w: too long", ErrInvalid)
)

// Text checks s: at most max bytes (MaxLen when max <= 0), valid UTF-8,
// and no control character other than tab, line feed and carriage return
// (a textarea's). NUL, the other C0 controls, DEL and the C1 controls are
// refused.
func Text(s string, max int) error {
	return check(s, max, true)
}

// Line is Text for a single line: tab is the only control character
// allowed.
func Line(s string, max int) error {
	return check(s, max, false)
}

func check(s string, max int, multiline bool) error {
	if max <= 0 {
		max = MaxLen
	}
	if len(s) > max {
		return errLong
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && (!multiline || c != '\n' && c != '\r') || c == 0x7f {
				return errControl
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return errUTF8
		}
		if r >= 0x80 && r <= 0x9f {
			return errControl
		}
		i += n
	}
	return nil
}

// Values checks every name and value of a form or a query (Text for
// values, Line for names, each at most MaxLen bytes). It returns the name
// of the first bad field, in sorted order so that the answer does not
// depend on map order; the name is safe to log only once it passed
// (a bad name is returned as "").
func Values(v url.Values) (string, error) {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if err := Line(k, MaxLen); err != nil {
			return "", err
		}
		for _, s := range v[k] {
			if err := Text(s, MaxLen); err != nil {
				return k, err
			}
		}
	}
	return "", nil
}
