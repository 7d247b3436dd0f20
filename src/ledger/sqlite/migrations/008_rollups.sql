-- Usage rollups (docs/design.md "Usage rollups"): the aggregates of each sealed epoch, written in
-- the seal's own transaction. A sealed epoch never changes, so every row is exact forever; rows
-- only grow (an event that arrives late into an already rolled-up bucket is added when its own
-- epoch is sealed). Units are summed in three 18-bit slices, as usage sums them, so that no sum
-- can overflow SQLite's 64-bit integers. b*: the billable part (billable under the classification
-- in force at the event's time, which never changes once the event is stored).

-- Per 15-minute bucket and action: every time window of every zone in use is a whole number of
-- buckets (UTC offsets are multiples of 15 minutes), and there are only 96 a day per action.
CREATE TABLE usage_buckets (
  namespace  TEXT NOT NULL,
  bucket     INTEGER NOT NULL,  -- start of the bucket, ms since the Unix epoch
  action     TEXT NOT NULL,
  n          INTEGER NOT NULL,
  u0         INTEGER NOT NULL,
  u1         INTEGER NOT NULL,
  u2         INTEGER NOT NULL,
  bn         INTEGER NOT NULL,  -- billable events with units > 0
  b0         INTEGER NOT NULL,
  b1         INTEGER NOT NULL,
  b2         INTEGER NOT NULL,
  min_units  INTEGER NOT NULL,
  max_units  INTEGER NOT NULL,
  last_ts    INTEGER NOT NULL,  -- the latest event by event time, ties by ledger order
  last_seq   INTEGER NOT NULL,
  last_units INTEGER NOT NULL,
  PRIMARY KEY (namespace, bucket, action)
) WITHOUT ROWID;

-- Per UTC day and caller: usage by caller and distinct callers read whole days here.
CREATE TABLE usage_caller_days (
  namespace  TEXT NOT NULL,
  day        INTEGER NOT NULL,  -- start of the UTC day, ms
  caller     TEXT NOT NULL,
  n          INTEGER NOT NULL,
  u0         INTEGER NOT NULL,
  u1         INTEGER NOT NULL,
  u2         INTEGER NOT NULL,
  bn         INTEGER NOT NULL,
  b0         INTEGER NOT NULL,
  b1         INTEGER NOT NULL,
  b2         INTEGER NOT NULL,
  PRIMARY KEY (namespace, day, caller)
) WITHOUT ROWID;

-- How far the rollups reach: every epoch up to this one (-1: none yet). A ledger from before
-- rollups starts at -1 and is rolled up epoch by epoch when its sealer starts.
CREATE TABLE rollup_state (
  singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
  epoch      INTEGER NOT NULL CHECK (epoch >= -1)
);
INSERT INTO rollup_state (singleton, epoch) VALUES (1, -1);

-- Meters: named aggregations over leaf fields, per owner. A change is a new version from a
-- stated time; versions are never rewritten, so a past answer never changes without saying so.
CREATE TABLE meters (
  owner        TEXT NOT NULL,
  name         TEXT NOT NULL,
  version      INTEGER NOT NULL CHECK (version >= 1),
  aggregation  TEXT NOT NULL,
  actions      TEXT,              -- JSON array of actions; NULL: every action
  from_ms      INTEGER NOT NULL,  -- applies to events at or after this time
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (owner, name, version)
);
