-- Set-up requests to plugins marked `once` (demo/setup.toml's fee billing, say): each is
-- recorded when it first succeeds and left out at later starts. The key is a hash of the
-- request (plugin, tenant, method, path, body, account).
CREATE TABLE setup_requests (
    request_key TEXT PRIMARY KEY,
    done_at     BIGINT NOT NULL
);
