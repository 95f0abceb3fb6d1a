-- Sésame durable store, initial schema (SQLite).
-- STRICT tables. Timestamps are INTEGER unix microseconds (UTC), NULL for a
-- zero time.Time. Durations are INTEGER nanoseconds. Booleans are 0/1.
-- JSON arrays and objects are TEXT. Text compares byte-wise (BINARY).

CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    username          TEXT NOT NULL UNIQUE CHECK (username <> ''), -- store.FoldUsername
    email             TEXT NOT NULL DEFAULT '',
    given_name        TEXT NOT NULL DEFAULT '',
    family_name       TEXT NOT NULL DEFAULT '',
    locale            TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL CHECK (status IN ('pending_activation', 'active', 'disabled', 'closed')),
    account_type      TEXT NOT NULL DEFAULT '',
    occupation        TEXT NOT NULL DEFAULT '',
    practice_number   TEXT NOT NULL DEFAULT '',
    prescriber_number TEXT NOT NULL DEFAULT '',
    phone             TEXT NOT NULL DEFAULT '',
    mfa_grace_until   INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER
) STRICT;

CREATE TABLE credentials (
    id             TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type           TEXT NOT NULL CHECK (type IN ('password', 'totp', 'sms', 'webauthn')),
    name           TEXT NOT NULL DEFAULT '',
    secret         BLOB,
    data           BLOB,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    verified_at    INTEGER,
    last_used_at   INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX credentials_user_idx ON credentials (user_id, created_at);
-- A user has at most one password.
CREATE UNIQUE INDEX credentials_one_password_idx ON credentials (user_id) WHERE type = 'password';

CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (user_id, hash)
) STRICT;

CREATE TABLE action_tokens (
    hash       TEXT PRIMARY KEY NOT NULL CHECK (hash <> ''),
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX action_tokens_user_idx ON action_tokens (user_id);

CREATE TABLE clients (
    id                   TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    name                 TEXT    NOT NULL DEFAULT '',
    secret_hash          TEXT    NOT NULL DEFAULT '',
    public               INTEGER NOT NULL CHECK (public IN (0, 1)),
    redirect_uris        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(redirect_uris)),
    post_logout_uris     TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(post_logout_uris)),
    grant_types          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(grant_types)),
    scopes               TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    auth_method          TEXT    NOT NULL DEFAULT '',
    pkce_required        INTEGER NOT NULL CHECK (pkce_required IN (0, 1)),
    token_format         TEXT    NOT NULL DEFAULT '',
    id_token_alg         TEXT    NOT NULL DEFAULT '',
    access_token_ttl_ns  INTEGER NOT NULL DEFAULT 0,
    id_token_ttl_ns      INTEGER NOT NULL DEFAULT 0,
    refresh_token_ttl_ns INTEGER NOT NULL DEFAULT 0,
    backchannel_uri      TEXT    NOT NULL DEFAULT '',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER
) STRICT;

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    hash       TEXT NOT NULL UNIQUE CHECK (hash <> ''),
    family     TEXT NOT NULL,
    parent_id  TEXT NOT NULL DEFAULT '', -- no foreign key: parents expire first
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    audience   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(audience)),
    auth_time  INTEGER,
    amr        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
    acr        TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER, -- NULL: does not expire
    rotated_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_client_idx ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    id           TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    alg          TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER
) STRICT;

-- No foreign keys: the audit trail outlives the users and clients it names.
CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    at         INTEGER NOT NULL,
    type       TEXT NOT NULL,
    actor_id   TEXT NOT NULL DEFAULT '',
    user_id    TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
) STRICT;
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, at, id);
CREATE INDEX audit_events_type_idx ON audit_events (type, at, id);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    kind            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL DEFAULT '',
    payload         BLOB    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER, -- NULL: due at once
    sent_at         INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
) STRICT;
-- An empty key opts out of deduplication.
CREATE UNIQUE INDEX outbox_idempotency_key_idx ON outbox (idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at, created_at) WHERE sent_at IS NULL;
