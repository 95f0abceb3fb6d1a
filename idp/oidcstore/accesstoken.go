package oidcstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// accessTokenV1 starts an access token's record in its compact form
// (encodeAccessToken). A record written as JSON, by a version before it,
// starts with '{' and still opens.
const accessTokenV1 = 0x01

// encodeAccessToken writes t compactly: the record is written at every
// token issued and read at every use (userinfo, introspection), and
// reflection over JSON was a tenth of an introspection's cost. Strings and
// lists are length-prefixed, times are seconds and nanoseconds (zero kept
// as zero).
func encodeAccessToken(t *AccessToken) []byte {
	b := make([]byte, 0, 256)
	b = append(b, accessTokenV1)
	b = appendString(b, t.ID)
	b = appendString(b, t.Subject)
	b = appendString(b, t.ClientID)
	b = appendStrings(b, t.Audience)
	b = appendStrings(b, t.Scopes)
	b = appendString(b, t.Family)
	b = appendTime(b, t.AuthTime)
	b = appendStrings(b, t.AMR)
	b = appendString(b, t.ACR)
	b = appendString(b, t.SessionID)
	b = appendTime(b, t.IssuedAt)
	b = appendTime(b, t.Expires)
	return b
}

var errBadRecord = errors.New("access token record damaged")

// decodeAccessToken reads what encodeAccessToken wrote, or the JSON of
// before.
func decodeAccessToken(b []byte, t *AccessToken) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, t)
	}
	if len(b) == 0 || b[0] != accessTokenV1 {
		return errBadRecord
	}
	r := recordReader{b: b[1:]}
	t.ID = r.string()
	t.Subject = r.string()
	t.ClientID = r.string()
	t.Audience = r.strings()
	t.Scopes = r.strings()
	t.Family = r.string()
	t.AuthTime = r.time()
	t.AMR = r.strings()
	t.ACR = r.string()
	t.SessionID = r.string()
	t.IssuedAt = r.time()
	t.Expires = r.time()
	if r.bad || len(r.b) != 0 {
		return errBadRecord
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendStrings keeps nil apart from empty, as JSON did (null, []).
func appendStrings(b []byte, l []string) []byte {
	if l == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(l))+1)
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// recordReader reads a record; past a damaged byte, bad is set and every
// read gives a zero value.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *recordReader) strings() []string {
	n := r.uvarint()
	if r.bad || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(r.b)) { // each string takes a byte at least
		r.bad = true
		return nil
	}
	l := make([]string, 0, n)
	for range n {
		l = append(l, r.string())
	}
	return l
}

func (r *recordReader) time() time.Time {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return time.Time{}
	}
	set := r.b[0]
	r.b = r.b[1:]
	switch set {
	case 0:
		return time.Time{}
	case 1:
	default:
		r.bad = true
		return time.Time{}
	}
	sec, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return time.Time{}
	}
	r.b = r.b[n:]
	ns := r.uvarint()
	if ns >= 1e9 {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}
