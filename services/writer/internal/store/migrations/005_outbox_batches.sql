-- The outbox holds one row per committed transaction rather than one per
-- change: the changes, in sequence order from first_seq, are one protobuf
-- ChangeBatch. A full sync writes a few thousand rows instead of a million,
-- and the relay reads and deletes them as cheaply.
--
-- Rows of the previous layout cannot be re-encoded here; the migration
-- refuses to run until the previous writer has relayed them all.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM outbox) THEN
        RAISE EXCEPTION 'the outbox still holds unpublished changes in the previous layout: run the previous writer until its outbox is empty, then upgrade';
    END IF;
END $$;

DROP TABLE outbox;

CREATE TABLE outbox (
    connector_id bigint      NOT NULL REFERENCES connectors (id),
    first_seq    bigint      NOT NULL,
    last_seq     bigint      NOT NULL,
    changes      bytea       NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, first_seq)
);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);
