-- API keys: only a SHA-256 of the key is kept; the key itself is shown once, at creation.
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,          -- public key id, also the key's prefix
  owner       TEXT NOT NULL,             -- who is billed; never taken from a request body
  namespaces  TEXT NOT NULL,             -- JSON array of namespace patterns ('*' matches any run)
  key_hash    BYTEA NOT NULL CHECK (length(key_hash) = 32),  -- SHA-256 of the whole key
  created_at  BIGINT NOT NULL,
  revoked_at  BIGINT
);

-- The ledger. id is fixed at ingest (the API's id) but ids from concurrent writers commit out of
-- order, so id is not the ledger order: seq is, assigned by the leader when the event is sealed
-- (null until then). Leaves of an epoch are its events in ascending seq.
CREATE TABLE events (
  id              BIGSERIAL PRIMARY KEY,
  seq             BIGINT UNIQUE CHECK (seq >= 1),
  namespace       TEXT NOT NULL,
  request_id      TEXT NOT NULL,
  owner           TEXT NOT NULL,
  key_id          TEXT NOT NULL,
  caller          TEXT NOT NULL,
  action          TEXT NOT NULL,
  units           BIGINT NOT NULL CHECK (units BETWEEN 0 AND 9007199254740991),  -- 2^53−1: exact in JSON
  artifact_digest BYTEA CHECK (artifact_digest IS NULL OR length(artifact_digest) = 32),
  ts              BIGINT NOT NULL,       -- event time, ms since the Unix epoch (leaf ts_ms)
  ts_explicit     BOOLEAN NOT NULL,      -- true: ts came from the client; false: defaulted to received_at
  received_at     BIGINT NOT NULL,
  source          TEXT,
  metadata        TEXT,                  -- canonical JSON, credentials already removed
  leaf_hash       BYTEA NOT NULL CHECK (length(leaf_hash) = 32)  -- leaf v1, computed once at ingest
);

-- Idempotency, with no expiry: a request id counts once in its namespace, forever.
CREATE UNIQUE INDEX events_namespace_request ON events (namespace, request_id);
-- Usage queries and receipt pages: never a full scan. id last, so keyset paging on (ts, id)
-- is an index range too.
CREATE INDEX events_namespace_ts ON events (namespace, ts, id);
-- The unsealed queue: small however large the ledger grows.
CREATE INDEX events_unsealed ON events (id) WHERE seq IS NULL;

-- Fencing: the leader bumps term when it takes office; every leader write checks it first.
CREATE TABLE leadership (
  singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
  term       BIGINT NOT NULL,
  holder     TEXT,
  since      TIMESTAMPTZ
);
INSERT INTO leadership (singleton, term) VALUES (true, 0);
