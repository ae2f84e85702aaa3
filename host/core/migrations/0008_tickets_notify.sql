-- Work orders (工单) with their trace, the in-app inbox, and the map from the ids plugins
-- know users by back to accounts (so a plugin can notify a user it met).

CREATE TABLE ticket_categories (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    time_limit_minutes  BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);
INSERT INTO ticket_categories (id, name, time_limit_minutes, created_at) VALUES
    ('repair', '物业维修', 1440, 0),
    ('safety', '安全隐患', 120, 0),
    ('elderly-care', '养老服务', 60, 0),
    ('emergency', '紧急求助', 15, 0),
    ('environment', '环境卫生', 1440, 0),
    ('dispute', '邻里纠纷', 2880, 0),
    ('device-alarm', '设备告警', 60, 0),
    ('other', '其他', 2880, 0);

CREATE TABLE tickets (
    id               TEXT PRIMARY KEY,
    -- the grid or community it is about, and the node responsible now
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    level_tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    category_id      TEXT NOT NULL REFERENCES ticket_categories(id),
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    location_label   TEXT NOT NULL,
    -- resident | staff | plugin | alarm
    source           TEXT NOT NULL,
    -- the account that reported it (a resident rates it), if any
    reporter_account TEXT,
    -- the installation that created it, if a plugin did
    installation_id  TEXT,
    alarm_id         TEXT,
    -- open | dispatched | accepted | resolved | closed
    status           TEXT NOT NULL,
    assignee_account TEXT,
    assignee_name    TEXT,
    due_at           BIGINT NOT NULL,
    escalations      BIGINT NOT NULL,
    supervised       BIGINT NOT NULL,
    rating           BIGINT,
    feedback         TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX tickets_tenant ON tickets(tenant_id, created_at);
CREATE INDEX tickets_due ON tickets(status, due_at);
CREATE INDEX tickets_installation ON tickets(installation_id, created_at);
CREATE INDEX tickets_reporter ON tickets(reporter_account, created_at);

CREATE TABLE ticket_steps (
    ticket_id  TEXT NOT NULL REFERENCES tickets(id),
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    note       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    link        TEXT,
    -- `ticket:<id>`, `plugin:<id>`, …
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT
);
CREATE INDEX notifications_account ON notifications(account_id, created_at);

CREATE TABLE pairwise_ids (
    vendor      TEXT NOT NULL,
    pairwise_id TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    PRIMARY KEY (vendor, pairwise_id)
);
