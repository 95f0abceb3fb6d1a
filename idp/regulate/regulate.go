package regulate

import (
	"context"
	"time"
)

// Counter is what the regulator needs of the ephemeral store.
type Counter interface {
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	Delete(ctx context.Context, key string) error
}

// Kind is one kind of attempt with its limits: at most PerSubject attempts
// per account and PerIP per client address within Window.
type Kind struct {
	Name       string
	PerSubject int64
	PerIP      int64
	Window     time.Duration
}

var (
	// Password: ten tries per account in 15 minutes (a success resets it);
	// a clinic behind one address may have dozens of people signing in at
	// 7 a.m., hence the generous per-address figure.
	Password = Kind{Name: "pw", PerSubject: 10, PerIP: 300, Window: 15 * time.Minute}
	// Code: second-factor codes. Five wrong codes also void the challenge
	// (the flow counts those); this bounds guessing across challenges.
	Code = Kind{Name: "code", PerSubject: 20, PerIP: 300, Window: 15 * time.Minute}
)

// Regulator counts attempts in the ephemeral store (whose clock it uses).
type Regulator struct {
	Counter Counter
}

func (k Kind) subjectKey(subject string) string { return "rl:" + k.Name + ":s:" + subject }
func (k Kind) ipKey(ip string) string           { return "rl:" + k.Name + ":ip:" + ip }

// Attempt counts one attempt for the subject and the address and reports
// whether it is within the limits. Attempts over the limit are refused
// before any expensive check.
func (r *Regulator) Attempt(ctx context.Context, k Kind, subject, ip string) (bool, error) {
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
func (r *Regulator) Reset(ctx context.Context, k Kind, subject string) {
	_ = r.Counter.Delete(ctx, k.subjectKey(subject))
}
