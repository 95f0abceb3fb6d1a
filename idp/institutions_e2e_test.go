package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sesame-idp/sesame/idp"
	"github.com/sesame-idp/sesame/idp/store"
)

type institutionClaims struct {
	Institutions []struct {
		ID       string   `json:"id"`
		Name     string   `json:"name"`
		Primary  bool     `json:"primary"`
		Mandates []string `json:"mandates"`
		Rights   []string `json:"rights"`
	} `json:"sesame_institutions"`
	Occupation       *string  `json:"occupation"`
	PracticeNumber   string   `json:"practice_number"`
	PrescriberNumber string   `json:"prescriber_number"`
	Features         []string `json:"features"`
}

// TestInstitutionClaims: a relying party asking for sesame:institutions
// gets, in the ID token and at userinfo, the user's institutions (only
// theirs) with mandates and rights, the occupation, numbers and features;
// without the scope, none of it.
func TestInstitutionClaims(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			env := newTestEnvWith(t, b, func(s *idp.Server) {
				s.Features = func(occupation string) []string {
					if occupation == "nurse_practitioner" {
						return []string{"DSQ", "SAFIR"}
					}
					return nil
				}
			})
			ctx := context.Background()
			u := env.user("sophie", pw)
			u.Occupation, u.PracticeNumber, u.PrescriberNumber = "nurse_practitioner", "1234567", "7654321"
			if err := env.store.UpdateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			for _, in := range []store.Institution{{ID: "inst-b", Name: "Clinique B"}, {ID: "inst-a", Name: "Clinique A"}, {ID: "inst-c", Name: "CLSC C"}} {
				in.CreatedAt = time.Now().UTC()
				if err := env.store.CreateInstitution(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range []store.Membership{
				{UserID: u.ID, InstitutionID: "inst-b", Primary: true, Mandates: []string{"nursing", "prescriptions"}, Rights: []string{store.RightPatientMerge}},
				{UserID: u.ID, InstitutionID: "inst-a", Mandates: []string{"vaccination"}},
			} {
				m.CreatedAt = time.Now().UTC()
				if err := env.store.PutMembership(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			// Someone else at C: not Sophie's.
			other := env.passwordOnlyUser("marc", pw)
			_ = env.store.PutMembership(ctx, store.Membership{UserID: other.ID, InstitutionID: "inst-c", Primary: true, CreatedAt: time.Now().UTC()})

			want := institutionClaims{}
			_ = json.Unmarshal([]byte(`{"sesame_institutions":[
				{"id":"inst-b","name":"Clinique B","primary":true,"mandates":["nursing","prescriptions"],"rights":["patient_merge"]},
				{"id":"inst-a","name":"Clinique A","primary":false,"mandates":["vaccination"],"rights":[]}],
				"occupation":"nurse_practitioner","practice_number":"1234567","prescriber_number":"7654321","features":["DSQ","SAFIR"]}`), &want)

			r := env.newRP(nil)
			r.conf.Scopes = append(r.conf.Scopes, "sesame:institutions")
			code, v := r.signIn(newBrowser(t), "sophie", pw)
			tok, idt, err := r.exchange(code, v)
			if err != nil {
				t.Fatal(err)
			}
			var got institutionClaims
			if err := idt.Claims(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ID token claims\n got %+v\nwant %+v", got, want)
			}
			status, body := r.userinfo(tok.AccessToken, http.MethodGet)
			got = institutionClaims{}
			if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("userinfo %d\n got %+v\nwant %+v\n%s", status, got, want, body)
			}

			// Without the scope: none of them, in either.
			plain := env.newRP(nil)
			code, v = plain.signIn(newBrowser(t), "sophie", pw)
			tok, idt, err = plain.exchange(code, v)
			if err != nil {
				t.Fatal(err)
			}
			got = institutionClaims{}
			_ = idt.Claims(&got)
			_, body = plain.userinfo(tok.AccessToken, http.MethodGet)
			var info institutionClaims
			_ = json.Unmarshal([]byte(body), &info)
			if got.Institutions != nil || got.Occupation != nil || got.Features != nil || info.Institutions != nil || info.Occupation != nil {
				t.Fatalf("claims without the scope: %+v %s", got, body)
			}

			// Advertised in discovery.
			var disco struct {
				Scopes []string `json:"scopes_supported"`
				Claims []string `json:"claims_supported"`
			}
			resp, err := http.Get(env.issuer + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			_ = json.NewDecoder(resp.Body).Decode(&disco)
			if !slices.Contains(disco.Scopes, "sesame:institutions") {
				t.Fatalf("scopes_supported %v", disco.Scopes)
			}
			for _, c := range []string{"sesame_institutions", "occupation", "practice_number", "prescriber_number", "features"} {
				if !slices.Contains(disco.Claims, c) {
					t.Errorf("claims_supported %v lacks %s", disco.Claims, c)
				}
			}
		})
	}
}
