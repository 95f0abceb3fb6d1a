package oidcstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestAccessTokenRecord(t *testing.T) {
	at := time.Date(2026, 12, 2, 7, 3, 4, 123456789, time.UTC)
	for _, tok := range []AccessToken{
		{ID: "9b2f7c1e-0d5c-4c59-9f4e-2f1f7f9d1a10", Subject: "u-1", ClientID: "emr", Audience: []string{"emr", "api"},
			Scopes: []string{"openid", "profile"}, Family: "fam", AuthTime: at.Add(-time.Hour), AMR: []string{"pwd", "otp", "mfa"},
			ACR: "urn:sesame:acr:mfa", SessionID: "sid-é", IssuedAt: at, Expires: at.Add(15 * time.Minute)},
		{ID: "id", Subject: "emr", ClientID: "emr", Audience: []string{}, Scopes: nil, IssuedAt: at, Expires: at.Add(time.Minute)},
		{},
	} {
		b := encodeAccessToken(&tok)
		var got AccessToken
		if err := decodeAccessToken(b, &got); err != nil {
			t.Fatalf("%+v: %v", tok, err)
		}
		if !reflect.DeepEqual(got, tok) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, tok)
		}
		// A record of before (JSON) still opens, to the same token.
		j, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		var old AccessToken
		if err := decodeAccessToken(j, &old); err != nil {
			t.Fatalf("JSON record: %v", err)
		}
		if !old.Expires.Equal(tok.Expires) || old.ID != tok.ID || !reflect.DeepEqual(old.AMR, tok.AMR) {
			t.Errorf("JSON record: got %+v, want %+v", old, tok)
		}
		// Every truncation, and a trailing byte, is refused, never a panic.
		for n := range len(b) {
			if err := decodeAccessToken(b[:n], new(AccessToken)); err == nil {
				t.Errorf("record cut at %d of %d accepted", n, len(b))
			}
		}
		if err := decodeAccessToken(append(b, 0), new(AccessToken)); err == nil {
			t.Error("record with a trailing byte accepted")
		}
	}
}

func FuzzAccessTokenRecord(f *testing.F) {
	f.Add(encodeAccessToken(&AccessToken{ID: "x", Scopes: []string{"openid"}, Expires: time.Unix(1, 2)}))
	f.Add([]byte{accessTokenV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var tok AccessToken
		if decodeAccessToken(b, &tok) == nil && b[0] == accessTokenV1 {
			if again := encodeAccessToken(&tok); string(again) != string(b) {
				// Only one encoding per token, except for non-canonical varints.
				var tok2 AccessToken
				if err := decodeAccessToken(again, &tok2); err != nil || !reflect.DeepEqual(tok, tok2) {
					t.Errorf("re-encoding differs: %v", err)
				}
			}
		}
	})
}
