//go:build !unix

package argon2id

func allocBlocks(n uint32) ([]block, bool) { return make([]block, n), false }

func freeBlocks([]block) {}
