-- Anchoring. An attempt is written with its transaction digest before the transaction is sent,
-- so that after a crash between execution and recording the digest is still known.
CREATE TABLE anchor_attempts (
  tx_digest    TEXT PRIMARY KEY,
  first_epoch  BIGINT NOT NULL,
  last_epoch   BIGINT NOT NULL,
  created_at   BIGINT NOT NULL
);
CREATE INDEX anchor_attempts_range ON anchor_attempts (first_epoch, last_epoch);

-- An epoch whose root is on chain, with where to find it.
CREATE TABLE anchors (
  epoch        BIGINT PRIMARY KEY REFERENCES epochs (epoch),
  network      TEXT NOT NULL,
  package_id   TEXT NOT NULL,
  registry_id  TEXT NOT NULL,
  tx_digest    TEXT,               -- null only when found on chain with no attempt of ours recorded
  checkpoint   TEXT,
  anchored_at  BIGINT NOT NULL
);
