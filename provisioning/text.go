package provisioning

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/sesame-idp/sesame/idp/input"
)

// Bounds on fields, in bytes (the comment's is in characters, from config).
const (
	maxName         = 128
	maxEmail        = 254
	maxNumber       = 32
	maxLaboratory   = 128
	maxRefID        = 64
	maxBillingName  = 200
	maxCustomer     = 32
	maxInstitutions = 50
	maxLabs         = 20
	maxRights       = 3
	maxReason       = 2000
	maxCommentBytes = 400_000 // before counting characters
)

// problems collects every problem of a request.
type problems struct {
	list []Problem
}

func (p *problems) add(field, code, en, fr string) {
	p.list = append(p.list, Problem{Field: field, Code: code, Message: en, MessageFR: fr})
}

func (p *problems) has(field string) bool {
	for _, q := range p.list {
		if q.Field == field {
			return true
		}
	}
	return false
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: p.list}
}

// line checks one line of text (input.Line, no tab either); it reports
// the problem and returns false when the value is unusable.
func (p *problems) line(field, v string, max int) bool {
	if err := input.Line(v, max); err != nil || strings.ContainsRune(v, '\t') {
		if err != nil && errors.Is(err, input.ErrInvalid) && len(v) > max {
			p.add(field, "too_long", fmt.Sprintf("Too long: at most %d characters.", max),
				fmt.Sprintf("Trop long : au plus %d caractères.", max))
			return false
		}
		p.add(field, "invalid_text", "Contains characters that are not allowed (control characters, invalid UTF-8).",
			"Contient des caractères non permis (caractères de contrôle, UTF-8 invalide).")
		return false
	}
	return true
}

// required reports an empty value.
func (p *problems) required(field, v string) bool {
	if strings.TrimSpace(v) == "" {
		p.add(field, "required", "Required.", "Obligatoire.")
		return false
	}
	return true
}

// cleanName is a person's name: NFC, spaces collapsed.
func cleanName(s string) string {
	return strings.Join(strings.Fields(norm.NFC.String(s)), " ")
}

// checkName: letters of one script, with spaces, apostrophes, hyphens and
// periods between them. It refuses markup, SQL punctuation, digits and
// names that mix scripts (Latin "a" next to Cyrillic "а": a homoglyph).
func (p *problems) name(field, v string, required bool) string {
	if !p.line(field, v, maxName) {
		return ""
	}
	v = cleanName(v)
	if v == "" {
		if required {
			p.required(field, v)
		}
		return ""
	}
	for _, r := range v {
		switch {
		case unicode.IsLetter(r), unicode.Is(unicode.Mn, r):
		case r == ' ', r == '\'', r == '’', r == '-', r == '.':
		default:
			p.add(field, "invalid_name", "Only letters, spaces, apostrophes, hyphens and periods.",
				"Seulement des lettres, des espaces, des apostrophes, des traits d'union et des points.")
			return ""
		}
	}
	if mixedScripts(v) {
		p.add(field, "mixed_scripts", "Mixes alphabets (e.g. Latin and Cyrillic letters that look alike): type it again with one keyboard.",
			"Mélange des alphabets (p. ex. des lettres latines et cyrilliques qui se ressemblent) : retapez-le avec un seul clavier.")
		return ""
	}
	return v
}

var scripts = []struct {
	name  string
	table *unicode.RangeTable
}{
	{"latin", unicode.Latin}, {"greek", unicode.Greek}, {"cyrillic", unicode.Cyrillic},
	{"armenian", unicode.Armenian}, {"hebrew", unicode.Hebrew}, {"arabic", unicode.Arabic},
	{"cjk", unicode.Han}, {"cjk", unicode.Hiragana}, {"cjk", unicode.Katakana}, {"hangul", unicode.Hangul},
	{"thai", unicode.Thai}, {"devanagari", unicode.Devanagari}, {"georgian", unicode.Georgian},
	{"cherokee", unicode.Cherokee},
}

