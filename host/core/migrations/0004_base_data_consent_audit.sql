-- Community base data (人地事物组织房屋), consent and the audit log (identity issue, part 2).
-- Every base record sits at the finest tenant node known for it (usually a grid); staff
-- see the records of their role's subtree.

CREATE TABLE base_houses (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    building    TEXT NOT NULL,
    unit        TEXT NOT NULL,
    room        TEXT NOT NULL,
    address     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, building, unit, room)
);

CREATE TABLE base_households (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    house_id    TEXT REFERENCES base_houses(id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE base_residents (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    real_name     TEXT NOT NULL,
    -- GB 11643 citizen ID number (18 characters, checksum verified on import)
    id_number     TEXT NOT NULL UNIQUE,
    phone         TEXT NOT NULL,
    -- YYYY-MM-DD
    birth_date    TEXT NOT NULL,
    gender        TEXT NOT NULL,
    -- `|独居老人|低保|`: delimited so that one tag matches with LIKE on both databases
    tags          TEXT NOT NULL,
    house_id      TEXT REFERENCES base_houses(id),
    household_id  TEXT REFERENCES base_households(id),
    created_at    BIGINT NOT NULL
);
CREATE INDEX base_residents_tenant ON base_residents(tenant_id);
CREATE INDEX base_residents_phone ON base_residents(phone);

CREATE TABLE base_places (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    address     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE base_organisations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    contact     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- CSV imports: validated whole, written whole, progress readable while they run.
CREATE TABLE base_imports (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    -- validating | writing | done | rejected | failed
    status        TEXT NOT NULL,
    total_rows    BIGINT NOT NULL,
    processed     BIGINT NOT NULL,
    -- JSON list of {row, column, problem}
    problems      TEXT NOT NULL,
    started_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT
);

-- A resident's consent to give one subject (a plugin id, or `oidc:<client id>`) one
-- scope (a profile field). Revoking sets revoked_at; giving it again makes a new row.
CREATE TABLE consents (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    subject      TEXT NOT NULL,
    scope        TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX consents_account ON consents(account_id, subject);

-- Every read of a sensitive field, allowed or refused (PIPL art. 28/29).
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    at           BIGINT NOT NULL,
    -- `plugin:<id>`, `staff:<account id>` or `oidc:<client id>`
    actor        TEXT NOT NULL,
    -- the tenant node the read was made for
    tenant_id    TEXT NOT NULL,
    -- whose data: `account:<id>` or `resident:<id>`
    subject      TEXT NOT NULL,
    fields       TEXT NOT NULL,
    -- allowed | denied | consent-required
    outcome      TEXT NOT NULL,
    request_id   TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor);
