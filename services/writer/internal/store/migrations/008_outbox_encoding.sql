-- An outbox row's changes may be S2-compressed: their JSON shrinks several
-- times, and every byte saved is a byte PostgreSQL writes to the table and
-- its log, and the relay reads, less. encoding is '' for a protobuf
-- ChangeBatch as is, 's2' for its S2 block encoding.
--
-- A relay older than this column cannot read compressed rows: it retries
-- them, losing nothing, until it is upgraded too.
ALTER TABLE outbox ADD COLUMN encoding text NOT NULL DEFAULT '';
