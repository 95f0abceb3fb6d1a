package idp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-idp/sesame/idp/audit"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the id the middleware gave the request, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts an incoming X-Request-Id only when it is short and
// plain, so it can be logged safely.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// httpMetrics counts requests by route pattern and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sesame_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

// quietRoutes are the machine endpoints called at every token use or page
// load: their successful answers are logged at debug, not info, so that
// the access log costs nothing on the hot path at the default level.
// Their errors (4xx at info, 5xx at error, with the request id) are still
// logged, as every other route's answers are.
var quietRoutes = map[string]bool{
	"/.well-known/openid-configuration": true,
	"/keys":                             true,
	"/oauth/token":                      true,
	"/oauth/introspect":                 true,
	"/userinfo":                         true,
	"/revoke":                           true,
	"/healthz":                          true,
	"/readyz":                           true,
	"/metrics":                          true,
	"/static/":                          true,
}

// accessLogLevel is the level of a request's access log line: error for a
// 5xx, debug for a success of a quiet route, info otherwise.
func accessLogLevel(route string, status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status < 400:
		// route is a ServeMux pattern: "GET /keys", "/oauth/token".
		if i := strings.IndexByte(route, ' '); i >= 0 {
			route = route[i+1:]
		}
		if quietRoutes[route] {
			return slog.LevelDebug
		}
	}
	return slog.LevelInfo
}

// withCommon wraps h with request id, security headers, panic recovery,
// metrics and an access log line.
func withCommon(h http.Handler, log *slog.Logger, m *httpMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		hdr := w.Header()
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("X-Frame-Options", "DENY")
		r = r.WithContext(audit.WithUserSlot(audit.WithRequestID(context.WithValue(r.Context(), requestIDKey, id), id)))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "request_id", id, "panic", p, "path", r.URL.Path)
				if rec.status == 0 {
					http.Error(rec, "Internal error. Reference: "+id, http.StatusInternalServerError)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			level := accessLogLevel(route, status)
			// The query string may carry codes and tokens: log the path only.
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", elapsed),
			}
			if u := audit.NotedUser(r.Context()); u != "" {
				attrs = append(attrs, slog.String("user_id", u))
			}
			log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		h.ServeHTTP(rec, r)
	})
}
