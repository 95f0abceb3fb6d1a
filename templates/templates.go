package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
)

//go:embed pages emails static locales
var embedded embed.FS

// languages are the languages Sésame speaks, the default first.
var languages = []string{"fr", "en"}

// Languages returns the supported languages, the default ("fr") first.
func Languages() []string { return append([]string(nil), languages...) }

const defaultLang = "fr"

// pageNames are the hosted pages: pages/<name>.html each, rendered inside
// pages/layout.html with the partials of pages/partials.html.
var pageNames = []string{
	pageLogin, pageError, pageSignedOut, pageActivate, pageMFASetup,
	pageTOTPSetup, pageTOTPConfirm, pageTOTPPrint, pageRecoveryCodes, pageSMSEnroll, pageSMSConfirm, pageWebAuthnEnroll,
	pageMFAChallenge, pageRecoveryUsed, pageSecurity, pageLogoutConfirm, pagePassword,
}

// emailNames are the emails: emails/<name>.txt and emails/<name>.html each,
// inside emails/layout.txt and emails/layout.html, with the subject message
// email.<name>.subject.
var emailNames = []string{emailMethodAdded, emailRecoveryCodeUsed, emailActivation, emailPhoneChanged,
	emailRequestDone, emailRequestRejected, emailPasswordReset, emailPasswordChanged, emailAccountChanged}

// Engine renders the pages and emails. It is safe for concurrent use.
type Engine struct {
	msgs      map[string]map[string]string                 // lang → key → message
	pages     map[string]map[string]*htmltemplate.Template // page → lang → set
	mailHTML  map[string]map[string]*htmltemplate.Template // email → lang → set
	mailText  map[string]map[string]*texttemplate.Template // email → lang → set
	static    map[string]staticFile                        // path under static/ → file
	staticURL map[string]string                            // path under static/ → versioned URL
}

// New loads the messages, parses every page and email in both languages and
// loads the static files. override, when not nil, is consulted first for
// every file (same paths as the embedded tree: "pages/login.html",
// "locales/fr.json", "static/sesame.css", …), so a deployment can rebrand
// without rebuilding; it may also add static files. A file that replaces a
// locale replaces it whole.
//
// New fails when a page, an email or a locale is missing, when the two
// locales do not carry the same keys, when a template does not parse, or
// when a template uses a message key that does not exist.
func New(override fs.FS) (*Engine, error) {
	return build(embedded, override)
}

