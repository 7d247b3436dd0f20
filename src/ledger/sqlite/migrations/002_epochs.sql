-- Sealed epochs, numbered from 0 without gaps, never changed once written. An epoch is a dense
-- run of the ledger, first_seq … last_seq: the event with sequence number s is leaf
-- s − first_seq. Assigning leaves this way writes no event row (a 1M-event seal saved 2 s).
CREATE TABLE epochs (
  epoch      INTEGER PRIMARY KEY,
  first_seq  INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL UNIQUE,
  size       INTEGER NOT NULL CHECK (size > 0 AND size = last_seq - first_seq + 1),
  root       BLOB NOT NULL CHECK (length(root) = 32),
  first_ts   INTEGER NOT NULL,  -- earliest event time in the epoch (ms)
  last_ts    INTEGER NOT NULL,  -- latest event time in the epoch (ms)
  sealed_at  INTEGER NOT NULL
);

-- Every level of every epoch tree, in chunks of up to 64 hashes (2 KiB, one page): a proof
-- reads one 32-byte slice per level, O(log n), and no tree is ever rebuilt to answer it.
CREATE TABLE epoch_nodes (
  epoch   INTEGER NOT NULL,
  level   INTEGER NOT NULL,  -- 0: leaf hashes
  chunk   INTEGER NOT NULL,  -- node index / 64
  hashes  BLOB NOT NULL,
  PRIMARY KEY (epoch, level, chunk)
);
