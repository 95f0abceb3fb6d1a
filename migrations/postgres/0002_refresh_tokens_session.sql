-- Logout revokes the refresh tokens of one browser session (sid).
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id) WHERE session_id <> '';
