-- Requests to plugins per day and request tenant (the community a resident came from,
-- or the node a staff member opened), for the dashboards' plugin-usage figures. Counted
-- in memory and added here every few seconds.
CREATE TABLE plugin_usage (
    plugin_id  TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    -- YYYY-MM-DD, China Standard Time
    day        TEXT NOT NULL,
    requests   BIGINT NOT NULL,
    errors     BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, tenant_id, day)
);

-- Who changed an installation: `platform` (the admin token), `setup`, or a staff member
-- as `NAME (staff:ACCOUNT)`. Rows from before the console have none.
ALTER TABLE installation_history ADD COLUMN actor TEXT;

-- Work only one replica may do at a time (e.g. `device-ingest:PREFIX`): the holder renews
-- its lease; when it stops renewing, another replica takes over after `expires_at`.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
