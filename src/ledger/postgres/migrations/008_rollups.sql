-- Usage rollups (docs/design.md "Usage rollups"): the aggregates of each sealed epoch, written in
-- the seal's own transaction. A sealed epoch never changes, so every row is exact forever; rows
-- only grow (an event that arrives late into an already rolled-up bucket is added when its own
-- epoch is sealed). Units sums are numeric: exact at any volume. b*: the billable part (billable under the classification
-- in force at the event's time, which never changes once the event is stored).

-- Per 15-minute bucket and action: every time window of every zone in use is a whole number of
-- buckets (UTC offsets are multiples of 15 minutes), and there are only 96 a day per action.
CREATE TABLE usage_buckets (
  namespace  TEXT COLLATE "C" NOT NULL,
  bucket     BIGINT NOT NULL,  -- start of the bucket, ms since the Unix epoch
  action     TEXT COLLATE "C" NOT NULL,
  n          BIGINT NOT NULL,
  u          NUMERIC NOT NULL,
  bn         BIGINT NOT NULL,  -- billable events with units > 0
  bu         NUMERIC NOT NULL,
  min_units  BIGINT NOT NULL,
  max_units  BIGINT NOT NULL,
  last_ts    BIGINT NOT NULL,  -- the latest event by event time, ties by ledger order
  last_seq   BIGINT NOT NULL,
  last_units BIGINT NOT NULL,
  PRIMARY KEY (namespace, bucket, action)
);

-- Per UTC day and caller: usage by caller and distinct callers read whole days here.
CREATE TABLE usage_caller_days (
  namespace  TEXT COLLATE "C" NOT NULL,
  day        BIGINT NOT NULL,  -- start of the UTC day, ms
  caller     TEXT COLLATE "C" NOT NULL,
  n          BIGINT NOT NULL,
  u          NUMERIC NOT NULL,
  bn         BIGINT NOT NULL,
  bu         NUMERIC NOT NULL,
  PRIMARY KEY (namespace, day, caller)
);

-- How far the rollups reach: every epoch up to this one (-1: none yet). A ledger from before
-- rollups starts at -1 and is rolled up epoch by epoch when its sealer starts.
CREATE TABLE rollup_state (
  singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
  epoch      BIGINT NOT NULL CHECK (epoch >= -1)
);
INSERT INTO rollup_state (singleton, epoch) VALUES (true, -1);

-- Meters: named aggregations over leaf fields, per owner. A change is a new version from a
-- stated time; versions are never rewritten, so a past answer never changes without saying so.
CREATE TABLE meters (
  owner        TEXT NOT NULL,
  name         TEXT NOT NULL,
  version      INTEGER NOT NULL CHECK (version >= 1),
  aggregation  TEXT NOT NULL,
  actions      TEXT,              -- JSON array of actions; NULL: every action
  from_ms      BIGINT NOT NULL,   -- applies to events at or after this time
  created_at   BIGINT NOT NULL,
  PRIMARY KEY (owner, name, version)
);
