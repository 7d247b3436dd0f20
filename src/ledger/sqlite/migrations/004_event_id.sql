-- The public event id under its own name, as on PostgreSQL (where seq is assigned at seal):
-- on SQLite one writer commits in order, so the id is the ledger position itself.
ALTER TABLE events ADD COLUMN id INTEGER GENERATED ALWAYS AS (seq) VIRTUAL;
