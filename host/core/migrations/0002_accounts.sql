-- Accounts and sessions (identity issue, part 1).

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    -- resident | staff
    kind          TEXT NOT NULL,
    phone         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    -- argon2 PHC string; NULL when the account logs in only with SMS codes
    password_hash TEXT,
    -- a resident's community (the tenant their requests are for)
    tenant_id     TEXT REFERENCES tenants(id),
    failed_logins BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- A staff role is scoped to one node of the tenant tree and everything below it.
CREATE TABLE account_roles (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (account_id, role, tenant_id)
);

-- Refresh tokens are stored hashed. Each use replaces the token with a new one of the
-- same family; presenting a used token again revokes the whole family (theft detection).
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    family      TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);

-- Session signing keys (Ed25519). The newest unretired key signs; every unretired key
-- verifies, so a rotation does not log anyone out.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_pem  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT
);

-- One-time SMS login codes, hashed.
CREATE TABLE sms_codes (
    phone       TEXT PRIMARY KEY,
    code_hash   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    sent_at     BIGINT NOT NULL
);
