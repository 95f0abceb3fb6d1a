-- The support right (DESIGN §5: support users hold sesame:admin tokens),
-- and what the management API's lists filter on.
ALTER TABLE users ADD COLUMN support INTEGER NOT NULL DEFAULT 0 CHECK (support IN (0, 1));
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, at, id);
