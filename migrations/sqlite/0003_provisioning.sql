-- Provisioning: institutions, what users hold at them, account requests,
-- and outbox follow-ups (a message queued when another one is sent).

CREATE TABLE institutions (
    id                    TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    name                  TEXT    NOT NULL CHECK (name <> ''),
    auto_approve          INTEGER NOT NULL DEFAULT 0,
    role_mailbox_patterns TEXT    NOT NULL DEFAULT '[]', -- extra shared-mailbox patterns (Go regexps)
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER
) STRICT;

CREATE TABLE billing_accounts (
    institution_id  TEXT NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (name <> ''),
    customer_number TEXT NOT NULL CHECK (customer_number <> ''),
    PRIMARY KEY (institution_id, customer_number)
) STRICT;

CREATE TABLE memberships (
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    institution_id TEXT NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    is_primary     INTEGER NOT NULL DEFAULT 0,
    billing_customer_number TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, institution_id)
) STRICT;
CREATE INDEX memberships_institution_idx ON memberships (institution_id);
-- At most one primary institution per user (the service keeps exactly one).
CREATE UNIQUE INDEX memberships_one_primary_idx ON memberships (user_id) WHERE is_primary = 1;

CREATE TABLE mandates (
    user_id        TEXT NOT NULL,
    institution_id TEXT NOT NULL,
    mandate        TEXT NOT NULL CHECK (mandate <> ''),
    PRIMARY KEY (user_id, institution_id, mandate),
    FOREIGN KEY (user_id, institution_id) REFERENCES memberships (user_id, institution_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE special_rights (
    user_id        TEXT NOT NULL,
    institution_id TEXT NOT NULL,
    right_name     TEXT NOT NULL CHECK (right_name IN ('patient_merge', 'admin_account', 'account_requests')),
    PRIMARY KEY (user_id, institution_id, right_name),
    FOREIGN KEY (user_id, institution_id) REFERENCES memberships (user_id, institution_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE lab_registrations (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    laboratory TEXT NOT NULL CHECK (laboratory <> ''),
    number     TEXT NOT NULL CHECK (number <> ''),
    PRIMARY KEY (user_id, laboratory, number)
) STRICT;

-- Lookups of the request rules: an address in use, a number in use.
CREATE INDEX users_email_idx ON users (lower(email)) WHERE email <> '';
CREATE INDEX users_practice_number_idx ON users (practice_number) WHERE practice_number <> '';
CREATE INDEX users_prescriber_number_idx ON users (prescriber_number) WHERE prescriber_number <> '';

CREATE TABLE account_requests (
    id                     TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    kind                   TEXT NOT NULL CHECK (kind IN ('create', 'update')),
    account_type           TEXT NOT NULL CHECK (account_type IN ('person', 'scanning')),
    status                 TEXT NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'completed')),
    requester_id           TEXT NOT NULL DEFAULT '',
    requester_email        TEXT NOT NULL DEFAULT '',
    requester_name         TEXT NOT NULL DEFAULT '',
    requester_locale       TEXT NOT NULL DEFAULT '',
    given_name             TEXT NOT NULL DEFAULT '',
    family_name            TEXT NOT NULL DEFAULT '',
    email                  TEXT NOT NULL DEFAULT '',
    email_folded           TEXT NOT NULL DEFAULT '',
    locale                 TEXT NOT NULL DEFAULT '',
    previously_had_account INTEGER NOT NULL DEFAULT 0,
    primary_institution_id TEXT NOT NULL DEFAULT '',
    occupation             TEXT NOT NULL DEFAULT '',
    practice_number        TEXT NOT NULL DEFAULT '',
    prescriber_number      TEXT NOT NULL DEFAULT '',
    lab_registrations      TEXT NOT NULL DEFAULT '[]', -- [{"laboratory", "number"}]
    reference_given_name   TEXT NOT NULL DEFAULT '',
    reference_family_name  TEXT NOT NULL DEFAULT '',
    reference_id           TEXT NOT NULL DEFAULT '',
    billing_name           TEXT NOT NULL DEFAULT '',
    billing_customer_number TEXT NOT NULL DEFAULT '',
    special_rights         TEXT NOT NULL DEFAULT '[]', -- asked for
    comment                TEXT NOT NULL DEFAULT '',
    station_name           TEXT NOT NULL DEFAULT '',
    responsible_name       TEXT NOT NULL DEFAULT '',
    target_user_id         TEXT NOT NULL DEFAULT '', -- the account an update changes
    warnings               TEXT NOT NULL DEFAULT '[]',
    due_at                 INTEGER NOT NULL,
    reviewer_id            TEXT NOT NULL DEFAULT '',
    decision_reason        TEXT NOT NULL DEFAULT '',
    decided_at             INTEGER,
    granted_rights         TEXT NOT NULL DEFAULT '[]',
    user_id                TEXT NOT NULL DEFAULT '', -- resulting user
    welcome_outbox_id      TEXT NOT NULL DEFAULT '',
    completed_at           INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER
) STRICT;
CREATE INDEX account_requests_queue_idx ON account_requests (status, due_at, id);
CREATE INDEX account_requests_due_idx ON account_requests (due_at, id);
CREATE INDEX account_requests_requester_idx ON account_requests (requester_id, due_at, id);
CREATE INDEX account_requests_welcome_idx ON account_requests (welcome_outbox_id) WHERE welcome_outbox_id <> '';
-- One pending request per address: the second is a conflict (409).
CREATE UNIQUE INDEX account_requests_pending_email_idx ON account_requests (email_folded) WHERE status = 'submitted' AND email_folded <> '';

CREATE TABLE account_request_institutions (
    request_id     TEXT NOT NULL REFERENCES account_requests (id) ON DELETE CASCADE,
    institution_id TEXT NOT NULL,
    is_primary     INTEGER NOT NULL DEFAULT 0,
    position       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, institution_id)
) STRICT;
CREATE INDEX account_request_institutions_idx ON account_request_institutions (institution_id, request_id);

-- A follow-up is queued, in the transaction that marks its message sent
-- (the requester's confirmation after the new user's welcome).
ALTER TABLE outbox ADD COLUMN then_id      TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN then_kind    TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN then_key     TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN then_payload BLOB;
