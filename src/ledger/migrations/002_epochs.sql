-- Sealed epochs. Epochs cover consecutive runs of the ledger (first_seq … last_seq), are
-- numbered from 0 without gaps, and are never changed once written.
CREATE TABLE epochs (
  epoch      INTEGER PRIMARY KEY,
  first_seq  INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL,
  size       INTEGER NOT NULL CHECK (size > 0),
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
