-- Sealed epochs, numbered from 0 without gaps, never changed once written. An epoch is a dense
-- run of the ledger, first_seq … last_seq: the event with sequence number s is leaf s − first_seq.
CREATE TABLE epochs (
  epoch      BIGINT PRIMARY KEY CHECK (epoch >= 0),
  first_seq  BIGINT NOT NULL,
  last_seq   BIGINT NOT NULL UNIQUE,
  size       BIGINT NOT NULL CHECK (size > 0 AND size = last_seq - first_seq + 1),
  root       BYTEA NOT NULL CHECK (length(root) = 32),
  first_ts   BIGINT NOT NULL,  -- earliest event time in the epoch (ms)
  last_ts    BIGINT NOT NULL,  -- latest event time in the epoch (ms)
  sealed_at  BIGINT NOT NULL
);

-- Every level of every epoch tree, in chunks of up to 64 hashes (2 KiB): a proof reads one
-- 32-byte slice per level, O(log n), and no tree is ever rebuilt to answer it.
CREATE TABLE epoch_nodes (
  epoch   BIGINT NOT NULL REFERENCES epochs (epoch) DEFERRABLE INITIALLY DEFERRED,
  level   INTEGER NOT NULL,  -- 0: leaf hashes
  chunk   INTEGER NOT NULL,  -- node index / 64
  hashes  BYTEA NOT NULL CHECK (length(hashes) BETWEEN 32 AND 2048 AND length(hashes) % 32 = 0),
  PRIMARY KEY (epoch, level, chunk)
);
