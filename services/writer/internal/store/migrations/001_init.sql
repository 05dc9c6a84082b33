-- One row per connector. seq is the last change sequence handed out; the
-- row lock taken on it serializes every write transaction of a connector, so
-- sequences follow commit order.
CREATE TABLE connectors (
    id         bigserial PRIMARY KEY,
    tenant     text   NOT NULL,
    connector  text   NOT NULL,
    seq        bigint NOT NULL DEFAULT 0,
    UNIQUE (tenant, connector)
);

-- Every Clarity record, of every kind. A deleted record stays as a tombstone
-- (deleted = true) so that an older event cannot bring it back.
--   seen_at: started_at_ms of the newest full sync that saw the record.
--   version: the Zoom time (ms) of the newest state: a page's fetch time or a
--            webhook's event time. Older input never overwrites newer state.
CREATE TABLE records (
    connector_id bigint   NOT NULL REFERENCES connectors (id),
    kind         smallint NOT NULL,
    key          text     NOT NULL,
    data         json     NOT NULL,
    hash         bytea    NOT NULL,
    user_key     text,
    ent_key      text,
    email        text,
    seen_at      bigint   NOT NULL DEFAULT 0,
    version      bigint   NOT NULL DEFAULT 0,
    deleted      boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (connector_id, kind, key)
);
CREATE INDEX records_user_key ON records (connector_id, user_key) WHERE user_key IS NOT NULL;
CREATE INDEX records_ent_key ON records (connector_id, ent_key) WHERE ent_key IS NOT NULL;
CREATE INDEX records_email ON records (connector_id, email) WHERE email IS NOT NULL;

-- Group admins as Zoom lists them: by email. Grants of group_admin
-- entitlements are derived from these rows joined to users by email.
CREATE TABLE group_admins (
    connector_id bigint  NOT NULL REFERENCES connectors (id),
    group_id     text    NOT NULL,
    email        text    NOT NULL,
    seen_at      bigint  NOT NULL DEFAULT 0,
    version      bigint  NOT NULL DEFAULT 0,
    deleted      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (connector_id, group_id, email)
);

-- Full-sync runs. expected_* hold the page count of every listing, known once
-- the fetcher has published the whole run.
CREATE TABLE runs (
    connector_id      bigint      NOT NULL REFERENCES connectors (id),
    run_id            text        NOT NULL,
    started_at_ms     bigint      NOT NULL,
    mode              text        NOT NULL DEFAULT 'full',
    request_ids       text[]      NOT NULL DEFAULT '{}',
    status            text        NOT NULL DEFAULT 'running',
    fetched           boolean     NOT NULL DEFAULT false,
    expected_listing  smallint[]  NOT NULL DEFAULT '{}',
    expected_key      text[]      NOT NULL DEFAULT '{}',
    expected_pages    int[]       NOT NULL DEFAULT '{}',
    created           bigint      NOT NULL DEFAULT 0,
    updated           bigint      NOT NULL DEFAULT 0,
    deleted           bigint      NOT NULL DEFAULT 0,
    unchanged         bigint      NOT NULL DEFAULT 0,
    api_requests      bigint      NOT NULL DEFAULT 0,
    error             text        NOT NULL DEFAULT '',
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    progress_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, run_id)
);
CREATE INDEX runs_running ON runs (progress_at) WHERE status = 'running';

-- The pages of a run that the writer has applied.
CREATE TABLE run_pages (
    connector_id bigint   NOT NULL,
    run_id       text     NOT NULL,
    listing      smallint NOT NULL,
    listing_key  text     NOT NULL,
    page         int      NOT NULL,
    PRIMARY KEY (connector_id, run_id, listing, listing_key, page)
);

-- The outbox: changes committed with the records, waiting to be published.
CREATE TABLE outbox (
    connector_id bigint      NOT NULL REFERENCES connectors (id),
    seq          bigint      NOT NULL,
    kind         text        NOT NULL,
    op           text        NOT NULL,
    subject      text        NOT NULL,
    data         json        NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, seq)
);
