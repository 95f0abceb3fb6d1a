package regulate

import (
	"context"
	"time"
)

// This file is the attempt counter that login and mfa call today. It counts
// every attempt, successes included, per account alone and per address: it
// is the defect of issue 8 (item 3) and goes when the pages call Check, Fail
// and Succeed. Nothing new should use it.

// Counter is what the legacy counter needs of the ephemeral store.
//
// Deprecated: use Store with New.
type Counter interface {
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	Delete(ctx context.Context, key string) error
}

// LegacyKind is one kind of attempt with its limits: at most PerSubject
// attempts per account and PerIP per client address within Window.
//
// Deprecated: use Kind with Config.
type LegacyKind struct {
	Name       string
	PerSubject int64
	PerIP      int64
	Window     time.Duration
}

var (
	// Password is the legacy password limit.
	//
	// Deprecated: use KindPassword.
	Password = LegacyKind{Name: "pw", PerSubject: 10, PerIP: 300, Window: 15 * time.Minute}
	// Code is the legacy second-factor code limit.
	//
	// Deprecated: use KindCode.
	Code = LegacyKind{Name: "code", PerSubject: 20, PerIP: 300, Window: 15 * time.Minute}
)

func (k LegacyKind) subjectKey(subject string) string { return "rl:" + k.Name + ":s:" + subject }
func (k LegacyKind) ipKey(ip string) string           { return "rl:" + k.Name + ":ip:" + ip }

// Attempt counts one attempt for the subject and the address and reports
// whether it is within the limits.
//
// Deprecated: use Check before verifying, then Fail or Succeed.
func (r *Regulator) Attempt(ctx context.Context, k LegacyKind, subject, ip string) (bool, error) {
	n, err := r.Counter.Incr(ctx, k.subjectKey(subject), k.Window)
	if err != nil {
		return false, err
	}
	m, err := r.Counter.Incr(ctx, k.ipKey(ip), k.Window)
	if err != nil {
		return false, err
	}
	return n <= k.PerSubject && m <= k.PerIP, nil
}

// Reset clears the subject's count after a success.
//
// Deprecated: use Succeed.
func (r *Regulator) Reset(ctx context.Context, k LegacyKind, subject string) {
	_ = r.Counter.Delete(ctx, k.subjectKey(subject))
}
