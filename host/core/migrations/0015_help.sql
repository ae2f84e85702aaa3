-- 一键求助 (issue 23). A resident's emergency contacts belong to her base record (人), so
-- staff can record them for an elder without a phone and she can edit her own in the app;
-- the list is sealed (RESIDENT_CONTACTS). A duty line (值班电话) may be set at any node of the
-- tenant tree; a resident's call goes to the nearest one above her home.
CREATE TABLE resident_contacts (
    resident_id TEXT PRIMARY KEY REFERENCES base_residents(id),
    contacts    TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE duty_lines (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    phone      TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