// build is New over any base tree (tests hide files of the embedded one).
func build(base, override fs.FS) (*Engine, error) {
	fsys := base
	if override != nil {
		fsys = overlayFS{over: override, base: base}
	}
	e := &Engine{
		pages:    map[string]map[string]*htmltemplate.Template{},
		mailHTML: map[string]map[string]*htmltemplate.Template{},
		mailText: map[string]map[string]*texttemplate.Template{},
	}
	var err error
	if e.msgs, err = loadMessages(fsys); err != nil {
		return nil, err
	}
	if e.static, e.staticURL, err = loadStatic(fsys, base, override); err != nil {
		return nil, err
	}

	layout, err := fs.ReadFile(fsys, "pages/layout.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	partials, err := fs.ReadFile(fsys, "pages/partials.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	var errs []error
	for _, name := range pageNames {
		file := "pages/" + name + ".html"
		src, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: page %s: %w", name, err))
			continue
		}
		e.pages[name] = map[string]*htmltemplate.Template{}
		for _, lang := range languages {
			t := htmltemplate.New(name).Funcs(e.funcs(lang, "", true))
			for _, f := range []struct {
				name string
				src  []byte
			}{{"pages/layout.html", layout}, {"pages/partials.html", partials}, {file, src}} {
				if _, err := t.New(f.name).Parse(string(f.src)); err != nil {
					errs = append(errs, fmt.Errorf("templates: %w", err))
					break
				}
			}
			if t.Lookup("content") == nil {
				errs = append(errs, fmt.Errorf("templates: %s defines no \"content\"", file))
				break
			}
			errs = append(errs, e.checkKeys(file, htmlTrees(t))...)
			e.pages[name][lang] = t
		}
	}

	for _, name := range emailNames {
		subject := "email." + name + ".subject"
		e.mailHTML[name] = map[string]*htmltemplate.Template{}
		e.mailText[name] = map[string]*texttemplate.Template{}
		for _, lang := range languages {
			if _, ok := e.msgs[lang][subject]; !ok {
				errs = append(errs, fmt.Errorf("templates: email %s: message %q missing in %s", name, subject, lang))
			}
			subj := e.T(lang, subject)
			ht := htmltemplate.New(name).Funcs(e.funcs(lang, subj, true))
			for _, f := range []string{"emails/layout.html", "emails/" + name + ".html"} {
				src, err := fs.ReadFile(fsys, f)
				if err == nil {
					_, err = ht.New(f).Parse(string(src))
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("templates: email %s: %w", name, err))
				}
			}
			errs = append(errs, e.checkKeys("emails/"+name+".html", htmlTrees(ht))...)
			e.mailHTML[name][lang] = ht

			tt := texttemplate.New(name).Funcs(texttemplate.FuncMap(e.funcs(lang, subj, false)))
			for _, f := range []string{"emails/layout.txt", "emails/" + name + ".txt"} {
				src, err := fs.ReadFile(fsys, f)
				if err == nil {
					_, err = tt.New(f).Parse(string(src))
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("templates: email %s: %w", name, err))
				}
			}
			errs = append(errs, e.checkKeys("emails/"+name+".txt", textTrees(tt))...)
			e.mailText[name][lang] = tt
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, dedupe(err)
	}

	// Escape every page now (html/template does it on first use) and catch
	// template errors reachable with zero values, rather than on a request.
	for _, name := range pageNames {
		for _, lang := range languages {
			if err := e.pages[name][lang].ExecuteTemplate(io.Discard, "layout", samplePage(name, lang)); err != nil {
				errs = append(errs, fmt.Errorf("templates: page %s (%s): %w", name, lang, err))
			}
		}
	}
	for _, name := range emailNames {
		for _, lang := range languages {
			if _, _, _, err := e.Email(lang, name, sampleEmail(name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// dedupe drops the repeats of an errors.Join (the same problem found once
// per language).
func dedupe(err error) error {
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if !seen[line] {
			seen[line] = true
			out = append(out, line)
		}
	}
	return errors.New(strings.Join(out, "\n"))
}

// T returns the message key in lang ("fr" or "en"; anything else is taken
// as its primary language, French when unsupported), formatted with args
// fmt-style when the message has verbs. An unknown key returns the key.
func (e *Engine) T(lang, key string, args ...any) string {
	msg, ok := e.msgs[normLang(lang)][key]
	if !ok {
		return key
	}
	return format(msg, args)
}

func format(msg string, args []any) string {
	if len(args) == 0 || !strings.Contains(msg, "%") {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// plural returns key.zero (n == 0, when defined), key.one or key.other per
// the rules of lang, formatted with n.
func (e *Engine) plural(lang, key string, n int) string {
	m := e.msgs[lang]
	if n == 0 {
		if msg, ok := m[key+".zero"]; ok {
			return format(msg, []any{n})
		}
	}
	form := ".other"
	switch {
	case lang == "fr" && (n == 0 || n == 1): // CLDR: 0 and 1 take the singular in French
		form = ".one"
	case lang != "fr" && n == 1:
		form = ".one"
	}
	msg, ok := m[key+form]
	if !ok {
		return key + form
	}
	return format(msg, []any{n})
}

// funcs is the function map of a template set in lang. subject is the
// translated subject of an email set (empty for pages). For HTML sets the
// messages come back as template.HTML, escaped here (& < > "), so that
// apostrophes stay readable in the page source; in attributes html/template
// escapes them again.
func (e *Engine) funcs(lang, subject string, html bool) htmltemplate.FuncMap {
	msg := func(s string) any {
		if html {
			return htmltemplate.HTML(htmlText.Replace(s))
		}
		return s
	}
	return htmltemplate.FuncMap{
		// t "key" args… → the message in the set's language.
		"t": func(key string, args ...any) any { return msg(e.T(lang, key, args...)) },
		// tv "key" args → t with a slice of arguments (Base.NoticeArgs).
		"tv": func(key string, args []any) any { return msg(e.T(lang, key, args...)) },
		// plural "key" n → key.zero | key.one | key.other with n.
		"plural": func(key string, n int) any { return msg(e.plural(lang, key, n)) },
		// hint "key" → the message key_hint when it exists, else "".
		"hint": func(key string) any {
			if m, ok := e.msgs[lang][key+"_hint"]; ok && key != "" {
				return msg(m)
			}
			return msg("")
		},
		// otherLang → the language the switch link offers.
		"otherLang": func() string {
			if lang == "fr" {
				return "en"
			}
			return "fr"
		},
		// langURL map lang → the link target, "?lang=xx" when the handler gave none.
		"langURL": func(urls map[string]string, l string) string {
			if u, ok := urls[l]; ok && u != "" {
				return u
			}
			return "?lang=" + l
		},
		// static "sesame.css" → "/static/sesame.css?v=<content hash>".
		"static": func(name string) (string, error) {
			if u, ok := e.staticURL[name]; ok {
				return u, nil
			}
			return "", fmt.Errorf("no static file %q", name)
		},
		"join": strings.Join,
		// queryInputs URL → its query parameters, to repeat as hidden
		// inputs of a GET form (a GET form drops the action's query).
		"queryInputs": queryInputs,
		"subject":     func() any { return msg(subject) },
		"lang":        func() string { return lang },
	}
}

// htmlText escapes a message for an HTML text node.
var htmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;")

// checkKeys reports the message keys used literally by t and plural in the
// trees that are missing in a language.
func (e *Engine) checkKeys(file string, trees []*parse.Tree) []error {
	var errs []error
	missing := func(key string) {
		for _, lang := range languages {
			if _, ok := e.msgs[lang][key]; !ok {
				errs = append(errs, fmt.Errorf("templates: %s uses message %q, missing in %s", file, key, lang))
			}
		}
	}
	for _, tree := range trees {
		walk(tree.Root, func(fn, key string) {
			switch fn {
			case "t", "tv":
				missing(key)
			case "plural":
				missing(key + ".one")
				missing(key + ".other")
			}
		})
	}
	return errs
}

// walk calls visit for every call of a function with a string literal as
// first argument (t "key", plural "key" n).
func walk(n parse.Node, visit func(fn, arg string)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, visit)
		}
	case *parse.ActionNode:
		walk(n.Pipe, visit)
	case *parse.IfNode:
		walk(n.Pipe, visit)
		walk(n.List, visit)
		walk(n.ElseList, visit)
	case *parse.RangeNode:
		walk(n.Pipe, visit)
		walk(n.List, visit)
		walk(n.ElseList, visit)
	case *parse.WithNode:
		walk(n.Pipe, visit)
		walk(n.List, visit)
		walk(n.ElseList, visit)
	case *parse.TemplateNode:
		walk(n.Pipe, visit)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, visit)
		}
	case *parse.CommandNode:
		if len(n.Args) >= 2 {
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok {
				if s, ok := n.Args[1].(*parse.StringNode); ok {
					visit(id.Ident, s.Text)
				}
			}
		}
		for _, a := range n.Args {
			walk(a, visit)
		}
	}
}

