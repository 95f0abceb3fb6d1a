package oidcstore

import "context"

// RevokeSession is being written on the codes branch (merged next).
func (s *Storage) RevokeSession(ctx context.Context, sessionID string) error { return nil }
