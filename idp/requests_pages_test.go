package idp_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/provisioning"
)

// The request pages and the support console over plain HTTP, on both
// backends: who may open them, the form's validation, the queue and the
// decisions.

// requestWorld is the data the request pages need: three institutions,
// a requester holding account_requests at two of them, a reference
// account with mandates (and a special right) at all three, a support user.
type requestWorld struct {
	a, b, c   store.Institution
	requester store.User
	reference store.User
	support   store.User
}

const supportUsername = "soutien"

// newRequestEnv starts Sésame where the user "soutien" holds the support
// right.
func newRequestEnv(t testing.TB, b backend) *testEnv {
	return newTestEnvWith(t, b, func(s *idp.Server) {
		s.Support = func(_ context.Context, u store.User) (bool, error) { return u.Username == supportUsername, nil }
	})
}

// forEachRequestBackend is forEachBackend with newRequestEnv.
func forEachRequestBackend(t *testing.T, f func(t *testing.T, env *testEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, newRequestEnv(t, b)) })
	}
}

func (e *testEnv) requestWorld() requestWorld {
	t := e.t
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	inst := func(name, number string) store.Institution {
		in := store.Institution{ID: uuid.NewString(), Name: name,
			BillingAccounts: []store.BillingAccount{{Name: name, CustomerNumber: number}}, CreatedAt: now, UpdatedAt: now}
		if err := e.store.CreateInstitution(ctx, in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	w := requestWorld{
		a: inst("Clinique du Parc", "123"),
		b: inst("CLSC des Érables", "456"),
		c: inst("Hôpital Lointain", "789"),
	}
	member := func(u store.User, in store.Institution, primary bool, mandates, rights []string) {
		if err := e.store.PutMembership(ctx, store.Membership{UserID: u.ID, InstitutionID: in.ID, Primary: primary,
			Mandates: mandates, Rights: rights, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	w.requester = e.user("gestionnaire", pw)
	member(w.requester, w.a, true, []string{"reception"}, []string{store.RightAccountRequests})
	member(w.requester, w.b, false, nil, []string{store.RightAccountRequests})
	member(w.requester, w.c, false, []string{"reception"}, nil)
	w.reference = e.user("reference", pw)
	member(w.reference, w.a, true, []string{"clinical_notes", "prescriptions"}, []string{store.RightPatientMerge})
	member(w.reference, w.b, false, []string{"vaccination"}, []string{store.RightAdminAccount})
	member(w.reference, w.c, false, []string{"radiology"}, nil)
	w.support = e.user(supportUsername, pw)
	return w
}

// signedInAt signs username in (password and TOTP) from page path and
// returns the page the sign-in comes back to.
func signedInAt(t testing.TB, env *testEnv, b *browser, username, path string) page {
	t.Helper()
	p := b.get(env.issuer + path)
	if !p.has("login") {
		t.Fatalf("GET %s without a session: want the sign-in page, got %d at %s", path, p.status, p.url)
	}
	return finishSignIn(t, env, b, p, username)
}

// finishSignIn completes the sign-in page p (password, TOTP) and follows
// the way back to the page that asked for it.
func finishSignIn(t testing.TB, env *testEnv, b *browser, p page, username string) page {
	t.Helper()
	p = submitLogin(t, b, p, username, pw)
	if !p.has("mfa") {
		t.Fatalf("after the password: %d at %s, want the second factor", p.status, p.url)
	}
	action, vals := p.form(t, "mfa")
	vals.Set("code", env.nextCode(username))
	// The client follows the redirects: the callback, then our page.
	return b.post(action, vals)
}

// validRequest is a complete, valid form#account-request.
func validRequest(w requestWorld, csrf string) url.Values {
	return url.Values{
		"csrf_token": {csrf}, "given_name": {"Julie"}, "family_name": {"Roy"}, "email": {"julie.roy@courriel.example"},
		"previously_had_account": {"no"}, "institution": {w.a.ID, w.b.ID}, "primary_institution": {w.a.ID},
		"occupation": {"nurse"}, "practice_number": {"1234567"}, "prescriber_number": {""},
		"lab_laboratory": {"Laboratoire Biron"}, "lab_number": {"BIR-4455"},
		"reference_given_name": {w.reference.GivenName}, "reference_family_name": {w.reference.FamilyName},
		"reference_id": {w.reference.ID},
		"billing_name": {w.a.Name}, "billing_customer_number": {"123"},
		"right": {store.RightPatientMerge, store.RightAccountRequests}, "comment": {"Arrive lundi."},
	}
}

func validScanning(w requestWorld, csrf string) url.Values {
	return url.Values{
		"csrf_token": {csrf}, "institution": {w.a.ID}, "station_name": {"Numériseur accueil"},
		"responsible_name": {"Marc Gagnon"}, "responsible_email": {"marc.gagnon@courriel.example"},
		"billing_name": {w.a.Name}, "billing_customer_number": {"123"}, "comment": {""},
	}
}

func (e *testEnv) countRequests() int {
	e.t.Helper()
	rs, err := e.store.ListAccountRequests(context.Background(), store.AccountRequestFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(rs)
}

var (
	requestIDRE  = regexp.MustCompile(`id="request-id">([^<]+)<`)
	requestDueRE = regexp.MustCompile(`id="request-due">([^<]+)<`)
)

func TestRequestPagesNeedASignIn(t *testing.T) {
	env := newRequestEnv(t, backends[0])
	env.requestWorld()
	for _, path := range []string{"/requests", "/requests/new", "/requests/new-scanning", "/console/requests", "/console/users"} {
		b := newBrowser(t)
		p := b.get(env.issuer + path)
		if !p.has("login") || !strings.HasPrefix(p.url.Path, "/login") {
			t.Errorf("GET %s without a session: %d at %s, want the sign-in page", path, p.status, p.url)
		}
	}
	// The sign-in comes back to the page that asked for it, with the
	// institutions where the requester holds account_requests only.
	b := newBrowser(t)
	p := signedInAt(t, env, b, "gestionnaire", "/requests/new")
	if p.status != http.StatusOK || !p.has("account-request") {
		t.Fatalf("after the sign-in: %d at %s, want form#account-request", p.status, p.url)
	}
	for _, want := range []string{"Clinique du Parc", "CLSC des Érables"} {
		if !strings.Contains(html.UnescapeString(p.body), want) {
			t.Errorf("the form does not offer %s", want)
		}
	}
	if strings.Contains(html.UnescapeString(p.body), "Hôpital Lointain") {
		t.Error("the form offers an institution where the requester lacks account_requests")
	}
	// The help text of the procedure.
	for _, key := range []string{"seule cette personne", "laboratoire", "droits spéciaux ne sont jamais copiés"} {
		if !strings.Contains(strings.ToLower(html.UnescapeString(p.body)), strings.ToLower(key)) {
			t.Errorf("the form lacks the help text %q", key)
		}
	}
}

func TestRequestFormSubmitAndMyRequests(t *testing.T) {
	forEachRequestBackend(t, func(t *testing.T, env *testEnv) {
		w := env.requestWorld()
		b := newBrowser(t)
		p := signedInAt(t, env, b, "gestionnaire", "/requests/new")
		action, _ := p.form(t, "account-request")

		// The reference-account lookup names the account, without submitting.
		form := validRequest(w, csrfOf(t, p))
		form.Set("reference_id", "reference") // by username: the lookup fills in the id
		form.Set("lookup", "reference")
		p = b.post(action, form)
		if p.status != http.StatusOK || !p.has("reference-result") || !strings.Contains(p.body, w.reference.ID) {
			t.Fatalf("lookup: %d, want #reference-result and the id filled in:\n%s", p.status, p.body)
		}
		if env.countRequests() != 0 {
			t.Fatal("the lookup stored a request")
		}

		p = b.post(action, validRequest(w, csrfOf(t, p)))
		if p.status != http.StatusCreated {
			t.Fatalf("submit: %d, want 201:\n%s", p.status, p.body)
		}
		id, due := requestIDRE.FindStringSubmatch(p.body), requestDueRE.FindStringSubmatch(p.body)
		if id == nil || due == nil {
			t.Fatalf("no #request-id or #request-due:\n%s", p.body)
		}
		r, err := env.store.GetAccountRequest(context.Background(), id[1])
		if err != nil || r.RequesterID != w.requester.ID || r.Email != "julie.roy@courriel.example" {
			t.Fatalf("stored request %+v, %v", r, err)
		}

		// The same email again: 409 pointing to the pending request, typed values kept.
		p = b.get(env.issuer + "/requests/new")
		p = b.post(action, validRequest(w, csrfOf(t, p)))
		if p.status != http.StatusConflict || !p.has("pending") || !strings.Contains(p.body, `value="Julie"`) {
			t.Errorf("same email again: %d, want 409 with #pending and the typed values", p.status)
		}

		// My requests: status and due date.
		p = b.get(env.issuer + "/requests")
		row := regexp.MustCompile(`(?s)<tr data-request-id="` + id[1] + `".*?</tr>`).FindString(p.body)
		if !p.has("my-requests") || row == "" || !strings.Contains(row, due[1]) || !strings.Contains(row, "En attente") {
			t.Fatalf("my requests: no row with the due date %s and the status:\n%s", due[1], p.body)
		}

		// Support rejects it; the requester sees the reason, escaped.
		sb := newBrowser(t)
		sp := signedInAt(t, env, sb, supportUsername, "/console/requests/"+id[1])
		raction, vals := sp.form(t, "reject")
		vals.Set("reason", `Adresse "partagée" & non personnelle : demandez-lui la sienne.`)
		sp = sb.post(raction, vals)
		if sp.status != http.StatusOK || !strings.Contains(sp.body, "Demande refusée") {
			t.Fatalf("reject: %d at %s:\n%s", sp.status, sp.url, sp.body)
		}
		p = b.get(env.issuer + "/requests")
		row = regexp.MustCompile(`(?s)<tr data-request-id="` + id[1] + `".*?</tr>`).FindString(p.body)
		if !strings.Contains(row, "Refusée") || !strings.Contains(row, "Adresse &#34;partagée&#34; &amp; non personnelle") {
			t.Errorf("my requests after the rejection: want the status and the escaped reason:\n%s", row)
		}
	})
}

// badValues are what people (or attackers) type: each goes into every
// field of both forms.
var badValues = []struct {
	name  string
	value string
	// refused: never acceptable, whatever the field.
	refused bool
}{
	{"html", `<script>alert("x")</script><img src=x onerror=alert(1)>`, false},
	{"sql", `Robert'); DROP TABLE users;--`, false},
	{"1MB", strings.Repeat("a", 1<<20), true},
	{"nul", "Ju\x00lie", true},
	{"control", "Ju\x1blie\x07", true},
	{"bad utf-8", "Ju\xff\xfelie", true},
	{"homoglyph", "Jul\u0456e@c\u043eurriel.example", false}, // Cyrillic і and о
}

func TestRequestFormsBadInputOnEveryField(t *testing.T) {
	forEachRequestBackend(t, func(t *testing.T, env *testEnv) {
		w := env.requestWorld()
		b := newBrowser(t)
		p := signedInAt(t, env, b, "gestionnaire", "/requests/new")
		csrf := csrfOf(t, p)
		forms := []struct {
			path   string
			form   func() url.Values
			fields []string
			// mustRefuse: fields where markup, SQL and look-alike letters are
			// refused too (names, emails, numbers, ids).
			mustRefuse []string
		}{
			{"/requests/new", func() url.Values { return validRequest(w, csrf) },
				[]string{"given_name", "family_name", "email", "previously_had_account", "institution", "primary_institution",
					"occupation", "practice_number", "prescriber_number", "lab_laboratory", "lab_number",
					"reference_given_name", "reference_family_name", "reference_id", "billing_name",
					"billing_customer_number", "right", "comment"},
				[]string{"given_name", "family_name", "email", "previously_had_account", "institution", "primary_institution",
					"occupation", "practice_number", "prescriber_number", "lab_number", "reference_id", "billing_customer_number", "right"}},
			{"/requests/new-scanning", func() url.Values { return validScanning(w, csrf) },
				[]string{"institution", "station_name", "responsible_name", "responsible_email", "billing_name",
					"billing_customer_number", "comment"},
				[]string{"institution", "responsible_email", "billing_customer_number"}},
		}
		for _, f := range forms {
			for _, field := range f.fields {
				for _, bad := range badValues {
					name := f.path + " " + field + " " + bad.name
					before := env.countRequests()
					form := f.form()
					form.Set(field, bad.value)
					p := b.post(env.issuer+f.path, form)
					refuse := bad.refused || slices.Contains(f.mustRefuse, field)
					switch {
					case p.status >= 500:
						t.Errorf("%s: %d, want a 4xx", name, p.status)
					case refuse && (p.status < 400 || p.status >= 500):
						t.Errorf("%s: %d, want a 4xx", name, p.status)
					case p.status >= 400:
						if env.countRequests() != before {
							t.Errorf("%s: refused (%d) but a request was stored", name, p.status)
						}
						if !strings.Contains(p.body, `class="error`) {
							t.Errorf("%s: %d without a message:\n%.2000s", name, p.status, p.body)
						}
						kept := "billing_customer_number"
						if field == kept {
							kept = "billing_name"
						}
						if p.status == http.StatusUnprocessableEntity && !strings.Contains(p.body, `value="`+html.EscapeString(form.Get(kept))) {
							t.Errorf("%s: the typed values are not kept", name)
						}
					default:
						// Accepted: stored as typed, nothing else changed.
						if env.countRequests() != before+1 {
							t.Errorf("%s: %d but no request stored", name, p.status)
						}
						cancelPending(t, env)
					}
					if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
						t.Errorf("%s: the page shows the markup unescaped", name)
					}
					if strings.Contains(p.body, "\x00") || strings.Contains(p.body, "\x1b") {
						t.Errorf("%s: the page shows control characters", name)
					}
				}
			}
		}
		// The users table survived the SQL.
		if _, err := env.store.GetUser(context.Background(), w.requester.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// cancelPending rejects every submitted request, so that the next
// submission for the same email is not a 409.
func cancelPending(t *testing.T, env *testEnv) {
	t.Helper()
	ctx := context.Background()
	rs, err := env.store.ListAccountRequests(ctx, store.AccountRequestFilter{Status: store.RequestSubmitted, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		r.Status, r.DecisionReason, r.DecidedAt = store.RequestRejected, "test", time.Now().UTC()
		if err := env.store.UpdateAccountRequest(ctx, r, store.RequestSubmitted); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRequestPagesAccess(t *testing.T) {
	forEachRequestBackend(t, func(t *testing.T, env *testEnv) {
		w := env.requestWorld()
		b := newBrowser(t)
		p := signedInAt(t, env, b, "gestionnaire", "/requests/new")
		// An institution where the requester lacks the right (not offered,
		// but posted): 403 naming it, nothing stored.
		form := validRequest(w, csrfOf(t, p))
		form["institution"] = []string{w.a.ID, w.c.ID}
		p = b.post(env.issuer+"/requests/new", form)
		if p.status != http.StatusForbidden || !strings.Contains(html.UnescapeString(p.body), "Hôpital Lointain") {
			t.Errorf("request for an institution without the right: %d, want 403 naming Hôpital Lointain:\n%.3000s", p.status, p.body)
		}
		if env.countRequests() != 0 {
			t.Error("a forbidden request was stored")
		}
		// A form without its CSRF token.
		form.Del("csrf_token")
		if p = b.post(env.issuer+"/requests/new", validRequest(w, "")); p.status != http.StatusForbidden {
			t.Errorf("no CSRF token: %d, want 403", p.status)
		}

		// A requester is not support: the console is closed (403 with a message).
		for _, path := range []string{"/console/requests", "/console/users?q=reference"} {
			p = b.get(env.issuer + path)
			if p.status != http.StatusForbidden || !strings.Contains(html.UnescapeString(p.body), "soutien") {
				t.Errorf("GET %s as a requester: %d, want 403 saying it is for support:\n%.2000s", path, p.status, p.body)
			}
		}

		// Someone with no right anywhere sees no institution, and is refused.
		env.user("nobody", pw)
		nb := newBrowser(t)
		p = signedInAt(t, env, nb, "nobody", "/requests/new")
		if !p.has("account-request") || strings.Contains(p.body, w.a.ID) {
			t.Errorf("a user without the right: want the form without institutions")
		}
		p = nb.post(env.issuer+"/requests/new", validRequest(w, csrfOf(t, p)))
		if p.status != http.StatusForbidden || !strings.Contains(html.UnescapeString(p.body), "Clinique du Parc") {
			t.Errorf("a user without the right: %d, want 403 naming Clinique du Parc", p.status)
		}
	})
}

func TestConsoleQueueApproveAndStepUp(t *testing.T) {
	forEachRequestBackend(t, func(t *testing.T, env *testEnv) {
		w := env.requestWorld()
		var ids []string
		for _, email := range []string{"premiere@courriel.example", "seconde@courriel.example"} {
			// A new sign-in each day (a session lasts 12 hours).
			b := newBrowser(t)
			p := signedInAt(t, env, b, "gestionnaire", "/requests/new")
			form := validRequest(w, csrfOf(t, p))
			form.Set("email", email)
			p = b.post(env.issuer+"/requests/new", form)
			m := requestIDRE.FindStringSubmatch(p.body)
			if p.status != http.StatusCreated || m == nil {
				t.Fatalf("submit %s: %d:\n%s", email, p.status, p.body)
			}
			ids = append(ids, m[1])
			env.offset.Add(int64(24 * time.Hour)) // the second one is due a day later
		}
		// Five days later the first is overdue.
		env.offset.Add(int64(4 * 24 * time.Hour))

		sb := newBrowser(t)
		q := signedInAt(t, env, sb, supportUsername, "/console/requests")
		if q.status != http.StatusOK || !q.has("request-queue") {
			t.Fatalf("queue: %d:\n%s", q.status, q.body)
		}
		rows := regexp.MustCompile(`<tr data-request-id="([^"]+)"[^>]*?(class="overdue")?>`).FindAllStringSubmatch(q.body, -1)
		if len(rows) != 2 || rows[0][1] != ids[0] || rows[1][1] != ids[1] {
			t.Fatalf("queue rows %q, want %q in due order", rows, ids)
		}
		if rows[0][2] == "" {
			t.Errorf("the overdue request is not marked .overdue: %q", rows[0][0])
		}

		// The detail: every rule's verdict, the reference's mandates at the
		// requested institutions only.
		d := sb.get(q.link(t, "/console/requests/"+ids[0]))
		body := html.UnescapeString(d.body)
		if !d.has("verdicts") || !strings.Contains(d.body, `data-rule="`) {
			t.Errorf("detail: no verdicts:\n%s", d.body)
		}
		for _, m := range []string{"clinical_notes", "prescriptions", "vaccination"} {
			if !strings.Contains(body, m) {
				t.Errorf("detail: the reference's mandate %s is not shown", m)
			}
		}
		if strings.Contains(body, "radiology") {
			t.Error("detail: shows a mandate of an institution not requested")
		}

		// Eleven minutes after the second factor, a decision asks for it again.
		env.offset.Add(int64(11 * time.Minute))
		action, vals := d.form(t, "approve")
		vals.Set("grant", store.RightAccountRequests)
		sb.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		late := sb.post(action, vals)
		sb.c.CheckRedirect = nil
		if loc := late.header.Get("Location"); late.status != http.StatusSeeOther || !strings.Contains(loc, "/authorize") ||
			!strings.Contains(loc, "prompt=login") {
			t.Fatalf("approve with an old factor: %d Location %q, want a fresh sign-in", late.status, loc)
		}
		if r, _ := env.store.GetAccountRequest(context.Background(), ids[0]); r.Status != store.RequestSubmitted {
			t.Fatalf("approved without a fresh factor: %s", r.Status)
		}

		loc, _ := late.url.Parse(late.header.Get("Location"))
		d = finishSignIn(t, env, sb, sb.get(loc.String()), supportUsername)
		if !d.has("approve") {
			t.Fatalf("after the fresh sign-in: %d at %s, want the request's detail", d.status, d.url)
		}
		action, vals = d.form(t, "approve")
		vals.Set("grant", store.RightAccountRequests)
		ok := sb.post(action, vals)
		if ok.status != http.StatusOK || !strings.Contains(ok.body, "Demande approuvée") {
			t.Fatalf("approve: %d at %s:\n%s", ok.status, ok.url, ok.body)
		}
		r, err := env.store.GetAccountRequest(context.Background(), ids[0])
		if err != nil || r.Status != store.RequestApproved || r.UserID == "" {
			t.Fatalf("after approval: %+v, %v", r, err)
		}
		ms, err := env.store.ListMemberships(context.Background(), r.UserID)
		if err != nil || len(ms) != 2 {
			t.Fatalf("memberships %+v, %v; want the two requested institutions", ms, err)
		}
		for _, m := range ms {
			if slices.Contains(m.Rights, store.RightPatientMerge) || slices.Contains(m.Rights, store.RightAdminAccount) {
				t.Errorf("at %s: rights %q: a right not granted", m.InstitutionID, m.Rights)
			}
		}
		// A second approval (another tab): 409, already decided.
		again := sb.post(action, vals)
		if again.status != http.StatusConflict || !strings.Contains(again.body, "déjà été traitée") {
			t.Errorf("second approval: %d, want 409 'already processed'", again.status)
		}

		// The user lookup finds the new account with its memberships.
		u := sb.get(env.issuer + "/console/users?q=" + url.QueryEscape(r.UserID))
		if u.status != http.StatusOK || !strings.Contains(u.body, `data-user-id="`+r.UserID+`"`) {
			t.Errorf("user lookup: %d:\n%s", u.status, u.body)
		}
	})
}

var (
	fieldIDRE  = regexp.MustCompile(`<(?:input|select|textarea)[^>]*\sid="([^"]+)"[^>]*>`)
	hiddenRE   = regexp.MustCompile(`type="hidden"`)
	describeRE = regexp.MustCompile(`aria-describedby="([^"]+)"`)
)

// TestRequestFormsInEnglishAndAccessible: ?lang=en gives the English form
// and English messages; every field has its label, and every id an
// aria-describedby names exists (the message beside a field included).
func TestRequestFormsInEnglishAndAccessible(t *testing.T) {
	env := newRequestEnv(t, backends[0])
	w := env.requestWorld()
	b := newBrowser(t)
	signedInAt(t, env, b, "gestionnaire", "/requests/new")
	for _, path := range []string{"/requests/new", "/requests/new-scanning"} {
		p := b.get(env.issuer + path + "?lang=en")
		if !strings.Contains(p.body, `<html lang="en">`) || !strings.Contains(p.body, "Send the request") {
			t.Errorf("%s?lang=en is not in English", path)
		}
		csrf := csrfOf(t, p)
		form := url.Values{"csrf_token": {csrf}, "email": {"info@clinique.example"}, "responsible_email": {"info@clinique.example"}}
		p = b.post(env.issuer+path, form)
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Required.") {
			t.Errorf("%s empty form in English: %d, want 422 with English messages", path, p.status)
		}
		checkAccessible(t, path, p.body)
	}
	// French again, with every problem beside its field.
	p := b.get(env.issuer + "/requests/new?lang=fr")
	form := validRequest(w, csrfOf(t, p))
	form.Set("email", "accueil@clinique.example")
	form.Set("given_name", "")
	form.Set("billing_customer_number", "999")
	p = b.post(env.issuer+"/requests/new", form)
	for _, id := range []string{"email-error", "given_name-error", "billing_customer_number-error"} {
		if !p.has(id) {
			t.Errorf("no #%s beside its field:\n%s", id, p.body)
		}
	}
	if !strings.Contains(p.body, "Obligatoire.") {
		t.Error("the messages are not in French")
	}
	checkAccessible(t, "/requests/new", p.body)
}

func checkAccessible(t *testing.T, path, body string) {
	t.Helper()
	for _, m := range fieldIDRE.FindAllStringSubmatch(body, -1) {
		if hiddenRE.MatchString(m[0]) {
			continue
		}
		if !strings.Contains(body, `for="`+m[1]+`"`) && !strings.Contains(m[0], `type="search"`) {
			t.Errorf("%s: #%s has no label", path, m[1])
		}
		if d := describeRE.FindStringSubmatch(m[0]); d != nil {
			for _, id := range strings.Fields(d[1]) {
				if !strings.Contains(body, `id="`+id+`"`) {
					t.Errorf("%s: #%s is described by #%s, which does not exist", path, m[1], id)
				}
			}
		}
	}
	if strings.Count(body, "<fieldset") != strings.Count(body, "<legend") {
		t.Errorf("%s: a fieldset without its legend", path)
	}
}

func TestScanningRequestAndUserActions(t *testing.T) {
	var disabled []string
	env := newTestEnvWith(t, backends[0], func(s *idp.Server) {
		s.Support = func(_ context.Context, u store.User) (bool, error) { return u.Username == supportUsername, nil }
		s.UserActions = []provisioning.UserAction{{Name: "disable", LabelFR: "Désactiver", LabelEN: "Disable",
			Applies: func(u store.User) bool { return u.Status == store.StatusActive },
			Do: func(_ context.Context, userID string, by store.AuditEvent) error {
				if by.ActorID == "" || by.Type != "user.disable" {
					t.Errorf("audit event %+v", by)
				}
				disabled = append(disabled, userID)
				return nil
			}}}
	})
	w := env.requestWorld()
	b := newBrowser(t)
	p := signedInAt(t, env, b, "gestionnaire", "/requests/new-scanning")
	if !p.has("scanning-request") {
		t.Fatalf("no form#scanning-request:\n%s", p.body)
	}
	p = b.post(env.issuer+"/requests/new-scanning", validScanning(w, csrfOf(t, p)))
	m := requestIDRE.FindStringSubmatch(p.body)
	if p.status != http.StatusCreated || m == nil {
		t.Fatalf("scanning request: %d:\n%s", p.status, p.body)
	}
	r, err := env.store.GetAccountRequest(context.Background(), m[1])
	if err != nil || r.AccountType != store.AccountScanning || r.StationName != "Numériseur accueil" {
		t.Fatalf("stored %+v, %v", r, err)
	}

	// The console's user lookup offers the actions, which get the actor.
	sb := newBrowser(t)
	u := signedInAt(t, env, sb, supportUsername, "/console/users?q=reference")
	if !strings.Contains(u.body, `data-user-id="`+w.reference.ID+`"`) || !strings.Contains(u.body, "clinical_notes") {
		t.Fatalf("lookup by username:\n%s", u.body)
	}
	action, vals := u.formAction(t, "/console/users/"+w.reference.ID+"/disable")
	if p := sb.post(action, vals); p.status != http.StatusOK || len(disabled) != 1 || disabled[0] != w.reference.ID {
		t.Errorf("disable: %d, done for %q", p.status, disabled)
	}
	if p := sb.post(env.issuer+"/console/users/"+w.reference.ID+"/delete", vals); p.status != http.StatusNotFound {
		t.Errorf("unknown action: %d, want 404", p.status)
	}
	if p := sb.get(env.issuer + "/console/users?q=" + url.QueryEscape(w.reference.Email)); !strings.Contains(p.body, w.reference.ID) {
		t.Errorf("lookup by email does not find the user")
	}
}

// TestConsoleOpensToTheSupportRight: with the server's default (no
// Server.Support given, as sesame serve runs), the console opens to a user
// holding users.support (sesame user grant --support) and stays closed to
// one who does not; the user lookup offers the management API's actions.
func TestConsoleOpensToTheSupportRight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		w := env.requestWorld()
		setSupport(t, env, w.support.ID, true)

		sb := newBrowser(t)
		if p := signedInAt(t, env, sb, supportUsername, "/console/requests"); p.status != http.StatusOK || !p.has("queue-filter") {
			t.Fatalf("a user holding the support right: %d, want the queue:\n%.1500s", p.status, p.body)
		}
		p := sb.get(env.issuer + "/console/users?q=" + w.requester.Username)
		for _, action := range []string{"disable", "close", "unlock", "reset-factors"} {
			if !strings.Contains(p.body, "/"+action) {
				t.Errorf("user lookup: no %q action:\n%.3000s", action, p.body)
			}
		}

		rb := newBrowser(t)
		if p := signedInAt(t, env, rb, w.requester.Username, "/console/requests"); p.status != http.StatusForbidden {
			t.Errorf("a user without the support right: %d, want 403", p.status)
		}
	})
}

// A disable from the console ends the user's browser sessions at once, as
// the API's does: enabled again, the user's browser signs in again.
func TestConsoleDisableEndsSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		w := env.requestWorld()
		setSupport(t, env, w.support.ID, true)
		rb := newBrowser(t)
		if p := signedInAt(t, env, rb, w.requester.Username, "/requests"); p.status != http.StatusOK || !p.has("my-requests-empty") {
			t.Fatalf("the requester's page: %d at %s", p.status, p.url)
		}

		sb := newBrowser(t)
		p := signedInAt(t, env, sb, supportUsername, "/console/users?q="+w.requester.Username)
		for _, action := range []string{"disable", "enable"} {
			target, vals := p.formAction(t, "/console/users/"+w.requester.ID+"/"+action)
			if p = sb.post(target, vals); p.status != http.StatusOK {
				t.Fatalf("%s: %d at %s", action, p.status, p.url)
			}
		}
		if u, err := env.store.GetUser(context.Background(), w.requester.ID); err != nil || u.Status != store.StatusActive {
			t.Fatalf("after disable and enable: %s %v", u.Status, err)
		}
		if p := rb.get(env.issuer + "/requests"); !p.has("login") {
			t.Errorf("the requester's browser after disable and enable: %d at %s, want the sign-in page", p.status, p.url)
		}
	})
}
