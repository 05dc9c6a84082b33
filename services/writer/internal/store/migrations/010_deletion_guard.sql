-- The accidental-deletion guard: a completed run may hold the deletion of the
-- users and entitlements it did not see (deletions = 'held', with their
-- counts) until an operator confirms them (deletions = 'confirmed').
ALTER TABLE runs
    ADD COLUMN held_users        bigint NOT NULL DEFAULT 0,
    ADD COLUMN held_entitlements bigint NOT NULL DEFAULT 0,
    ADD COLUMN deletions         text   NOT NULL DEFAULT '';
