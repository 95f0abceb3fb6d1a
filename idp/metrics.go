package idp

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-idp/sesame/idp/store"
)

// signals counts the outcomes of sign-ins, second factors, step-ups,
// throttles and tokens, from the audit events that record them (one place
// sees them all: audit.Recorder.Observe).
type signals struct {
	signins      *prometheus.CounterVec
	factors      *prometheus.CounterVec
	stepUps      *prometheus.CounterVec
	throttles    *prometheus.CounterVec
	voided       prometheus.Counter
	refreshReuse prometheus.Counter
	codeReplays  prometheus.Counter
	tokens       *prometheus.CounterVec
}

// Label values: anything else an event carries is counted as "other", so
// that no label takes unbounded values.
var (
	signinResults   = []string{"succeeded", "bad_password", "unknown_or_inactive", "throttled", "acr_unmet"}
	factorMethods   = []string{"totp", "sms", "recovery", "webauthn"}
	factorResults   = []string{"ok", "failed", "throttled"}
	throttleSteps   = []string{"password", "second_factor"}
	throttleReasons = []string{"delay", "account", "network", "requests"}
	tokenGrants     = []string{"authorization_code", "refresh_token", "client_credentials"}
	stepUpReasons   = []string{"new_network", "factor_window"}
)

func newSignals(reg prometheus.Registerer) *signals {
	m := &signals{
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_signins_total",
			Help: "Sign-in outcomes: succeeded (tokens may be issued), bad_password, unknown_or_inactive, throttled, acr_unmet.",
		}, []string{"result"}),
		factors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_second_factor_verifications_total",
			Help: "Second-factor verifications by method (totp, sms, recovery, webauthn; any when throttled before one was chosen) and result (ok, failed, throttled).",
		}, []string{"method", "result"}),
		stepUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_step_ups_total",
			Help: "Signed-in users asked for a factor again, by reason: new_network (a session from another network), factor_window (a sensitive change on /account without a recent factor).",
		}, []string{"reason"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_throttled_total",
			Help: "Attempts refused by the throttle, by step (password, second_factor) and reason (delay: growing wait; account: unknown devices locked out; network: password spraying).",
		}, []string{"step", "reason"}),
		voided: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sesame_second_factor_challenges_voided_total",
			Help: "Second-factor challenges voided after five wrong codes (back to the password).",
		}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sesame_refresh_reuse_detected_total",
			Help: "Refresh tokens presented again after rotation (their family is revoked).",
		}),
		codeReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sesame_code_replays_total",
			Help: "Authorization codes presented a second time (what they issued is revoked).",
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_tokens_issued_total",
			Help: "Successful token responses by grant type.",
		}, []string{"grant"}),
	}
	for _, r := range signinResults {
		m.signins.WithLabelValues(r)
	}
	for _, method := range factorMethods {
		for _, r := range factorResults[:2] {
			m.factors.WithLabelValues(method, r)
		}
	}
	m.factors.WithLabelValues("any", "throttled")
	for _, r := range stepUpReasons {
		m.stepUps.WithLabelValues(r)
	}
	for _, s := range throttleSteps {
		for _, r := range throttleReasons[:3] {
			m.throttles.WithLabelValues(s, r)
		}
	}
	for _, g := range tokenGrants {
		m.tokens.WithLabelValues(g)
	}
	if reg != nil {
		reg.MustRegister(m.signins, m.factors, m.stepUps, m.throttles, m.voided, m.refreshReuse, m.codeReplays, m.tokens)
	}
	return m
}

func known(v string, values []string) string {
	for _, k := range values {
		if v == k {
			return v
		}
	}
	return "other"
}

