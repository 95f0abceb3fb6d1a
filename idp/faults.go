package idp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"strings"

	"github.com/sesame-idp/sesame/idp/oidcstore"
	"github.com/sesame-idp/sesame/idp/web"
)

// retryAfterSeconds is the Retry-After of a 503 (a dependency failed).
const retryAfterSeconds = "5"

// withFaults answers a request of the provider that met a dependency
// failure (noted by the storage, oidcstore.Faults) with a 503, whatever
// zitadel/oidc made of the storage's error (an unknown client, an invalid
// grant): as the error page when page is set (/authorize and its
// callback), as {"error": "temporarily_unavailable"} otherwise. A 500 of
// the provider loses its error_description, which may carry internal
// detail. The response is held until the handler ends.
func withFaults(next http.Handler, kit *web.Kit, logger *slog.Logger, page bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, faults := oidcstore.WithFaults(r.Context())
		before := maps.Clone(w.Header())
		hw := &heldWriter{header: w.Header()}
		next.ServeHTTP(hw, r.WithContext(ctx))
		status := hw.status
		if status == 0 {
			status = http.StatusOK
		}
		restore := func() {
			h := w.Header()
			for k := range h {
				if _, ok := before[k]; !ok {
					h.Del(k)
				}
			}
			maps.Copy(h, before)
		}
		reqID := w.Header().Get("X-Request-Id")
		switch err := faults.Err(); {
		case err != nil:
			restore()
			if page {
				w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
				kit.Fail(w, r, web.Unavailable(err))
				return
			}
			logger.Error("dependency unavailable", "err", err, "path", r.URL.Path, "request_id", reqID)
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			h.Set("Retry-After", retryAfterSeconds)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"error": oidcstore.TemporarilyUnavailable, "error_description": oidcstore.UnavailableDescription})
			return
		case status >= http.StatusInternalServerError && !page:
			logger.Error("provider error", "status", status, "body", strings.TrimSpace(hw.body.String()),
				"path", r.URL.Path, "request_id", reqID)
			restore()
			oauthError(w, status, "server_error")
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(hw.body.Bytes())
	})
}

// heldWriter keeps a response (status and body) for withFaults; its
// headers are the real writer's, restored by withFaults when it answers
// otherwise.
type heldWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldWriter) Header() http.Header { return h.header }

func (h *heldWriter) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldWriter) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}
