//! The host's own doors: security headers on its pages and API, sign-in rate limits per
//! client address and per account (password, SMS, the OIDC token endpoint), answered 429
//! with `Retry-After`, and an admin token the host knows only by its hash. SQLite (none
//! depends on the database).
use linli_tests::*;
use serde_json::json;

const PASSWORD: &str = "linli-test-2026";

async fn login(host: &TestHost, phone: &str, password: &str) -> anyhow::Result<Reply> {
    Reply::from(host.client.post(format!("{}/api/auth/login", host.url)).json(&json!({ "phone": phone, "password": password })).send().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_and_api_carry_security_headers() -> anyhow::Result<()> {
    let Some(host) = TestHost::start(Backend::Sqlite).await? else { return Ok(()) };
    let app = host.client.get(format!("{}/app/", host.url)).send().await?;
    let header = |r: &reqwest::Response, name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let csp = header(&app, "content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"), "{csp}");
    assert!(!csp.contains("'unsafe-eval'") && !csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    assert_eq!(header(&app, "x-content-type-options"), "nosniff");
    assert_eq!(header(&app, "referrer-policy"), "same-origin");
    assert_eq!(header(&app, "strict-transport-security"), "", "no HSTS over plain HTTP");
    let api = host.client.get(format!("{}/api/me", host.url)).send().await?;
    assert_eq!(api.status(), 401);
    assert_eq!(header(&api, "content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
    for path in ["/console/", "/oidc/authorize?client_id=nobody", "/"] {
        let page = host.client.get(format!("{}{path}", host.url)).send().await?;
        assert!(header(&page, "content-security-policy").contains("frame-ancestors 'none'"), "{path}");
    }
    host.stop().await;

    let Some(https) = TestHost::start_tuned(Backend::Sqlite, |c| c.public_url = Some("https://linli.test".into())).await? else { return Ok(()) };
    let app = https.client.get(format!("{}/app/", https.url)).send().await?;
    assert!(header(&app, "strict-transport-security").starts_with("max-age="), "HSTS when the public URL is https");
    https.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_attempts_are_rate_limited() -> anyhow::Result<()> {
    let Some(host) = TestHost::start_tuned(Backend::Sqlite, |c| {
        c.limits.sign_in_per_account_per_minute = 4;
        c.limits.sign_in_per_address_per_minute = 12;
    })
    .await?
    else {
        return Ok(());
    };
    host.admin(
        "POST",
        "/accounts",
        Some(json!({ "kind": "resident", "phone": "13900000061", "display_name": "王", "password": PASSWORD, "tenant_id": "xingfu" })),
    )
    .await?
    .expect_status(201)?;
    // One account guessed at: four tries, then 429 with Retry-After, even with the right
    // password; the lock-out's own counter never got to five.
    for _ in 0..4 {
        assert_eq!(login(&host, "13900000061", "wrong-password").await?.status, 401);
    }
    let limited = login(&host, "13900000061", PASSWORD).await?;
    assert_eq!((limited.status, limited.error_code().as_str()), (429, "rate-limited"), "{}", limited.text);
    let wait: u64 = limited.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    // SMS codes for the same phone count apart from passwords, and are limited alike.
    for _ in 0..4 {
        let sent =
            Reply::from(host.client.post(format!("{}/api/auth/sms/login", host.url)).json(&json!({ "phone": "13900000061", "code": "000000" })).send().await?)
                .await?;
        assert_eq!(sent.status, 401);
    }
    // That is 9 from this address; the OIDC token endpoint shares the address's budget.
    let token = |client: &str| {
        host.client.post(format!("{}/oidc/token", host.url)).form(&[("grant_type", "authorization_code"), ("client_id", client), ("code", "x")]).send()
    };
    assert_eq!(token("nobody").await?.status(), 401);
    assert_eq!(token("nobody-else").await?.status(), 401);
    assert_eq!(login(&host, "13900000062", PASSWORD).await?.status, 401, "the twelfth attempt from the address is still answered");
    let by_address = login(&host, "13900000063", PASSWORD).await?;
    assert_eq!(by_address.status, 429, "a new phone from the same address is held back: {}", by_address.text);
    assert!(by_address.error_message().contains("address"), "{}", by_address.text);
    let oidc = token("nobody").await?;
    assert_eq!(oidc.status(), 429);
    assert!(oidc.headers().contains_key("retry-after"));
    host.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_token_known_only_by_its_hash() -> anyhow::Result<()> {
    use sha2::Digest;
    let token = "county-ops-token-2026-not-in-any-file";
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let temp = tempfile::tempdir()?;
    let mut config = linli_host::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: temp.path().to_path_buf(),
        database_url: linli_host::store::sqlite_url(temp.path()),
        admin_token_sha256: hash.clone(),
        ..Default::default()
    };
    config.devices.broker = "off".into();
    let server = linli_host::start(config, None).await?;
    assert!(server.admin_token.is_empty(), "the host does not know the token itself");
    assert!(!temp.path().join("admin.token").exists(), "no token file is written");
    let client = reqwest::Client::new();
    let as_token = |bearer: &str| client.get(format!("{}/admin/tenants", server.url())).bearer_auth(bearer).send();
    assert_eq!(as_token(token).await?.status(), 200);
    assert_eq!(as_token(&hash).await?.status(), 401, "the hash itself is no token");
    assert_eq!(as_token("county-ops-token-2026").await?.status(), 401);
    let found = files_containing(temp.path(), token);
    assert!(found.is_empty(), "the token in clear in {found:?}");
    server.stop().await;
    Ok(())
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            found.push(path);
        }
    }
    found
}
