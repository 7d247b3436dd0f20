-- Signed checkpoints of the epoch log (C2SP tlog-checkpoint), one per log size, written in the
-- seal's fenced transaction. The note is the signed text as served; the log key is never stored.
CREATE TABLE checkpoints (
  size       BIGINT PRIMARY KEY CHECK (size > 0),
  root       BYTEA NOT NULL CHECK (length(root) = 32),
  note       TEXT NOT NULL,
  signed_at  BIGINT NOT NULL
);
