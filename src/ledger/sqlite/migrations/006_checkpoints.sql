-- Signed checkpoints of the epoch log (C2SP tlog-checkpoint), one per log size, written in the
-- seal's transaction. The note is the signed text as served; the log key itself is never stored.
CREATE TABLE checkpoints (
  size       INTEGER PRIMARY KEY CHECK (size > 0),
  root       BLOB NOT NULL CHECK (length(root) = 32),
  note       TEXT NOT NULL,
  signed_at  INTEGER NOT NULL
);
