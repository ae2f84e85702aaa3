-- Secrets the host keeps for itself, shared by every replica (e.g. the key that derives
-- pairwise user ids).
CREATE TABLE host_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
