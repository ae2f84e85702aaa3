-- Residents' real names and birth dates sealed too (issue 21): the README calls them
-- sensitive. A name is found by a blind index of the whole name (no more partial matches);
-- ages are filtered by the birth year kept beside the sealed date (a coarse value, the exact
-- date is compared after opening). The host seals the existing values at its first start.
ALTER TABLE base_residents ADD COLUMN real_name_bidx TEXT;
ALTER TABLE base_residents ADD COLUMN birth_year INTEGER;
UPDATE base_residents SET birth_year = CAST(substr(birth_date, 1, 4) AS INTEGER);
CREATE INDEX base_residents_real_name_bidx ON base_residents(real_name_bidx);
CREATE INDEX base_residents_birth_year ON base_residents(birth_year);