// observe counts what an audit event records.
func (m *signals) observe(e store.AuditEvent) {
	switch e.Type {
	case "login.succeeded":
		m.signins.WithLabelValues("succeeded").Inc()
	case "login.failed":
		r := e.Details["reason"]
		if r == "password" {
			r = "bad_password"
		}
		m.signins.WithLabelValues(known(r, signinResults)).Inc()
	case "login.throttled":
		m.signins.WithLabelValues("throttled").Inc()
		m.throttles.WithLabelValues("password", known(e.Details["reason"], throttleReasons)).Inc()
	case "login.acr_unmet":
		m.signins.WithLabelValues("acr_unmet").Inc()
	case "mfa.verified":
		m.factors.WithLabelValues(known(e.Details["method"], factorMethods), "ok").Inc()
	case "mfa.failed":
		m.factors.WithLabelValues(known(e.Details["method"], factorMethods), "failed").Inc()
	case "mfa.throttled":
		m.factors.WithLabelValues("any", "throttled").Inc()
		m.throttles.WithLabelValues("second_factor", known(e.Details["reason"], throttleReasons)).Inc()
	case "mfa.challenge_voided":
		m.voided.Inc()
	case "session.step_up":
		m.stepUps.WithLabelValues(known(cmp.Or(e.Details["reason"], "new_network"), stepUpReasons)).Inc()
	case "token.refresh_reused":
		m.refreshReuse.Inc()
	case "token.code_replayed":
		m.codeReplays.Inc()
	}
}

// withTokenMetrics counts the token endpoint's successful answers by
// grant type.
func withTokenMetrics(next http.Handler, m *signals) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm() // the body is already bounded by withTokenClient
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			m.tokens.WithLabelValues(known(r.PostForm.Get("grant_type"), tokenGrants)).Inc()
		}
	})
}

// AccountRequestCounter is what the account-request gauges read: the
// provisioning store offers it (the store is asked for it too).
type AccountRequestCounter interface {
	// CountAccountRequests returns the number of requests by status, and
	// how many open ones are past their due date at now.
	CountAccountRequests(ctx context.Context, now time.Time) (store.AccountRequestCounts, error)
}

// outboxBacklog is what the outbox gauges read (both stores offer it).
type outboxBacklog interface {
	OutboxBacklog(ctx context.Context) (pending int, oldest time.Time, err error)
}

// stateCollector reads gauges from the store at each scrape: the outbox
// backlog and the age of its oldest message, the account requests by
// status and overdue. A store that cannot answer within a second leaves
// its gauges out of that scrape (readiness says why).
type stateCollector struct {
	outbox   outboxBacklog
	requests AccountRequestCounter
	now      func() time.Time
	logger   *slog.Logger

	backlog, oldest, byStatus, overdue *prometheus.Desc
}

func newStateCollector(s *Server) *stateCollector {
	c := &stateCollector{
		requests: s.AccountRequests,
		now:      s.now,
		logger:   s.Logger,
		backlog:  prometheus.NewDesc("sesame_outbox_backlog", "Emails and text messages waiting in the outbox (not sent, not given up).", nil, nil),
		oldest:   prometheus.NewDesc("sesame_outbox_oldest_age_seconds", "Age of the oldest message waiting in the outbox (0 when empty).", nil, nil),
		byStatus: prometheus.NewDesc("sesame_account_requests", "Account requests by status.", []string{"status"}, nil),
		overdue:  prometheus.NewDesc("sesame_account_requests_overdue", "Open account requests past their due date.", nil, nil),
	}
	c.outbox, _ = s.Store.(outboxBacklog)
	if c.requests == nil {
		c.requests, _ = s.Store.(AccountRequestCounter)
	}
	return c
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.oldest
	ch <- c.byStatus
	ch <- c.overdue
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c.outbox != nil {
		n, oldest, err := c.outbox.OutboxBacklog(ctx)
		if err != nil {
			c.logger.Warn("metrics: outbox backlog", "err", err)
		} else {
			age := 0.0
			if n > 0 && !oldest.IsZero() {
				age = max(0, c.now().Sub(oldest).Seconds())
			}
			ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(n))
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
		}
	}
	if c.requests != nil {
		counts, err := c.requests.CountAccountRequests(ctx, c.now())
		if err != nil {
			c.logger.Warn("metrics: account requests", "err", err)
			return
		}
		for status, n := range counts.ByStatus {
			ch <- prometheus.MustNewConstMetric(c.byStatus, prometheus.GaugeValue, float64(n), string(status))
		}
		ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, float64(counts.Overdue))
	}
}
