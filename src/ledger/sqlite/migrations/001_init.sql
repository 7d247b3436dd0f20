-- API keys: only a SHA-256 of the key is kept; the key itself is shown once, at creation.
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,          -- public key id, also the key's prefix
  owner       TEXT NOT NULL,             -- who is billed; never taken from a request body
  namespaces  TEXT NOT NULL,             -- JSON array of namespace patterns ('*' matches any run)
  key_hash    BLOB NOT NULL,             -- SHA-256 of the whole key
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);

-- The ledger. seq is the ledger order: leaves of an epoch are taken in ascending seq.
-- Events are never deleted or updated, so seq (the rowid) is dense.
CREATE TABLE events (
  seq             INTEGER PRIMARY KEY,
  namespace       TEXT NOT NULL,
  request_id      TEXT NOT NULL,
  owner           TEXT NOT NULL,
  key_id          TEXT NOT NULL,
  caller          TEXT NOT NULL,
  action          TEXT NOT NULL,
  units           INTEGER NOT NULL CHECK (units >= 0),
  artifact_digest BLOB CHECK (artifact_digest IS NULL OR length(artifact_digest) = 32),
  ts              INTEGER NOT NULL,      -- event time, ms since the Unix epoch (leaf ts_ms)
  ts_explicit     INTEGER NOT NULL,      -- 1: ts came from the client; 0: defaulted to received_at
  received_at     INTEGER NOT NULL,
  source          TEXT,
  metadata        TEXT,                  -- canonical JSON, credentials already removed
  leaf_hash       BLOB NOT NULL CHECK (length(leaf_hash) = 32)  -- leaf v1, computed once at ingest
);

-- Idempotency, with no expiry: a request id counts once in its namespace, forever.
CREATE UNIQUE INDEX events_namespace_request ON events (namespace, request_id);
-- Usage queries: never a full scan.
CREATE INDEX events_namespace_ts ON events (namespace, ts);
