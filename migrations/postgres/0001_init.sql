-- Sésame durable store, initial schema (PostgreSQL).
-- Identifiers and usernames use the "C" collation so that ordering and
-- keyset pagination are byte-wise, as in SQLite. Zero time.Time is NULL.
-- Durations are bigint nanoseconds. JSON arrays and objects are jsonb.

CREATE TABLE schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    username          text COLLATE "C" NOT NULL UNIQUE CHECK (username <> ''), -- store.FoldUsername
    email             text NOT NULL DEFAULT '',
    given_name        text NOT NULL DEFAULT '',
    family_name       text NOT NULL DEFAULT '',
    locale            text NOT NULL DEFAULT '',
    status            text NOT NULL CHECK (status IN ('pending_activation', 'active', 'disabled', 'closed')),
    account_type      text NOT NULL DEFAULT '',
    occupation        text NOT NULL DEFAULT '',
    practice_number   text NOT NULL DEFAULT '',
    prescriber_number text NOT NULL DEFAULT '',
    phone             text NOT NULL DEFAULT '',
    mfa_grace_until   timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz
);

CREATE TABLE credentials (
    id             text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    user_id        text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type           text NOT NULL CHECK (type IN ('password', 'totp', 'sms', 'webauthn')),
    name           text NOT NULL DEFAULT '',
    secret         bytea,
    data           bytea,
    totp_last_step bigint NOT NULL DEFAULT 0,
    verified_at    timestamptz,
    last_used_at   timestamptz,
    created_at     timestamptz NOT NULL
);
CREATE INDEX credentials_user_idx ON credentials (user_id, created_at);
-- A user has at most one password.
CREATE UNIQUE INDEX credentials_one_password_idx ON credentials (user_id) WHERE type = 'password';

CREATE TABLE recovery_codes (
    id         text COLLATE "C" PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    UNIQUE (user_id, hash)
);

CREATE TABLE action_tokens (
    hash       text COLLATE "C" PRIMARY KEY CHECK (hash <> ''),
    kind       text NOT NULL,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX action_tokens_user_idx ON action_tokens (user_id);

CREATE TABLE clients (
    id                  text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    name                text    NOT NULL DEFAULT '',
    secret_hash         text    NOT NULL DEFAULT '',
    public              boolean NOT NULL,
    redirect_uris       jsonb   NOT NULL DEFAULT '[]',
    post_logout_uris    jsonb   NOT NULL DEFAULT '[]',
    grant_types         jsonb   NOT NULL DEFAULT '[]',
    scopes              jsonb   NOT NULL DEFAULT '[]',
    auth_method         text    NOT NULL DEFAULT '',
    pkce_required       boolean NOT NULL,
    token_format        text    NOT NULL DEFAULT '',
    id_token_alg        text    NOT NULL DEFAULT '',
    access_token_ttl_ns bigint  NOT NULL DEFAULT 0,
    id_token_ttl_ns     bigint  NOT NULL DEFAULT 0,
    refresh_token_ttl_ns bigint NOT NULL DEFAULT 0,
    backchannel_uri     text    NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz
);

CREATE TABLE refresh_tokens (
    id         text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    hash       text COLLATE "C" NOT NULL UNIQUE CHECK (hash <> ''),
    family     text COLLATE "C" NOT NULL,
    parent_id  text COLLATE "C" NOT NULL DEFAULT '', -- no foreign key: parents expire first
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     jsonb NOT NULL DEFAULT '[]',
    audience   jsonb NOT NULL DEFAULT '[]',
    auth_time  timestamptz,
    amr        jsonb NOT NULL DEFAULT '[]',
    acr        text  NOT NULL DEFAULT '',
    session_id text  NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz, -- NULL: does not expire
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_client_idx ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    id           text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    alg          text  NOT NULL,
    sealed       bytea NOT NULL,
    state        text  NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at   timestamptz NOT NULL,
    activated_at timestamptz,
    retired_at   timestamptz
);

-- No foreign keys: the audit trail outlives the users and clients it names.
CREATE TABLE audit_events (
    id         text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    at         timestamptz NOT NULL,
    type       text  NOT NULL,
    actor_id   text  NOT NULL DEFAULT '',
    user_id    text  COLLATE "C" NOT NULL DEFAULT '',
    client_id  text  NOT NULL DEFAULT '',
    ip         text  NOT NULL DEFAULT '',
    request_id text  NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, at, id);
CREATE INDEX audit_events_type_idx ON audit_events (type, at, id);

CREATE TABLE outbox (
    id              text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    kind            text    NOT NULL,
    idempotency_key text    NOT NULL DEFAULT '',
    payload         bytea   NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz, -- NULL: due at once
    sent_at         timestamptz,
    last_error      text    NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL
);
-- An empty key opts out of deduplication.
CREATE UNIQUE INDEX outbox_idempotency_key_idx ON outbox (idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at, created_at) WHERE sent_at IS NULL;