// mixedScripts reports letters of more than one script.
func mixedScripts(s string) bool {
	seen := ""
	for _, r := range s {
		if !unicode.IsLetter(r) {
			continue
		}
		name := "other"
		for _, sc := range scripts {
			if unicode.Is(sc.table, r) {
				name = sc.name
				break
			}
		}
		if seen == "" {
			seen = name
		} else if seen != name {
			return true
		}
	}
	return false
}

// emailRE is a plain ASCII address: letters, digits and . _ % + - ' in the
// local part, a dotted domain. Internationalized addresses are refused: a
// look-alike letter from another alphabet would send the access elsewhere.
var emailRE = regexp.MustCompile(`^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$`)

// email checks an address's form; it returns it trimmed ("" when unusable).
func (p *problems) email(field, v string) string {
	if !p.line(field, v, maxEmail) {
		return ""
	}
	v = strings.TrimSpace(v)
	if !p.required(field, v) {
		return ""
	}
	if !utf8.ValidString(v) || !isASCII(v) {
		p.add(field, "email_non_ascii", "Type the address with plain letters (a–z), digits and . _ + -: letters from other alphabets that look alike are refused.",
			"Tapez l'adresse avec des lettres simples (a–z), des chiffres et . _ + - : les lettres d'autres alphabets qui se ressemblent sont refusées.")
		return ""
	}
	if !emailRE.MatchString(v) || strings.Contains(v, "..") || strings.HasPrefix(v, ".") || strings.Contains(v, ".@") {
		p.add(field, "email_invalid", "Not an email address (name@example.org).",
			"Ce n'est pas une adresse courriel (nom@exemple.org).")
		return ""
	}
	return v
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldEmail is the form addresses are compared in.
func foldEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// code: a short identifier typed by a person (numbers, ids): letters,
// digits and - only.
var codeRE = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

func (p *problems) code(field, v string, max int) string {
	if !p.line(field, v, max) {
		return ""
	}
	v = strings.TrimSpace(v)
	if v != "" && !codeRE.MatchString(v) {
		p.add(field, "invalid_code", "Only letters, digits and hyphens.", "Seulement des lettres, des chiffres et des traits d'union.")
		return ""
	}
	return v
}

// label: a name of a thing (laboratory, billing account): one line of
// text without markup characters.
func (p *problems) label(field, v string, max int) string {
	if !p.line(field, v, max) {
		return ""
	}
	v = strings.Join(strings.Fields(norm.NFC.String(v)), " ")
	for _, r := range v {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) && !strings.ContainsRune(" .,'’-&()/#+", r) {
			p.add(field, "invalid_label", "Only letters, digits, spaces and . , ' - & ( ) / # +.",
				"Seulement des lettres, des chiffres, des espaces et . , ' - & ( ) / # +.")
			return ""
		}
	}
	if mixedScripts(v) {
		p.add(field, "mixed_scripts", "Mixes alphabets (letters that look alike from different alphabets).",
			"Mélange des alphabets (des lettres d'alphabets différents qui se ressemblent).")
		return ""
	}
	return v
}

// tagRE finds markup: "<" followed by a letter, "/", "!" or "?".
var tagRE = regexp.MustCompile(`<[A-Za-z/!?]`)

// comment is free text on several lines, at most max characters, without markup.
func (p *problems) comment(field, v string, max int) string {
	if err := input.Text(v, maxCommentBytes); err != nil || utf8.RuneCountInString(v) > max {
		if err == nil || len(v) > maxCommentBytes {
			p.add(field, "too_long", fmt.Sprintf("Too long: at most %d characters.", max),
				fmt.Sprintf("Trop long : au plus %d caractères.", max))
		} else {
			p.add(field, "invalid_text", "Contains characters that are not allowed (control characters, invalid UTF-8).",
				"Contient des caractères non permis (caractères de contrôle, UTF-8 invalide).")
		}
		return ""
	}
	if tagRE.MatchString(v) {
		p.add(field, "markup", "HTML is not accepted: write plain text.", "Le HTML n'est pas accepté : écrivez du texte simple.")
		return ""
	}
	return strings.TrimSpace(norm.NFC.String(v))
}
