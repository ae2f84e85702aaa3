-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, ids made in Rust,
-- times as Unix milliseconds, JSON as TEXT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX tenants_parent ON tenants(parent_id);

-- Vendor signing keys a county trusts.
CREATE TABLE vendor_keys (
    county_id   TEXT NOT NULL REFERENCES tenants(id),
    key_id      TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (county_id, key_id)
);

-- Uploaded, verified packages. The archive is kept (base64) so that every replica and
-- every restart can re-verify and re-extract it.
CREATE TABLE packages (
    plugin_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    county_id   TEXT NOT NULL REFERENCES tenants(id),
    manifest    TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    archive     TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

CREATE TABLE installations (
    id               TEXT PRIMARY KEY,
    plugin_id        TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    route_prefix     TEXT NOT NULL,
    version          TEXT NOT NULL,
    previous_version TEXT,
    grants           TEXT NOT NULL,
    limits           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (plugin_id, tenant_id)
);

-- What operators did to installations, newest last.
CREATE TABLE installation_history (
    id              TEXT PRIMARY KEY,
    installation_id TEXT NOT NULL,
    plugin_id       TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    action          TEXT NOT NULL,
    from_version    TEXT,
    to_version      TEXT,
    at              BIGINT NOT NULL
);

-- The data capability: documents partitioned by (plugin, tenant node of the installation).
CREATE TABLE plugin_documents (
    plugin_id   TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    doc_key     TEXT NOT NULL,
    body        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, tenant_id, collection, doc_key)
);

-- Values of the fields a manifest declares as indexed, as JSON text.
CREATE TABLE plugin_document_index (
    plugin_id   TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    field       TEXT NOT NULL,
    field_value TEXT NOT NULL,
    doc_key     TEXT NOT NULL,
    PRIMARY KEY (plugin_id, tenant_id, collection, field, field_value, doc_key)
);
CREATE INDEX plugin_document_index_doc ON plugin_document_index(plugin_id, tenant_id, collection, doc_key);
