-- A connector's change sequence moves to a row of its own. Page
-- transactions of a full sync hold a key-share lock on the connector row
-- while they work in parallel and lock the sequence row only for their last
-- statements, so commits (and sequences) stay in order. Were the sequence on
-- the connector row, a page transaction taking it would queue behind a
-- transaction waiting for that row's exclusive lock, which waits for the
-- page transaction: a lock cycle.
CREATE TABLE sequences (
    connector_id bigint PRIMARY KEY REFERENCES connectors (id),
    seq          bigint NOT NULL DEFAULT 0
);
INSERT INTO sequences (connector_id, seq) SELECT id, seq FROM connectors;
ALTER TABLE connectors DROP COLUMN seq;

-- Connector rows are never deleted, and the per-row check of this foreign
-- key cost about as much as the rest of inserting a record.
ALTER TABLE records DROP CONSTRAINT records_connector_id_fkey;
