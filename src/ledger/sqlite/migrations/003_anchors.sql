-- Anchoring. An attempt is written with its transaction digest before the transaction is sent,
-- so that after a crash between execution and recording the digest is still known.
CREATE TABLE anchor_attempts (
  tx_digest    TEXT PRIMARY KEY,
  first_epoch  INTEGER NOT NULL,
  last_epoch   INTEGER NOT NULL,
  created_at   INTEGER NOT NULL
);

-- An epoch whose root is on chain, with where to find it.
CREATE TABLE anchors (
  epoch        INTEGER PRIMARY KEY REFERENCES epochs (epoch),
  network      TEXT NOT NULL,
  package_id   TEXT NOT NULL,
  registry_id  TEXT NOT NULL,
  tx_digest    TEXT,               -- null only when found on chain with no attempt of ours recorded
  checkpoint   TEXT,
  anchored_at  INTEGER NOT NULL
);
