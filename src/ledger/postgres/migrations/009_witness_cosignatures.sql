-- Witness cosignatures (C2SP tlog-cosignature) of the epoch log's checkpoints: one per checkpoint
-- size and witness key, as the witness returned it, verified before it is stored. Served appended
-- to the checkpoint's note. The witness is named by its cosigner verifier key (type 0x04 vkey).
CREATE TABLE witness_cosignatures (
  size         BIGINT NOT NULL REFERENCES checkpoints (size),
  witness      TEXT NOT NULL CHECK (length(witness) BETWEEN 1 AND 1024),
  line         TEXT NOT NULL CHECK (length(line) BETWEEN 1 AND 2048),
  cosigned_at  BIGINT NOT NULL,
  received_at  BIGINT NOT NULL,
  PRIMARY KEY (size, witness)
);
-- Where a witness stands: the largest size it cosigned.
CREATE INDEX witness_cosignatures_by_witness ON witness_cosignatures (witness, size);