func htmlTrees(t *htmltemplate.Template) []*parse.Tree {
	var trees []*parse.Tree
	for _, x := range t.Templates() {
		if x.Tree != nil {
			trees = append(trees, x.Tree)
		}
	}
	return trees
}

func textTrees(t *texttemplate.Template) []*parse.Tree {
	var trees []*parse.Tree
	for _, x := range t.Templates() {
		if x.Tree != nil {
			trees = append(trees, x.Tree)
		}
	}
	return trees
}

// loadMessages reads locales/<lang>.json for every language and checks that
// they carry the same, non-empty keys.
func loadMessages(fsys fs.FS) (map[string]map[string]string, error) {
	msgs := map[string]map[string]string{}
	var errs []error
	for _, lang := range languages {
		b, err := fs.ReadFile(fsys, "locales/"+lang+".json")
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %w", err))
			continue
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			errs = append(errs, fmt.Errorf("templates: locales/%s.json: %w", lang, err))
			continue
		}
		msgs[lang] = m
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, lang := range languages {
		for _, other := range languages {
			var missing []string
			for key, msg := range msgs[lang] {
				if _, ok := msgs[other][key]; !ok {
					missing = append(missing, key)
				}
				if strings.TrimSpace(msg) == "" && lang == other {
					errs = append(errs, fmt.Errorf("templates: locales/%s.json: %q is empty", lang, key))
				}
			}
			sort.Strings(missing)
			for _, key := range missing {
				errs = append(errs, fmt.Errorf("templates: message %q is in %s but missing in %s", key, lang, other))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return msgs, nil
}

// overlayFS reads from over first, then from base.
type overlayFS struct{ over, base fs.FS }

func (o overlayFS) Open(name string) (fs.File, error) {
	f, err := o.over.Open(name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.base.Open(name)
}

// execPage runs a page set into a buffer.
func execPage(t *htmltemplate.Template, data any) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, err
	}
	return &buf, nil
}

// normLang maps a language tag to a supported language, French by default.
func normLang(tag string) string {
	if l, ok := supported(tag); ok {
		return l
	}
	return defaultLang
}

// supported returns the supported language of a tag ("en-CA" → "en").
func supported(tag string) (string, bool) {
	tag = strings.TrimSpace(tag)
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	tag = strings.ToLower(tag)
	for _, l := range languages {
		if tag == l {
			return l, true
		}
	}
	return "", false
}

// cleanStaticPath turns a request path into a path under static/.
func cleanStaticPath(p string) string {
	p = path.Clean("/" + p)
	p = strings.TrimPrefix(p, "/static/")
	return strings.TrimPrefix(p, "/")
}
