package seal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// GenerateKey returns a new random key with an id like "k1a2b3c4d".
func GenerateKey() Key {
	var id [4]byte
	secret := make([]byte, KeySize)
	// crypto/rand.Read never fails: it aborts the program instead.
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(secret)
	return Key{ID: "k" + hex.EncodeToString(id[:]), Secret: secret}
}

// FormatKey renders k as "<kid>:<base64 std of the secret>", the form
// ParseKey and key files use. The result is secret.
func FormatKey(k Key) string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
}

// ParseKey reads a key written as "<kid>:<base64 std of 32 bytes>", as in
// configuration. Surrounding white space is ignored. Errors never quote
// the input.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, " \t\r\n") {
		return Key{}, errors.New("seal: key must be a single line <kid>:<base64 of 32 bytes>")
	}
	kid, b64, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, errors.New("seal: key must be <kid>:<base64 of 32 bytes>, no ':' found")
	}
	if err := ValidKeyID(kid); err != nil {
		return Key{}, err
	}
	secret, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Key{}, fmt.Errorf("seal: key %q: secret is not standard base64", kid)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("seal: key %q: secret is %d bytes, want %d", kid, len(secret), KeySize)
	}
	return Key{ID: kid, Secret: secret}, nil
}

// LoadOrCreateKeyFile reads the key in the file at path (one line, as
// ParseKey), or, when there is no such file, generates a key and writes it
// there: parent directories are created with mode 0700 and the file with
// mode 0600. Creation never replaces a file: when several processes start
// together, one key wins and all of them return it.
func LoadOrCreateKeyFile(path string) (Key, error) {
	k, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k = GenerateKey()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, fmt.Errorf("seal: create directory for key file %s: %w", path, err)
	}
	err = createExclusive(path, []byte(FormatKey(k)+"\n"))
	if errors.Is(err, fs.ErrExist) {
		// Another process created it between our read and our write.
		return readKeyFile(path)
	}
	if err != nil {
		return Key{}, fmt.Errorf("seal: create key file %s: %w", path, err)
	}
	return k, nil
}

func readKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The *fs.PathError names the path.
		return Key{}, fmt.Errorf("seal: read key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return k, nil
}

// createExclusive writes data to a new file at path with mode 0600, failing
// with fs.ErrExist if path exists. The data is written and synced to a
// temporary file first and then hard-linked into place, so a concurrent
// reader never sees a partial file; where hard links are not supported it
// falls back to O_EXCL.
func createExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeSyncClose(tmp, data); err != nil {
		return err
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return err
	default:
		if err := createExclNoLink(path, data); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

func createExclNoLink(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the new directory entry durable: losing the key file after
// values were sealed with it would lose those values.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
