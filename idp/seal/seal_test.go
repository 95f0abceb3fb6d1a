package seal_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sesame-idp/sesame/idp/seal"
)

func testKey(id string, b byte) seal.Key {
	return seal.Key{ID: id, Secret: bytes.Repeat([]byte{b}, seal.KeySize)}
}

func mustNew(t *testing.T, current seal.Key, older ...seal.Key) *seal.Sealer {
	t.Helper()
	s, err := seal.New(current, older...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := mustNew(t, testKey("k1", 1))
	for _, pt := range [][]byte{nil, {}, []byte("totp secret"), bytes.Repeat([]byte{0, 0xff}, 5000)} {
		sealed := s.Seal(pt, []byte("user:42"))
		got, err := s.Open(sealed, []byte("user:42"))
		if err != nil {
			t.Fatalf("Open(len %d): %v", len(pt), err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open(len %d) = %x, want %x", len(pt), got, pt)
		}
	}
}

func TestFormat(t *testing.T) {
	s := mustNew(t, testKey("k1", 1))
	pt := []byte("plaintext")
	sealed := s.Seal(pt, nil)
	if sealed[0] != 1 || sealed[1] != 2 || string(sealed[2:4]) != "k1" {
		t.Fatalf("header = %x, want 01 02 'k1'", sealed[:4])
	}
	if want := 2 + 2 + 12 + len(pt) + 16; len(sealed) != want {
		t.Fatalf("len = %d, want %d", len(sealed), want)
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed value contains the plaintext")
	}
	if other := s.Seal(pt, nil); bytes.Equal(sealed[4:16], other[4:16]) {
		t.Fatal("two seals used the same nonce")
	}
}

func TestAADMismatch(t *testing.T) {
	s := mustNew(t, testKey("k1", 1))
	sealed := s.Seal([]byte("v"), []byte("key-a"))
	for _, aad := range [][]byte{[]byte("key-b"), nil, []byte("key-a\x00")} {
		if _, err := s.Open(sealed, aad); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Open with aad %q: err = %v, want ErrOpen", aad, err)
		}
	}
}

func TestTamper(t *testing.T) {
	s := mustNew(t, testKey("k1", 1))
	sealed := s.Seal([]byte("some value"), nil)
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := s.Open(bad, nil); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("flipped byte %d: err = %v, want ErrOpen", i, err)
		}
	}
	for n := range len(sealed) {
		if _, err := s.Open(sealed[:n], nil); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("truncated to %d: err = %v, want ErrOpen", n, err)
		}
	}
	if _, err := s.Open(append(bytes.Clone(sealed), 0), nil); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("extended: err = %v, want ErrOpen", err)
	}
}

func TestUnknownKey(t *testing.T) {
	sealed := mustNew(t, testKey("k1", 1)).Seal([]byte("v"), nil)
	// Same id, different secret: not the same key.
	for _, s := range []*seal.Sealer{mustNew(t, testKey("k2", 1)), mustNew(t, testKey("k1", 2))} {
		if _, err := s.Open(sealed, nil); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("err = %v, want ErrOpen", err)
		}
	}
}

