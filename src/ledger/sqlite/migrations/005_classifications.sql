-- Billable classification history: each row is a policy in force from from_ms (event time) until
-- the next row's from_ms. Append-only: a change starts at a stated time and never rewrites a
-- period, so a stored event's classification never changes.
CREATE TABLE classifications (
  from_ms       INTEGER PRIMARY KEY CHECK (from_ms >= 0),
  billable      TEXT NOT NULL,         -- JSON array of actions, sorted
  non_billable  TEXT NOT NULL,         -- JSON array of actions, sorted
  other         TEXT NOT NULL CHECK (other IN ('billable', 'non_billable', 'info')),
  created_at    INTEGER NOT NULL
);
CREATE TRIGGER classifications_no_update BEFORE UPDATE ON classifications
BEGIN SELECT RAISE(ABORT, 'classification periods are append-only: add a new period instead'); END;
CREATE TRIGGER classifications_no_delete BEFORE DELETE ON classifications
BEGIN SELECT RAISE(ABORT, 'classification periods are append-only: add a new period instead'); END;
