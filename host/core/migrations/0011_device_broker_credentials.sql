-- Devices sign in to the broker with their id and secret (issue 21). Beside the SHA-256
-- the host checks, each device keeps its secret as Mosquitto's password file wants it
-- (`$7$…`, PBKDF2-SHA512), so `linli devices broker-auth` can write that file without the
-- secret itself. Devices registered before have none until their secret is rotated.
ALTER TABLE devices ADD COLUMN broker_hash TEXT;
