package oidcstore_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sesame-idp/sesame/idp/oidcstore"
)

// OIDC Core §5.5: the claims parameter is a JSON object whose members map
// claim names to null or an object.
func TestParseClaimsRequest(t *testing.T) {
	many := `{"id_token":{` // 33 names
	for i := range 33 {
		if i > 0 {
			many += ","
		}
		many += `"c` + strings.Repeat("x", i) + `":null`
	}
	many += `}}`
	for _, c := range []struct {
		in      string
		idToken []string
		ok      bool
	}{
		{`{"id_token":{"email":null,"name":{"essential":true}}}`, []string{"email", "name"}, true},
		{`{"userinfo":{"email":null}}`, nil, true},
		{`{"id_token":{"acr":{"values":["urn:a","urn:b"]}},"other":{}}`, []string{"acr"}, true},
		{`{"id_token":null}`, []string{}, true},
		{`{"id_token":["email"]}`, nil, false},
		{`{"id_token":{"email":"yes"}}`, nil, false},
		{`{"id_token":{"email":{"essential":"yes"}}}`, nil, false},
		{`{"id_token":{"":null}}`, nil, false},
		{`[1]`, nil, false},
		{`not json`, nil, false},
		{many, nil, false},
		{`{"id_token":{"` + strings.Repeat("n", 65) + `":null}}`, nil, false},
		{`{"id_token":{"email":{"value":"` + strings.Repeat("p", 4096) + `"}}}`, nil, false},
	} {
		got, err := oidcstore.ParseClaimsRequest(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%.60s: error %v, want ok %v", c.in, err, c.ok)
			continue
		}
		if c.ok && c.idToken != nil && !slices.Equal(got.IDToken, c.idToken) {
			t.Errorf("%.60s: id_token %v, want %v", c.in, got.IDToken, c.idToken)
		}
	}
}
