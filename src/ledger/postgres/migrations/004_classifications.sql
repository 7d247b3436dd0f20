-- Billable classification history: each row is a policy in force from from_ms (event time) until
-- the next row's from_ms. Append-only: a change starts at a stated time and never rewrites a
-- period, so a stored event's classification never changes.
CREATE TABLE classifications (
  from_ms       BIGINT PRIMARY KEY CHECK (from_ms >= 0),
  billable      TEXT NOT NULL,         -- JSON array of actions, sorted
  non_billable  TEXT NOT NULL,         -- JSON array of actions, sorted
  other         TEXT NOT NULL CHECK (other IN ('billable', 'non_billable', 'info')),
  created_at    BIGINT NOT NULL
);
CREATE FUNCTION classifications_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'classification periods are append-only: add a new period instead';
END $$;
CREATE TRIGGER classifications_append_only BEFORE UPDATE OR DELETE ON classifications
  FOR EACH ROW EXECUTE FUNCTION classifications_append_only();
