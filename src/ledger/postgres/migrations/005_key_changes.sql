-- Every change to an API key (a revocation by `receipts keys revoke`, or an UPDATE, DELETE or
-- TRUNCATE by hand) is announced on the channel sui_receipts_keys, delivered when it commits:
-- instances that keep keys in memory drop their copy then. The payload is the key id, or '*'.
CREATE FUNCTION sui_receipts_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('sui_receipts_keys', '*');
  ELSE
    PERFORM pg_notify('sui_receipts_keys', OLD.id);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION sui_receipts_key_changed();
CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION sui_receipts_key_changed();
