-- Provisioning: institutions, what users hold at them, account requests,
-- and outbox follow-ups (a message queued when another one is sent).

CREATE TABLE institutions (
    id                    text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    name                  text    NOT NULL CHECK (name <> ''),
    auto_approve          boolean NOT NULL DEFAULT false,
    role_mailbox_patterns jsonb   NOT NULL DEFAULT '[]', -- extra shared-mailbox patterns (Go regexps)
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz
);

CREATE TABLE billing_accounts (
    institution_id  text COLLATE "C" NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name <> ''),
    customer_number text NOT NULL CHECK (customer_number <> ''),
    PRIMARY KEY (institution_id, customer_number)
);

CREATE TABLE memberships (
    user_id        text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    institution_id text COLLATE "C" NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    is_primary     boolean NOT NULL DEFAULT false,
    billing_customer_number text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, institution_id)
);
CREATE INDEX memberships_institution_idx ON memberships (institution_id);
-- At most one primary institution per user (the service keeps exactly one).
CREATE UNIQUE INDEX memberships_one_primary_idx ON memberships (user_id) WHERE is_primary;

CREATE TABLE mandates (
    user_id        text COLLATE "C" NOT NULL,
    institution_id text COLLATE "C" NOT NULL,
    mandate        text NOT NULL CHECK (mandate <> ''),
    PRIMARY KEY (user_id, institution_id, mandate),
    FOREIGN KEY (user_id, institution_id) REFERENCES memberships (user_id, institution_id) ON DELETE CASCADE
);

CREATE TABLE special_rights (
    user_id        text COLLATE "C" NOT NULL,
    institution_id text COLLATE "C" NOT NULL,
    right_name     text NOT NULL CHECK (right_name IN ('patient_merge', 'admin_account', 'account_requests')),
    PRIMARY KEY (user_id, institution_id, right_name),
    FOREIGN KEY (user_id, institution_id) REFERENCES memberships (user_id, institution_id) ON DELETE CASCADE
);

CREATE TABLE lab_registrations (
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    laboratory text NOT NULL CHECK (laboratory <> ''),
    number     text NOT NULL CHECK (number <> ''),
    PRIMARY KEY (user_id, laboratory, number)
);

-- Lookups of the request rules: an address in use, a number in use.
CREATE INDEX users_email_idx ON users (lower(email)) WHERE email <> '';
CREATE INDEX users_practice_number_idx ON users (practice_number) WHERE practice_number <> '';
CREATE INDEX users_prescriber_number_idx ON users (prescriber_number) WHERE prescriber_number <> '';

CREATE TABLE account_requests (
    id                     text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    kind                   text NOT NULL CHECK (kind IN ('create', 'update')),
    account_type           text NOT NULL CHECK (account_type IN ('person', 'scanning')),
    status                 text NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'completed')),
    requester_id           text COLLATE "C" NOT NULL DEFAULT '',
    requester_email        text NOT NULL DEFAULT '',
    requester_name         text NOT NULL DEFAULT '',
    requester_locale       text NOT NULL DEFAULT '',
    given_name             text NOT NULL DEFAULT '',
    family_name            text NOT NULL DEFAULT '',
    email                  text NOT NULL DEFAULT '',
    email_folded           text COLLATE "C" NOT NULL DEFAULT '',
    locale                 text NOT NULL DEFAULT '',
    previously_had_account boolean NOT NULL DEFAULT false,
    primary_institution_id text COLLATE "C" NOT NULL DEFAULT '',
    occupation             text NOT NULL DEFAULT '',
    practice_number        text NOT NULL DEFAULT '',
    prescriber_number      text NOT NULL DEFAULT '',
    lab_registrations      jsonb NOT NULL DEFAULT '[]', -- [{"laboratory", "number"}]
    reference_given_name   text NOT NULL DEFAULT '',
    reference_family_name  text NOT NULL DEFAULT '',
    reference_id           text NOT NULL DEFAULT '',
    billing_name           text NOT NULL DEFAULT '',
    billing_customer_number text NOT NULL DEFAULT '',
    special_rights         jsonb NOT NULL DEFAULT '[]', -- asked for
    comment                text NOT NULL DEFAULT '',
    station_name           text NOT NULL DEFAULT '',
    responsible_name       text NOT NULL DEFAULT '',
    target_user_id         text COLLATE "C" NOT NULL DEFAULT '', -- the account an update changes
    warnings               jsonb NOT NULL DEFAULT '[]',
    due_at                 timestamptz NOT NULL,
    reviewer_id            text NOT NULL DEFAULT '',
    decision_reason        text NOT NULL DEFAULT '',
    decided_at             timestamptz,
    granted_rights         jsonb NOT NULL DEFAULT '[]',
    user_id                text COLLATE "C" NOT NULL DEFAULT '', -- resulting user
    welcome_outbox_id      text COLLATE "C" NOT NULL DEFAULT '',
    completed_at           timestamptz,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz
);
CREATE INDEX account_requests_queue_idx ON account_requests (status, due_at, id);
CREATE INDEX account_requests_due_idx ON account_requests (due_at, id);
CREATE INDEX account_requests_requester_idx ON account_requests (requester_id, due_at, id);
CREATE INDEX account_requests_welcome_idx ON account_requests (welcome_outbox_id) WHERE welcome_outbox_id <> '';
-- One pending request per address: the second is a conflict (409).
CREATE UNIQUE INDEX account_requests_pending_email_idx ON account_requests (email_folded) WHERE status = 'submitted' AND email_folded <> '';

CREATE TABLE account_request_institutions (
    request_id     text COLLATE "C" NOT NULL REFERENCES account_requests (id) ON DELETE CASCADE,
    institution_id text COLLATE "C" NOT NULL,
    is_primary     boolean NOT NULL DEFAULT false,
    position       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, institution_id)
);
CREATE INDEX account_request_institutions_idx ON account_request_institutions (institution_id, request_id);

-- A follow-up is queued, in the transaction that marks its message sent
-- (the requester's confirmation after the new user's welcome).
ALTER TABLE outbox ADD COLUMN then_id      text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN then_kind    text NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN then_key     text NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN then_payload bytea;
