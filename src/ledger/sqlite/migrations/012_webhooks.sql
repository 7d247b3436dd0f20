-- Webhooks (issue 25): where an owner's limit alerts are sent, an outbox of the messages to send,
-- and every delivery attempt. The secret (whsec_…) is kept because each message is signed with
-- it (Standard Webhooks); it is returned once, at creation, and by no read.
CREATE TABLE webhooks (
  id          TEXT PRIMARY KEY,
  owner       TEXT NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
  url         TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
  namespaces  TEXT NOT NULL,
  secret      TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_owner ON webhooks (owner, created_at);
-- One row per alert ever raised: the key (limit, threshold, period) makes it once only.
CREATE TABLE webhook_alerts (
  key         TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 512),
  owner       TEXT NOT NULL,
  namespace   TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  -- how many messages it was queued as (0: the owner had no webhook for the namespace)
  messages    INTEGER NOT NULL
);
-- The outbox: one message per (webhook, alert), written in the alert's transaction. Its id is the
-- webhook-id header, the same on every attempt, so receivers deduplicate on it.
CREATE TABLE webhook_messages (
  id           TEXT PRIMARY KEY,
  webhook_id   TEXT NOT NULL,
  alert_key    TEXT NOT NULL,
  owner        TEXT NOT NULL,
  payload      TEXT NOT NULL CHECK (length(payload) BETWEEN 2 AND 65536),
  created_at   INTEGER NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  -- when the next attempt is due; NULL once delivered or given up
  next_at      INTEGER,
  delivered_at INTEGER,
  gave_up_at   INTEGER,
  UNIQUE (webhook_id, alert_key)
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_at) WHERE next_at IS NOT NULL;
-- Every attempt, in order per message (the number makes a repeated record harmless).
CREATE TABLE webhook_attempts (
  message_id  TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  webhook_id  TEXT NOT NULL,
  at          INTEGER NOT NULL,
  ms          INTEGER NOT NULL,
  status      INTEGER,
  error       TEXT,
  outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'gave_up')),
  PRIMARY KEY (message_id, attempt)
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, at);
