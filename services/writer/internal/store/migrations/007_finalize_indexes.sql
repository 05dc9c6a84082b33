-- Indexes that spare a run's completion full scans of the records table.
-- Tombstones past their time to live are purged at every completion; they
-- are few among many live records. The index names no column that marking a
-- record as seen changes (seen_at, version), so that update stays heap-only.
CREATE INDEX records_tombstones ON records (connector_id) WHERE deleted;

-- An outbox row holds a transaction's changes, up to a few megabytes, and
-- lives for milliseconds: stored out of line without compression, it is
-- written and read without compressing it first.
ALTER TABLE outbox ALTER COLUMN changes SET STORAGE EXTERNAL;
