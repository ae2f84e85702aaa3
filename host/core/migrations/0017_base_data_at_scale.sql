-- Base data at county scale (issue 26): what a county's dashboard and the totals of its
-- lists need is kept on write instead of counted from every resident on read.

-- Residents per tenant node and birth year (the year is kept clear beside the sealed birth
-- date); `lives_alone` counts those tagged 独居老人. The import adds to it in the transaction
-- that writes the residents.
CREATE TABLE base_resident_counts (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    birth_year   INTEGER NOT NULL,
    residents    BIGINT NOT NULL,
    lives_alone  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, birth_year)
);
INSERT INTO base_resident_counts (tenant_id, birth_year, residents, lives_alone)
    SELECT tenant_id, COALESCE(birth_year, 0), COUNT(*), SUM(CASE WHEN tags LIKE '%|独居老人|%' THEN 1 ELSE 0 END)
    FROM base_residents
    GROUP BY tenant_id, COALESCE(birth_year, 0);

-- One counter per kind of data whose figures replicas keep in memory: every write of it adds
-- one in its transaction, so a replica sees that what it keeps is out of date.
CREATE TABLE change_counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('base_residents', 0);

-- A grid's or a community's residents are read in id order within their tenant nodes.
DROP INDEX base_residents_tenant;
CREATE INDEX base_residents_tenant_id ON base_residents(tenant_id, id);

-- Residents by tag, so that a county's list of one tag reads that tag's residents only (the
-- tags column is `|a|b|`, matched with LIKE, which no index serves). Written by the import
-- beside the resident; `birth_year` is the resident's, for the age bounds.
CREATE TABLE base_resident_tags (
    tag          TEXT NOT NULL,
    resident_id  TEXT NOT NULL REFERENCES base_residents(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    birth_year   INTEGER NOT NULL,
    PRIMARY KEY (tag, resident_id)
);
CREATE INDEX base_resident_tags_tenant ON base_resident_tags(tag, tenant_id, resident_id);

-- Work the host does once, at a start, on what an older version left (neither database
-- splits `|a|b|` into rows the same way, so the tags of existing residents are indexed from
-- Rust): a row here when it is done. A database without tagged residents has nothing to do.
CREATE TABLE data_passes (
    name         TEXT PRIMARY KEY,
    finished_at  BIGINT NOT NULL
);
INSERT INTO data_passes (name, finished_at)
    SELECT 'base_resident_tags', 0 WHERE NOT EXISTS (SELECT 1 FROM base_residents WHERE tags <> '');
