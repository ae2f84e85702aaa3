-- The ledger: double-entry accounts per installation (plugin id, tenant node), in
-- currencies the plugin's manifest declares. Balances change only through transfers,
-- each writing two movements that sum to zero in one transaction.

CREATE TABLE ledger_accounts (
    id          TEXT PRIMARY KEY,
    plugin_id   TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    currency    TEXT NOT NULL,
    -- `user:<pairwise id>` or `pool:<name>`
    owner       TEXT NOT NULL,
    -- integer minor units (e.g. hundredths of an hour)
    balance     BIGINT NOT NULL,
    -- the lowest balance allowed (0: no credit) and the highest (NULL: none)
    floor       BIGINT NOT NULL,
    cap         BIGINT,
    created_at  BIGINT NOT NULL,
    UNIQUE (plugin_id, tenant_id, currency, owner)
);

CREATE TABLE ledger_transfers (
    id               TEXT PRIMARY KEY,
    plugin_id        TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    -- the caller's key: the same key never applies twice
    idempotency_key  TEXT NOT NULL,
    currency         TEXT NOT NULL,
    -- No foreign keys to ledger_accounts here or in movements: in PostgreSQL each would
    -- share-lock the (hot) account rows on every insert, and the pile of multixacts
    -- that makes slowed transfers several-fold. The book only writes accounts it has
    -- just read in this installation, and accounts are never deleted.
    from_account     TEXT NOT NULL,
    to_account       TEXT NOT NULL,
    amount           BIGINT NOT NULL,
    memo             TEXT NOT NULL,
    -- set on a reversal: the transfer it undoes (each is undone at most once)
    reverses         TEXT REFERENCES ledger_transfers(id),
    created_at       BIGINT NOT NULL,
    UNIQUE (plugin_id, tenant_id, idempotency_key)
);
CREATE UNIQUE INDEX ledger_transfers_reverses ON ledger_transfers(reverses);

CREATE TABLE ledger_movements (
    id             TEXT PRIMARY KEY,
    transfer_id    TEXT NOT NULL REFERENCES ledger_transfers(id),
    account_id     TEXT NOT NULL,
    -- signed: negative leaves the account, positive enters it
    amount         BIGINT NOT NULL,
    balance_after  BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX ledger_movements_account ON ledger_movements(account_id, id);
