-- The audit trail of provisioning: every request the worker served and its
-- result, by connector and request id (or "seq:<n>" for a request without
-- one), with who asked (the request's Clarity-… headers) and each Zoom call.
-- Rows older than the writer's PROVISION_AUDIT_RETENTION are deleted.
CREATE TABLE provisioning_audit (
    tenant       text        NOT NULL,
    connector    text        NOT NULL,
    audit_key    text        NOT NULL,
    request_id   text        NOT NULL,
    action       text        NOT NULL,
    user_key     text        NOT NULL,
    entitlement  text        NOT NULL,
    request      jsonb       NOT NULL,
    requested_by jsonb       NOT NULL,
    received_at  timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    result       text        NOT NULL,
    error        text        NOT NULL,
    zoom_status  int         NOT NULL,
    zoom_code    int         NOT NULL,
    calls        jsonb       NOT NULL,
    PRIMARY KEY (tenant, connector, audit_key)
);
CREATE INDEX provisioning_audit_received ON provisioning_audit (received_at);
CREATE INDEX provisioning_audit_user ON provisioning_audit (tenant, connector, user_key, received_at);
