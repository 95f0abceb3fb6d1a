package regulate

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Quota is a limit on actions that cost something whether or not they
// succeed (an email sent): at most Limit within each Window, per subject.
type Quota struct {
	// Name keeps the counters of each quota apart ("pwreset").
	Name   string
	Limit  int
	Window time.Duration
}

// Allow counts one action of subject (an account name, hashed before it
// reaches the store) under q, and refuses it past q.Limit within the
// current window (windows follow one another on the regulator's clock).
// Refused actions count too.
func (r *Regulator) Allow(ctx context.Context, q Quota, subject string) (Verdict, error) {
	if q.Limit <= 0 || q.Window < time.Millisecond || q.Name == "" {
		return Verdict{}, fmt.Errorf("regulate: quota %q: a name, a limit and a window are required", q.Name)
	}
	now := r.now()
	w := q.Window.Milliseconds()
	bucket := ms(now) / w
	key := "rl:q:" + q.Name + ":" + hash(subject) + ":" + strconv.FormatInt(bucket, 10)
	n, err := r.store.Incr(ctx, key, q.Window)
	if err != nil {
		return Verdict{}, fmt.Errorf("regulate: count %s: %w", q.Name, err)
	}
	if n > int64(q.Limit) {
		return Verdict{RetryAfter: at((bucket + 1) * w).Sub(now), Reason: ReasonRequests}, nil
	}
	return Verdict{Allowed: true}, nil
}

// AllowFromNetwork is Allow with the network of ip as the subject.
func (r *Regulator) AllowFromNetwork(ctx context.Context, q Quota, ip netip.Addr) (Verdict, error) {
	return r.Allow(ctx, q, "net:"+r.Network(ip))
}
