-- Devices, telemetry, alarm rules and alarms; the outbox of platform events delivered to
-- plugins.

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    -- the grid or community the device belongs to (from its location)
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    device_type    TEXT NOT NULL,
    model          TEXT NOT NULL,
    vendor         TEXT NOT NULL,
    name           TEXT NOT NULL,
    -- `house`, `place` or `grid`, and the id of that house, place or grid
    location_kind  TEXT NOT NULL,
    location_id    TEXT NOT NULL,
    -- for people: the address or name at registration
    location_label TEXT NOT NULL,
    -- sha256 of the device's HTTP ingest secret (hex)
    secret_sha256  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT
);
CREATE INDEX devices_tenant ON devices(tenant_id, device_type);

CREATE TABLE telemetry (
    device_id    TEXT NOT NULL,
    -- device time (the message's `ts`, else when it arrived), unix ms
    at           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    -- the message's JSON object
    payload      TEXT NOT NULL
);
CREATE INDEX telemetry_device_at ON telemetry(device_id, at);
CREATE INDEX telemetry_received ON telemetry(received_at);

CREATE TABLE device_commands (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    -- who sent it: `admin` or `plugin:<id>`
    sent_by     TEXT NOT NULL,
    command     TEXT NOT NULL,
    -- `sent`, `acknowledged` or `timed-out`
    status      TEXT NOT NULL,
    ack         TEXT,
    sent_at     BIGINT NOT NULL,
    answered_at BIGINT
);
CREATE INDEX device_commands_device ON device_commands(device_id, sent_at);

CREATE TABLE alarm_rules (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    -- the rule as JSON (RuleSpec); the columns below are copies for queries
    spec        TEXT NOT NULL,
    device_type TEXT,
    device_id   TEXT,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE alarms (
    id              TEXT PRIMARY KEY,
    rule_id         TEXT NOT NULL,
    rule_name       TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    device_type     TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    severity        TEXT NOT NULL,
    -- `active`, `acknowledged` or `cleared`
    status          TEXT NOT NULL,
    value           DOUBLE PRECISION NOT NULL,
    -- when the condition began (device time), when the alarm was raised
    since           BIGINT NOT NULL,
    raised_at       BIGINT NOT NULL,
    repeats         BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    cleared_at      BIGINT,
    -- the device's location at the time (JSON)
    location        TEXT NOT NULL
);
CREATE INDEX alarms_tenant ON alarms(tenant_id, raised_at);
CREATE INDEX alarms_open ON alarms(status, rule_id, device_id);

-- One row: the last sequence number handed out. Publishing locks it until commit, so
-- events are numbered in commit order.
CREATE TABLE event_counter (
    id       INTEGER PRIMARY KEY,
    next_seq BIGINT NOT NULL
);
INSERT INTO event_counter (id, next_seq) VALUES (1, 0);

CREATE TABLE platform_events (
    seq         BIGINT PRIMARY KEY,
    kind        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE event_deliveries (
    installation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    -- `pending`, `delivered` or `dead`
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- a dispatcher working on it holds it until then
    lease_until     BIGINT NOT NULL,
    last_error      TEXT,
    delivered_at    BIGINT,
    PRIMARY KEY (installation_id, seq)
);
CREATE INDEX event_deliveries_pending ON event_deliveries(status, installation_id, seq);

CREATE TABLE event_schedules (
    installation_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    next_at         BIGINT NOT NULL,
    PRIMARY KEY (installation_id, name)
);
