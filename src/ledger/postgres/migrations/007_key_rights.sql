-- Key rights (docs/design.md "Key rights"): a JSON array of right names in the order record,
-- read, correct, admin. Every key made before rights existed keeps exactly what it could do
-- then, record and read: the default fills the existing rows (and a row an instance of an older
-- build writes during a rolling upgrade). A change of rights is announced like any key change
-- (the UPDATE trigger of migration 005), so kept keys are read again.
ALTER TABLE api_keys ADD COLUMN rights TEXT NOT NULL DEFAULT '["record","read"]';
