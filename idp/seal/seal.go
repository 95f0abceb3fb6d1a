package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
)

const (
	version   = 1
	nonceSize = 12
	tagSize   = 16
	// KeySize is the length of a key secret: AES-256.
	KeySize = 32
	// maxKeyIDLen keeps key ids short and printable; the format allows 255.
	maxKeyIDLen = 64
)

// ErrOpen is returned by Open for a value it cannot open: truncated,
// tampered with, sealed with other additional data, or sealed with a key
// this Sealer does not have.
var ErrOpen = errors.New("seal: cannot open sealed value")

// Key is a sealing key: an id written into every value it seals and a
// 32-byte secret. String, GoString and LogValue never show the secret.
type Key struct {
	ID     string
	Secret []byte
}

// String describes the key without its secret.
func (k Key) String() string { return "seal.Key{ID:" + k.ID + ", Secret:REDACTED}" }

// GoString describes the key without its secret, for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue logs the key id only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("secret", "REDACTED"))
}

// Sealer seals with its current key and opens with any of its keys. It is
// safe for concurrent use.
type Sealer struct {
	currentID string
	current   cipher.AEAD
	keys      map[string]cipher.AEAD
}

// New returns a Sealer that seals with current and opens values sealed with
// current or any of older. Key ids must be distinct and valid (see
// ValidKeyID); secrets must be 32 bytes. The secrets are copied.
func New(current Key, older ...Key) (*Sealer, error) {
	s := &Sealer{currentID: current.ID, keys: make(map[string]cipher.AEAD, 1+len(older))}
	for _, k := range append([]Key{current}, older...) {
		if err := ValidKeyID(k.ID); err != nil {
			return nil, err
		}
		if _, dup := s.keys[k.ID]; dup {
			return nil, fmt.Errorf("seal: key id %q given twice", k.ID)
		}
		aead, err := newAEAD(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", k.ID, err)
		}
		s.keys[k.ID] = aead
	}
	s.current = s.keys[current.ID]
	return s, nil
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("secret is %d bytes, want %d", len(secret), KeySize)
	}
	// aes.NewCipher keeps its own expanded copy of the key.
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ValidKeyID reports whether id can name a key: 1 to 64 characters among
// A-Z a-z 0-9 . _ -
func ValidKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("seal: key id must be 1 to %d characters", maxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("seal: key id %q: only A-Z a-z 0-9 . _ - allowed", id)
		}
	}
	return nil
}

// CurrentKeyID is the id of the key Seal uses.
func (s *Sealer) CurrentKeyID() string { return s.currentID }

// Seal encrypts and authenticates plaintext, binding it to aad (which is
// not stored: Open needs the same aad). Each call uses a fresh random nonce.
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	hdrLen := 2 + len(s.currentID)
	out := make([]byte, hdrLen+nonceSize, hdrLen+nonceSize+len(plaintext)+tagSize)
	out[0] = version
	out[1] = byte(len(s.currentID))
	copy(out[2:], s.currentID)
	// crypto/rand.Read never fails (it aborts the program if the system
	// source is broken), so there is no error to return.
	_, _ = rand.Read(out[hdrLen:])
	return s.current.Seal(out, out[hdrLen:], plaintext, additionalData(out[:hdrLen], aad))
}

// Open checks and decrypts a value made by Seal with the same aad. Any
// failure is ErrOpen.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != version {
		return nil, ErrOpen
	}
	hdrLen := 2 + int(sealed[1])
	if len(sealed) < hdrLen+nonceSize+tagSize {
		return nil, ErrOpen
	}
	kid := string(sealed[2:hdrLen])
	aead, ok := s.keys[kid]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key id %q", ErrOpen, kid)
	}
	nonce := sealed[hdrLen : hdrLen+nonceSize]
	plaintext, err := aead.Open(nil, nonce, sealed[hdrLen+nonceSize:], additionalData(sealed[:hdrLen], aad))
	if err != nil {
		return nil, ErrOpen
	}
	return plaintext, nil
}

// additionalData authenticates the header along with the caller's aad. The
// header carries its own length, so the concatenation is unambiguous.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	return append(append(ad, header...), aad...)
}
