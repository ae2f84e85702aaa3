-- The OpenID Connect provider: vendors' web apps sign residents and staff in with Linli.

-- A relying party, registered by a county for one vendor. Its users get the vendor's
-- pairwise ids, the same ids the vendor's plugins see.
CREATE TABLE oidc_clients (
    id            TEXT PRIMARY KEY,
    vendor        TEXT NOT NULL,
    county_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    -- sha256 of the client secret; NULL for a public client (a mobile or single-page app)
    secret_hash   TEXT,
    -- JSON arrays: redirect URIs compared exactly, and the scopes it may ask for
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

-- Authorization codes, hashed; single use, bound to client, redirect URI and PKCE
-- challenge. `family` names the tokens a code was exchanged for, so that a replayed code
-- revokes them.
CREATE TABLE oidc_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oidc_clients(id),
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    family         TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    created_at     BIGINT NOT NULL
);

-- Access tokens for the userinfo endpoint: opaque (so they carry neither the internal
-- account id nor anything a client could read), hashed, revocable with their family.
CREATE TABLE oidc_access_tokens (
    token_hash  TEXT PRIMARY KEY,
    family      TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES oidc_clients(id),
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    scope       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX oidc_access_tokens_family ON oidc_access_tokens(family);

-- Refresh tokens of a client (NULL: the host's own app session) and the scope granted.
ALTER TABLE refresh_tokens ADD COLUMN client_id TEXT;
ALTER TABLE refresh_tokens ADD COLUMN scope TEXT;
