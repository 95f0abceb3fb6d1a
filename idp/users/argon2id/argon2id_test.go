package argon2id

import (
	"bytes"
	"encoding/hex"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"
)

// RFC 9106 §5.3: the argon2id test vector.
func TestRFC9106Vector(t *testing.T) {
	password := bytes.Repeat([]byte{1}, 32)
	salt := bytes.Repeat([]byte{2}, 16)
	secret := bytes.Repeat([]byte{3}, 8)
	data := bytes.Repeat([]byte{4}, 12)
	want := "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
	for i := range 3 { // the second and third reuse a buffer
		if got := hex.EncodeToString(deriveKey(password, salt, secret, data, 3, 32, 4, 32)); got != want {
			t.Fatalf("run %d: %s, want %s", i, got, want)
		}
	}
}

// IDKey gives x/crypto/argon2.IDKey's key, for Sésame's parameters and
// others, one after another on reused (dirty) buffers of other sizes, and
// concurrently.
func TestSameAsXCrypto(t *testing.T) {
	cases := []struct {
		pw, salt     string
		time, memory uint32
		threads      uint8
		keyLen       uint32
	}{
		{"correct horse battery staple", "0123456789abcdef", 2, 19 * 1024, 1, 32},
		{"", "saltsaltsaltsalt", 1, 64, 1, 32},
		{"mot de passe é", "0123456789abcdef", 3, 4096, 2, 16},
		{"x", "0123456789abcdef", 1, 8, 1, 64},
		{"correct horse battery staple", "fedcba9876543210", 2, 19 * 1024, 1, 32},
		{"p", "0123456789abcdef", 2, 1000, 4, 32},            // memory rounded down as x/crypto does
		{"larger", "0123456789abcdef", 1, 24 * 1024, 1, 32},  // the kept buffer is replaced
		{"largest", "0123456789abcdef", 1, 65 * 1024, 1, 32}, // not kept (above 64 MiB)
		{"after", "0123456789abcdef", 2, 19 * 1024, 1, 32},
	}
	for _, c := range cases {
		want := argon2.IDKey([]byte(c.pw), []byte(c.salt), c.time, c.memory, c.threads, c.keyLen)
		if got := IDKey([]byte(c.pw), []byte(c.salt), c.time, c.memory, c.threads, c.keyLen); !bytes.Equal(got, want) {
			t.Errorf("%+v: %x, want %x", c, got, want)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		c := cases[i%len(cases)]
		want := argon2.IDKey([]byte(c.pw), []byte(c.salt), c.time, c.memory, c.threads, c.keyLen)
		wg.Go(func() {
			if got := IDKey([]byte(c.pw), []byte(c.salt), c.time, c.memory, c.threads, c.keyLen); !bytes.Equal(got, want) {
				t.Errorf("concurrent %+v: %x, want %x", c, got, want)
			}
		})
	}
	wg.Wait()
}

// A hash with the production parameters allocates no block memory once a
// buffer exists.
func TestReusesMemory(t *testing.T) {
	pw, salt := []byte("pw"), []byte("0123456789abcdef")
	IDKey(pw, salt, 2, 19*1024, 1, 32)
	allocs := testing.AllocsPerRun(3, func() { IDKey(pw, salt, 2, 19*1024, 1, 32) })
	if allocs > 32 {
		t.Fatalf("%v allocations per hash", allocs)
	}
	var ms runtimeMem
	ms.before()
	IDKey(pw, salt, 2, 19*1024, 1, 32)
	if n := ms.after(); n > 1<<20 {
		t.Fatalf("%d bytes allocated by a hash", n)
	}
}

func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("pw"), []byte("0123456789abcdef")
	b.Run("x-crypto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			argon2.IDKey(pw, salt, 2, 19*1024, 1, 32)
		}
	})
	b.Run("reused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			IDKey(pw, salt, 2, 19*1024, 1, 32)
		}
	})
}
