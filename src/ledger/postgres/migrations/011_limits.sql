-- Limits (issue 25, docs/api.md "Limits"): a quota of an owner over a namespace's usage in a
-- period (a day or month of a time zone, or all time), checked before the work runs. Versioned
-- like meters: a change (deletion included) is a new row applying from a stated time; rows are
-- never rewritten, so what a check answered can always be explained afterwards.
CREATE TABLE limits (
  owner       TEXT NOT NULL,
  id          TEXT NOT NULL,
  version     INTEGER NOT NULL CHECK (version >= 1),
  namespace   TEXT NOT NULL,
  meter       TEXT,              -- the meter counted (its sum or count), or NULL: actions + measure
  actions     TEXT,              -- JSON array of actions; NULL: every action (or the meter's)
  measure     TEXT NOT NULL CHECK (measure IN ('units', 'events', 'meter')),
  period      TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
  tz          TEXT NOT NULL,
  hard        BIGINT,            -- NULL: no hard limit (alerts only)
  soft        TEXT,              -- JSON array of percents of hard, or NULL
  soft_units  TEXT,              -- JSON array of absolute thresholds, or NULL
  deleted     BOOLEAN NOT NULL DEFAULT false,
  from_ms     BIGINT NOT NULL,   -- applies from this time
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (owner, id, version)
);
-- A check reads the limits of one owner and namespace.
CREATE INDEX limits_namespace ON limits (owner, namespace);
