package input

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		max        int
		text, line bool // accepted by Text, by Line
	}{
		{"empty", "", 0, true, true},
		{"plain", "sophie.tremblay", 0, true, true},
		{"french", "Hélène Côté — « ça va ? »", 0, true, true},
		{"tab", "a\tb", 0, true, true},
		{"newlines", "line 1\r\nline 2\n", 0, true, false},
		{"nul", "sophie\x00", 0, false, false},
		{"nul alone", "\x00", 0, false, false},
		{"bell", "a\x07", 0, false, false},
		{"escape", "\x1b[31m", 0, false, false},
		{"del", "a\x7f", 0, false, false},
		{"c1", "a\u0085b", 0, false, false},
		{"c1 csi", "\u009b", 0, false, false},
		{"invalid utf8", "\xff\xfe", 0, false, false},
		{"truncated utf8", "caf\xc3", 0, false, false},
		{"surrogate", "\xed\xa0\x80", 0, false, false},
		{"overlong", "\xc0\xaf", 0, false, false},
		{"replacement char is fine", "\uFFFD", 0, true, true},
		{"at max", strings.Repeat("a", 10), 10, true, true},
		{"over max", strings.Repeat("a", 11), 10, false, false},
		{"over default", strings.Repeat("a", MaxLen+1), 0, false, false},
		{"default", strings.Repeat("é", MaxLen/2), 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Text(tt.in, tt.max); (err == nil) != tt.text || err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Text(%q) = %v, want accepted %v", tt.in, err, tt.text)
			}
			if err := Line(tt.in, tt.max); (err == nil) != tt.line || err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Line(%q) = %v, want accepted %v", tt.in, err, tt.line)
			}
		})
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name  string
		in    url.Values
		field string
		ok    bool
	}{
		{"fine", url.Values{"username": {"sophie"}, "comment": {"a\r\nb"}}, "", true},
		{"bad value, second of two", url.Values{"username": {"sophie", "so\x00phie"}}, "username", false},
		{"first bad field in name order", url.Values{"b": {"\x00"}, "a": {"\xff"}}, "a", false},
		{"bad name", url.Values{"user\x00name": {"x"}}, "", false},
		{"newline in a name", url.Values{"a\nb": {"x"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field, err := Values(tt.in)
			if (err == nil) != tt.ok || field != tt.field {
				t.Errorf("Values = %q, %v; want %q, ok %v", field, err, tt.field, tt.ok)
			}
		})
	}
}
