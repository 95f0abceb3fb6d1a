package api

import (
	"net/http"
	"time"

	"github.com/sesame-idp/sesame/idp/store"
	"github.com/sesame-idp/sesame/idp/web"
)

// eventJSON is an audit event.
type eventJSON struct {
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	Type      string            `json:"type"`
	ActorID   string            `json:"actor_id"`
	UserID    string            `json:"user_id"`
	ClientID  string            `json:"client_id"`
	IP        string            `json:"ip"`
	RequestID string            `json:"request_id"`
	Details   map[string]string `json:"details"`
}

// eventCursor is the last event of a page (events are newest first).
type eventCursor struct {
	At time.Time `json:"t"`
	ID string    `json:"i"`
}

// listAuditEvents: GET /audit-events?actor=&user=&type=&since=&cursor=&limit=
func (h *Handler) listAuditEvents(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	var fields []web.FieldError
	n, fe := limit(r)
	if fe != nil {
		fields = append(fields, *fe)
	}
	var cur eventCursor
	hasCursor, fe := decodeCursor(r, &cur)
	if fe != nil {
		fields = append(fields, *fe)
	} else if hasCursor && (cur.At.IsZero() || cur.ID == "") {
		fields = append(fields, fieldError("cursor", "invalid", "not a cursor of this list: use next_cursor as given"))
	}
	f := store.AuditFilter{ActorID: q.Get("actor"), UserID: q.Get("user"), Type: q.Get("type"), Limit: n + 1}
	for _, p := range []struct{ name, v string }{{"actor", f.ActorID}, {"user", f.UserID}, {"type", f.Type}} {
		if len(p.v) > 256 {
			fields = append(fields, fieldError(p.name, "too_long", "at most 256 bytes"))
		}
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			fields = append(fields, fieldError("since", "invalid", "must be a date and time as in RFC 3339, e.g. 2026-12-01T08:00:00-05:00"))
		}
		f.Since = t
	}
	if len(fields) > 0 {
		return fieldErrors(fields...)
	}
	if hasCursor {
		f.Before, f.BeforeID = cur.At, cur.ID
	}
	events, err := h.Store.ListAuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	out := page[eventJSON]{Items: []eventJSON{}}
	if len(events) > n {
		events = events[:n]
		last := events[n-1]
		next := encodeCursor(eventCursor{At: last.At, ID: last.ID})
		out.NextCursor = &next
	}
	for _, e := range events {
		d := e.Details
		if d == nil {
			d = map[string]string{}
		}
		out.Items = append(out.Items, eventJSON{ID: e.ID, At: e.At.UTC(), Type: e.Type, ActorID: e.ActorID, UserID: e.UserID,
			ClientID: e.ClientID, IP: e.IP, RequestID: e.RequestID, Details: d})
	}
	return writeJSON(w, http.StatusOK, out)
}
