-- The manual path (issue 16): an item may wait for its user to register a passkey themselves
-- with a Temporary Access Pass Behalf mailed them. The pass's Graph id and lifetime are kept on
-- the item (never the pass), written in the commit that moves it to 'waiting_for_user'.
ALTER TABLE provisioning_items DROP CONSTRAINT provisioning_items_state_check;
ALTER TABLE provisioning_items ADD CONSTRAINT provisioning_items_state_check
    CHECK (state IN ('pending', 'options_fetched', 'credential_created', 'waiting_for_user', 'registered', 'failed', 'skipped'));
ALTER TABLE provisioning_items ADD COLUMN pass_method_id TEXT;
ALTER TABLE provisioning_items ADD COLUMN pass_issued_at BIGINT;
ALTER TABLE provisioning_items ADD COLUMN pass_expires_at BIGINT;
