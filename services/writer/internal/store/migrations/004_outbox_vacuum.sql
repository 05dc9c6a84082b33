-- Every change passes through the outbox and is deleted once published: the
-- table stays small but churns. Vacuum it after every 10,000 dead rows rather
-- than after a fifth of a table that is nearly always empty.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
                        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);
