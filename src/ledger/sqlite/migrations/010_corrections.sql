-- Corrections (docs/design.md "Leaf (version 2)"): a void or an amendment is an event row of its
-- own, with a leaf v2; the version it replaces stays untouched. kind: 0 an ordinary event (leaf v1),
-- 1 void, 2 amend. corrects_id: the id of the version it replaces; chain_id: the original's id.
-- prev_*: the replaced version's caller, action and units, so totals net of corrections stay a sum
-- over rows (each correction takes the replaced version's contribution back at the same ts).
ALTER TABLE events ADD COLUMN kind INTEGER NOT NULL DEFAULT 0 CHECK (kind IN (0, 1, 2));
ALTER TABLE events ADD COLUMN corrects_id INTEGER;
ALTER TABLE events ADD COLUMN chain_id INTEGER;
ALTER TABLE events ADD COLUMN prev_caller TEXT;
ALTER TABLE events ADD COLUMN prev_action TEXT;
ALTER TABLE events ADD COLUMN prev_units INTEGER;

-- A version is corrected at most once: of two concurrent corrections of the same head, one wins.
CREATE UNIQUE INDEX events_corrects ON events (corrects_id) WHERE corrects_id IS NOT NULL;
-- An event's versions, in id order.
CREATE INDEX events_chain ON events (chain_id) WHERE chain_id IS NOT NULL;
-- Corrections in a range (their ts is the original's): the take-backs read only these.
CREATE INDEX events_corrections_ts ON events (namespace, ts) WHERE kind <> 0;
