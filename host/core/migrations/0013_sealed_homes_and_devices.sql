-- Where people live and what happens there, sealed too (issue 21): a house's room and
-- address, a household's name, a device's location label, an alarm's location, platform
-- events' payloads, telemetry, device commands and their answers. A house is found by its
-- building and unit (clear: coarse) and the blind index of its room. The host seals the
-- existing values at its first start.
ALTER TABLE base_houses ADD COLUMN room_bidx TEXT;
CREATE UNIQUE INDEX base_houses_room_bidx ON base_houses(tenant_id, building, unit, room_bidx);

-- One row per sealed column: the data key a finished pass found every value under. A start
-- looks again only at columns whose row names another key (or none), so a large table is
-- not scanned at every start.
CREATE TABLE sealed_passes (
    name        TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    finished_at BIGINT NOT NULL
);