func TestRotation(t *testing.T) {
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	old := mustNew(t, k1)
	byOld := old.Seal([]byte("old"), nil)

	rotated := mustNew(t, k2, k1)
	if got, err := rotated.Open(byOld, nil); err != nil || string(got) != "old" {
		t.Fatalf("rotated.Open(old value) = %q, %v", got, err)
	}
	byNew := rotated.Seal([]byte("new"), nil)
	if string(byNew[2:4]) != "k2" {
		t.Fatalf("rotated sealer sealed with %q, want k2", byNew[2:4])
	}
	if _, err := old.Open(byNew, nil); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("old.Open(new value): err = %v, want ErrOpen", err)
	}
	if rotated.CurrentKeyID() != "k2" {
		t.Fatalf("CurrentKeyID = %q", rotated.CurrentKeyID())
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		current seal.Key
		older   []seal.Key
	}{
		{"short secret", seal.Key{ID: "k1", Secret: make([]byte, 16)}, nil},
		{"long secret", seal.Key{ID: "k1", Secret: make([]byte, 33)}, nil},
		{"empty id", seal.Key{Secret: make([]byte, 32)}, nil},
		{"bad id", seal.Key{ID: "k:1", Secret: make([]byte, 32)}, nil},
		{"long id", seal.Key{ID: strings.Repeat("k", 65), Secret: make([]byte, 32)}, nil},
		{"duplicate id", testKey("k1", 1), []seal.Key{testKey("k1", 2)}},
		{"bad older", testKey("k1", 1), []seal.Key{{ID: "k2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := seal.New(tt.current, tt.older...); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	k := testKey("k1", 1)
	s := mustNew(t, k)
	sealed := s.Seal([]byte("v"), nil)
	k.Secret[0] ^= 0xff
	if _, err := s.Open(sealed, nil); err != nil {
		t.Fatalf("Open after caller changed its secret: %v", err)
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k := seal.GenerateKey()
	secret := strings.TrimPrefix(seal.FormatKey(k), k.ID+":")
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "key", k)
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String(),
	} {
		if !strings.Contains(s, k.ID) || strings.Contains(s, secret) || strings.Contains(s, fmt.Sprint(k.Secret)) {
			t.Errorf("printed key %q", s)
		}
	}
}

func TestParseKey(t *testing.T) {
	k := seal.GenerateKey()
	if !strings.HasPrefix(k.ID, "k") || len(k.ID) != 9 {
		t.Fatalf("GenerateKey id = %q, want k + 8 hex", k.ID)
	}
	got, err := seal.ParseKey(" " + seal.FormatKey(k) + "\n")
	if err != nil || got.ID != k.ID || !bytes.Equal(got.Secret, k.Secret) {
		t.Fatalf("ParseKey(FormatKey(k)) = %v, %v", got, err)
	}
	k = testKey("k1", 0xfb) // base64 "+/v7+/v7…": has '+' and '/'
	b64 := strings.TrimPrefix(seal.FormatKey(k), k.ID+":")
	for _, s := range []string{
		"",
		b64,
		":" + b64,
		"k 1:" + b64,
		"k1:" + b64[:20],
		"k1:" + b64[:20] + "\n" + b64[20:],
		"k1:" + strings.TrimRight(b64, "="),
		"k1:" + b64 + "\nk2:" + b64,
		"k1:" + strings.ReplaceAll(b64, "+", "-"),
		"k1:AAAA",
	} {
		_, err := seal.ParseKey(s)
		if err == nil {
			t.Errorf("ParseKey(%q) succeeded", s)
			continue
		}
		if strings.Contains(err.Error(), b64[:10]) {
			t.Errorf("ParseKey error quotes the secret: %v", err)
		}
	}
}

func TestKeyFileCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "seal.key")
	k, err := seal.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyFile: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode = %v, want 0700", di.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != seal.FormatKey(k)+"\n" {
		t.Errorf("file does not hold the returned key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("key dir holds %d entries, want only the key file", len(entries))
	}
	if _, err := seal.New(k); err != nil {
		t.Errorf("created key unusable: %v", err)
	}
}

func TestKeyFileReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	want := seal.GenerateKey()
	if err := os.WriteFile(path, []byte(seal.FormatKey(want)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := seal.LoadOrCreateKeyFile(path)
		if err != nil {
			t.Fatalf("LoadOrCreateKeyFile: %v", err)
		}
		if got.ID != want.ID || !bytes.Equal(got.Secret, want.Secret) {
			t.Fatalf("got key %v, want the existing %v", got, want)
		}
	}
}

func TestKeyFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	const n = 8
	keys := make([]seal.Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = seal.LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if keys[i].ID != keys[0].ID || !bytes.Equal(keys[i].Secret, keys[0].Secret) {
			t.Fatalf("callers got different keys: %v and %v", keys[0], keys[i])
		}
	}
}

func TestKeyFileMalformed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	secretish := "k1:not-base64-but-secretish"
	if err := os.WriteFile(path, []byte(secretish+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := seal.LoadOrCreateKeyFile(path)
	if err == nil {
		t.Fatal("malformed key file accepted")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if strings.Contains(err.Error(), "secretish") {
		t.Errorf("error %q quotes the file's content", err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != secretish+"\n" {
		t.Error("malformed key file was overwritten")
	}
}

func TestKeyFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory cannot be read as a file
		t.Fatal(err)
	}
	_, err := seal.LoadOrCreateKeyFile(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
}
