-- Sensitive fields sealed at rest (issue 21). Sealed values are text
-- (`enc1:{data key}:{base64}`), so the columns keep their types; what equality and
-- uniqueness used to read from the clear value they now read from a blind index beside it.
-- The host seals the values an older database holds at its first start after this.

-- Data keys, each wrapped by the master key (which never enters the database). One
-- current key per purpose; retired ones open what they sealed until a rotation is done.
CREATE TABLE data_keys (
    id          TEXT PRIMARY KEY,
    -- fields | index
    purpose     TEXT NOT NULL,
    -- aes | gm
    suite       TEXT NOT NULL,
    wrapped     TEXT NOT NULL,
    -- the fingerprint of the master key that wrapped it
    master_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
CREATE UNIQUE INDEX data_keys_current ON data_keys(purpose) WHERE retired_at IS NULL;

ALTER TABLE accounts ADD COLUMN phone_bidx TEXT;
CREATE UNIQUE INDEX accounts_phone_bidx ON accounts(phone_bidx);

ALTER TABLE base_residents ADD COLUMN id_number_bidx TEXT;
ALTER TABLE base_residents ADD COLUMN phone_bidx TEXT;
CREATE UNIQUE INDEX base_residents_id_number_bidx ON base_residents(id_number_bidx);
CREATE INDEX base_residents_phone_bidx ON base_residents(phone_bidx);
DROP INDEX base_residents_phone;

-- Login codes are kept under the phone's blind index from now on; the few minutes of
-- codes standing at the upgrade are dropped.
DELETE FROM sms_codes;
