//go:build unix

package argon2id

import (
	"syscall"
	"unsafe"
)

// allocBlocks maps n blocks of anonymous memory outside the Go heap: a
// kept buffer then does not count in the heap the garbage collector
// paces itself on (a 19 MiB live buffer would let the heap grow by as
// much again before each collection).
func allocBlocks(n uint32) (blocks []block, mapped bool) {
	b, err := syscall.Mmap(-1, 0, int(n)*blockLength*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]block, n), false
	}
	return unsafe.Slice((*block)(unsafe.Pointer(&b[0])), n), true
}

// freeBlocks unmaps a buffer made by allocBlocks.
func freeBlocks(b []block) {
	if cap(b) == 0 {
		return
	}
	_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(&b[:1][0])), cap(b)*blockLength*8))
}
