-- Key rights (docs/design.md "Key rights"): a JSON array of right names in the order record,
-- read, correct, admin. Every key made before rights existed keeps exactly what it could do
-- then, record and read: the default fills the existing rows (and a row written without it).
ALTER TABLE api_keys ADD COLUMN rights TEXT NOT NULL DEFAULT '["record","read"]';
