package softkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// Key is one credential on a software authenticator. Change Origin or RPID
// to answer as a phishing page would; Counter is the signature counter
// (incremented before each assertion).
type Key struct {
	Origin  string // the origin the browser reports
	RPID    string // the RP ID the authenticator hashes
	Counter uint32
	// Synced marks a passkey that can be backed up (BE and BS set).
	Synced bool
	ID     []byte
	priv   *ecdsa.PrivateKey
}

// New returns a key for origin (its host is the RP ID).
func New(origin, rpID string) *Key {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &Key{Origin: origin, RPID: rpID, ID: id, priv: priv}
}

var b64 = base64.RawURLEncoding

type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

func (k *Key) clientData(typ string, opts []byte) ([]byte, options, error) {
	var o options
	if err := json.Unmarshal(opts, &o); err != nil {
		return nil, o, fmt.Errorf("softkey: options: %w", err)
	}
	cd, err := json.Marshal(map[string]any{"type": typ, "challenge": o.PublicKey.Challenge, "origin": k.Origin, "crossOrigin": false})
	return cd, o, err
}

func (k *Key) flags() byte {
	f := byte(flagUP | flagUV)
	if k.Synced {
		f |= flagBE | flagBS
	}
	return f
}

func (k *Key) authData(flags byte, attested []byte) []byte {
	h := sha256.Sum256([]byte(k.RPID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.Counter)
	return append(out, attested...)
}

// Create answers creation options (the JSON of protocol.CredentialCreation)
// with the JSON of a PublicKeyCredential, "none" attestation.
func (k *Key) Create(opts []byte) ([]byte, error) {
	cd, _, err := k.clientData("webauthn.create", opts)
	if err != nil {
		return nil, err
	}
	pub := k.priv.PublicKey
	var x, y [32]byte
	pub.X.FillBytes(x[:])
	pub.Y.FillBytes(y[:])
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x[:], -3: y[:]})
	if err != nil {
		return nil, err
	}
	att := make([]byte, 16) // AAGUID: zero, as "none" attestation sends
	att = binary.BigEndian.AppendUint16(att, uint16(len(k.ID)))
	att = append(append(att, k.ID...), cose...)
	ao, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(k.flags()|flagAT, att)})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"authenticatorAttachment": "cross-platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(ao),
			"transports": []string{"usb"},
		},
		"clientExtensionResults": map[string]any{},
	})
}

// Get answers request options (the JSON of protocol.CredentialAssertion)
// with the JSON of a PublicKeyCredential, after adding one to Counter.
// userHandle is the user id the key was created for.
func (k *Key) Get(opts []byte, userHandle []byte) ([]byte, error) {
	cd, _, err := k.clientData("webauthn.get", opts)
	if err != nil {
		return nil, err
	}
	k.Counter++
	ad := k.authData(k.flags(), nil)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"authenticatorAttachment": "cross-platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(userHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}
