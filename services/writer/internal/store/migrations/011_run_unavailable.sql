-- The listings a run's Zoom account does not offer on its plan (a free
-- account has neither groups nor roles): the run completed without them and
-- deleted none of their entitlements, and its sync.completed and zoomctl
-- status name them.
ALTER TABLE runs ADD COLUMN unavailable text[] NOT NULL DEFAULT '{}';
