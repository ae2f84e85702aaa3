//! Residents and staff log in once: passwords with lock-out, SMS codes, rotating refresh
//! tokens, logout, key rotation, and a session that routes `/p/…` to the resident's
//! community. Every story runs on SQLite and on PostgreSQL.
use linli_tests::*;
use serde_json::{json, Value};

const PHONE: &str = "13800000001";
const PASSWORD: &str = "邻里-secret-1";

async fn post(host: &TestHost, path: &str, body: Value) -> anyhow::Result<Reply> {
    let response = host.client.post(format!("{}{path}", host.url)).json(&body).send().await?;
    reply(response).await
}

async fn reply(response: reqwest::Response) -> anyhow::Result<Reply> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok(Reply { status, headers, text: response.text().await? })
}

async fn me(host: &TestHost, access_token: &str) -> anyhow::Result<Reply> {
    reply(host.client.get(format!("{}/api/me", host.url)).bearer_auth(access_token).send().await?).await
}

async fn resident(host: &TestHost) -> anyhow::Result<Value> {
    let account = json!({ "kind": "resident", "phone": PHONE, "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" });
    Ok(host.admin("POST", "/accounts", Some(account)).await?.expect_status(201)?.json())
}

fn tokens(reply: &Reply) -> (String, String) {
    let v = reply.json();
    (v["access_token"].as_str().unwrap_or_default().to_string(), v["refresh_token"].as_str().unwrap_or_default().to_string())
}

async fn password_sessions(host: TestHost) -> anyhow::Result<()> {
    let account = resident(&host).await?;
    let login = post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?;
    assert_eq!(login.json()["token_type"], "Bearer");
    let (access, refresh) = tokens(&login);
    let who = me(&host, &access).await?.expect_status(200)?.json();
    assert_eq!(
        (who["display_name"].clone(), who["tenant_id"].clone(), who["phone"].clone()),
        (json!("王阿姨"), json!("xingfu"), json!("138****0001")),
        "{who}"
    );
    assert!(who.get("id").is_none() && !who.to_string().contains(account["id"].as_str().unwrap_or("?")), "the account id is not shown: {who}");

    // Refresh tokens rotate; a used one presented again ends the session.
    let renewed = post(&host, "/api/auth/refresh", json!({ "refresh_token": refresh })).await?.expect_status(200)?;
    let (access2, refresh2) = tokens(&renewed);
    assert_ne!(refresh2, refresh);
    me(&host, &access2).await?.expect_status(200)?;
    let replay = post(&host, "/api/auth/refresh", json!({ "refresh_token": refresh })).await?;
    assert_eq!((replay.status, replay.error_code().as_str()), (401, "bad-refresh-token"));
    let after_theft = post(&host, "/api/auth/refresh", json!({ "refresh_token": refresh2 })).await?;
    assert_eq!(after_theft.status, 401, "reuse revoked the whole session");

    // Logout ends a session; the other session is untouched.
    let (_, refresh_a) = tokens(&post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?);
    let (_, refresh_b) = tokens(&post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?);
    post(&host, "/api/auth/logout", json!({ "refresh_token": refresh_a })).await?.expect_status(204)?;
    assert_eq!(post(&host, "/api/auth/refresh", json!({ "refresh_token": refresh_a })).await?.status, 401);
    post(&host, "/api/auth/refresh", json!({ "refresh_token": refresh_b })).await?.expect_status(200)?;

    // Wrong and unknown credentials look the same; five failures lock the account, and
    // while locked even the right password is refused.
    let unknown = post(&host, "/api/auth/login", json!({ "phone": "13900000000", "password": PASSWORD })).await?;
    let wrong = post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": "nope-nope" })).await?;
    assert_eq!((unknown.status, unknown.error_message()), (wrong.status, wrong.error_message()));
    for _ in 0..3 {
        assert_eq!(post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": "nope-nope" })).await?.status, 401);
    }
    let fifth = post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": "nope-nope" })).await?;
    assert_eq!((fifth.status, fifth.error_code().as_str()), (423, "locked"));
    let right_but_locked = post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?;
    assert_eq!(right_but_locked.status, 423);

    // An SMS code still lets the resident in; it works once.
    post(&host, "/api/auth/sms/send", json!({ "phone": PHONE })).await?.expect_status(202)?;
    let too_soon = post(&host, "/api/auth/sms/send", json!({ "phone": PHONE })).await?;
    assert_eq!(too_soon.status, 429);
    assert!(too_soon.headers.contains_key("retry-after"));
    let code = last_sms_code(&host, PHONE)?;
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let bad = post(&host, "/api/auth/sms/login", json!({ "phone": PHONE, "code": wrong_code })).await?;
    assert_eq!((bad.status, bad.error_code().as_str()), (401, "bad-code"));
    post(&host, "/api/auth/sms/login", json!({ "phone": PHONE, "code": code })).await?.expect_status(200)?;
    assert_eq!(post(&host, "/api/auth/sms/login", json!({ "phone": PHONE, "code": code })).await?.status, 401, "a code works once");
    // A phone without an account gets the same answer and no message.
    post(&host, "/api/auth/sms/send", json!({ "phone": "13900000000" })).await?.expect_status(202)?;
    assert!(last_sms_code(&host, "13900000000").is_err());
    host.stop().await;
    Ok(())
}
on_both_databases!(residents_log_in_refresh_and_log_out, password_sessions);

fn last_sms_code(host: &TestHost, phone: &str) -> anyhow::Result<String> {
    let outbox = std::fs::read_to_string(host.data_dir.join("sms-outbox.jsonl")).unwrap_or_default();
    let text = outbox
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|m| m["to"] == phone)
        .and_then(|m| m["text"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("no SMS to {phone}"))?;
    Ok(text.chars().filter(char::is_ascii_digit).take(6).collect())
}

async fn tokens_are_checked(host: TestHost) -> anyhow::Result<()> {
    resident(&host).await?;
    let login = post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?;
    let (access, _) = tokens(&login);

    // Verifiable by anyone with the published keys.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&host.get("/.well-known/jwks.json").await?.expect_status(200)?.text)?;
    let kid = jsonwebtoken::decode_header(&access)?.kid.unwrap_or_default();
    let jwk = jwks.find(&kid).ok_or_else(|| anyhow::anyhow!("kid {kid} not published"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["linli-session"]);
    validation.set_issuer(&[&host.url]);
    let claims = jsonwebtoken::decode::<Value>(&access, &jsonwebtoken::DecodingKey::from_jwk(jwk)?, &validation)?.claims;
    assert_eq!(claims["tenant"], "xingfu");

    // Forgeries are refused: no signature (alg none), a tampered payload, another key.
    let parts: Vec<&str> = access.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none_header = b64.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1])?)?;
    payload["tenant"] = json!("heping");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
    let stranger = linli_host::packages::signing::generate();
    let pem = linli_host::packages::signing::encode_secret(&stranger)?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let foreign = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes())?)?;
    for (name, token) in [("alg=none", alg_none), ("tampered", tampered), ("foreign key", foreign), ("garbage", "not.a.jwt".into())] {
        let r = me(&host, &token).await?;
        assert_eq!((r.status, r.error_code().as_str()), (401, "unauthenticated"), "{name} must be refused");
    }
    assert_eq!(reply(host.client.get(format!("{}/api/me", host.url)).send().await?).await?.status, 401);

    // Rotation: new sessions use the new key, existing ones stay valid.
    let rotated = host.admin("POST", "/signing-keys/rotate", None).await?.expect_status(200)?.json();
    let (fresh, _) = tokens(&post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?);
    assert_eq!(jsonwebtoken::decode_header(&fresh)?.kid, rotated["kid"].as_str().map(str::to_string));
    me(&host, &access).await?.expect_status(200)?;
    me(&host, &fresh).await?.expect_status(200)?;
    let published = host.get("/.well-known/jwks.json").await?.json();
    assert_eq!(published["keys"].as_array().map(Vec::len), Some(2));
    host.stop().await;
    Ok(())
}
on_both_databases!(session_tokens_are_verified_and_keys_rotate, tokens_are_checked);

async fn accounts_are_validated(host: TestHost) -> anyhow::Result<()> {
    resident(&host).await?;
    let create = |body: Value| host.admin("POST", "/accounts", Some(body));
    let duplicate = create(json!({ "kind": "resident", "phone": PHONE, "display_name": "x", "tenant_id": "heping" })).await?;
    assert_eq!(duplicate.status, 409);
    let cases = [
        (json!({ "kind": "resident", "phone": "12345", "display_name": "x", "tenant_id": "xingfu" }), "mobile number"),
        (json!({ "kind": "resident", "phone": "13800000002", "display_name": "x" }), "community"),
        (json!({ "kind": "resident", "phone": "13800000002", "display_name": "x", "tenant_id": "chengguan" }), "not a community"),
        (json!({ "kind": "resident", "phone": "13800000002", "display_name": "x", "tenant_id": "xingfu", "password": "short" }), "at least 8"),
        (json!({ "kind": "staff", "phone": "13800000002", "display_name": "x", "roles": [] }), "at least one role"),
        (
            json!({ "kind": "staff", "phone": "13800000002", "display_name": "x", "roles": [{ "role": "county-admin", "tenant": "xingfu" }] }),
            "county-admin is held at a county",
        ),
        (json!({ "kind": "staff", "phone": "13800000002", "display_name": "x", "roles": [{ "role": "grid-worker", "tenant": "nowhere" }] }), "does not exist"),
    ];
    for (body, needle) in cases {
        let r = create(body.clone()).await?;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.error_message().contains(needle), "expected `{needle}`: {}", r.text);
    }
    let worker = json!({ "kind": "staff", "phone": "13800000003", "display_name": "李网格员", "password": "grid-worker-1",
        "roles": [{ "role": "grid-worker", "tenant": "xingfu-g1" }, { "role": "volunteer", "tenant": "xingfu" }] });
    let created = create(worker).await?.expect_status(201)?.json();
    assert_eq!(created["roles"].as_array().map(Vec::len), Some(2));
    let (access, _) = tokens(&post(&host, "/api/auth/login", json!({ "phone": "13800000003", "password": "grid-worker-1" })).await?.expect_status(200)?);
    let claims = me(&host, &access).await?.expect_status(200)?.json();
    assert_eq!(claims["kind"], "staff");
    host.stop().await;
    Ok(())
}
on_both_databases!(accounts_are_validated_before_they_are_made, accounts_are_validated);

/// A signed-in resident's requests to /p/… go to their own community's installation.
async fn session_routing(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package("hello", |_| {})?).await?.expect_status(201)?;
    for community in ["xingfu", "heping"] {
        host.install("hello", "0.1.0", community, &["data"], json!({})).await?.expect_status(201)?;
    }
    resident(&host).await?;
    let (access, _) = tokens(&post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?);
    let visit = reply(host.client.post(format!("{}/p/hello/visits", host.url)).bearer_auth(&access).send().await?).await?.expect_status(200)?;
    assert_eq!(visit.json()["community"], "xingfu");
    let anonymous = reply(host.client.post(format!("{}/p/hello/visits", host.url)).send().await?).await?;
    assert_eq!((anonymous.status, anonymous.error_code().as_str()), (400, "tenant-required"));
    let forged = reply(host.client.post(format!("{}/p/hello/visits", host.url)).bearer_auth("forged.token.here").send().await?).await?;
    assert_eq!((forged.status, forged.error_code().as_str()), (401, "unauthenticated"), "a bad token is refused, not made anonymous");
    host.stop().await;
    Ok(())
}
on_both_databases!(a_residents_session_routes_to_their_community, session_routing);

/// One login serves every plugin: each plugin asks the host who is calling and gets a
/// pairwise id — the same across one vendor's plugins, different for another vendor,
/// never the account id — and only the roles that reach the request's tenant.
async fn identity_in_plugins(host: TestHost) -> anyhow::Result<()> {
    let linli = Vendor::new("linli")?;
    let other = Vendor::new("other-co")?;
    host.trust(&linli).await?;
    host.trust(&other).await?;
    host.upload(linli.package("hello", |_| {})?).await?.expect_status(201)?;
    host.upload(linli.package("nosy", |_| {})?).await?.expect_status(201)?;
    host.upload(other.package("nosy", |m| {
        m.insert("id".into(), toml::Value::String("test-nosy-b".into()));
    })?)
    .await?
    .expect_status(201)?;
    host.install("hello", "0.1.0", "xingfu", &["data", "identity"], json!({})).await?.expect_status(201)?;
    host.install("hello", "0.1.0", "heping", &["data"], json!({})).await?.expect_status(201)?;
    host.install("test-nosy", "0.1.0", "xingfu", &["identity"], json!({})).await?.expect_status(201)?;
    host.install("test-nosy-b", "0.1.0", "xingfu", &["identity"], json!({})).await?.expect_status(201)?;

    let account = resident(&host).await?;
    let (access, _) = tokens(&post(&host, "/api/auth/login", json!({ "phone": PHONE, "password": PASSWORD })).await?.expect_status(200)?);
    let get = |path: String, token: Option<String>| {
        let mut request = host.client.get(format!("{}{path}", host.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { reply(request.send().await?).await }
    };

    let me = get("/p/hello/me".into(), Some(access.clone())).await?.expect_status(200)?.json();
    assert_eq!((me["greeting"].as_str(), me["kind"].as_str(), me["community"].as_str()), (Some("你好，王阿姨！"), Some("resident"), Some("xingfu")));
    let pairwise = me["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(pairwise.len(), 32);
    assert_ne!(pairwise, account["id"].as_str().unwrap_or_default(), "never the internal id");
    let same_vendor = get("/t/xingfu/p/test-nosy/whoami".into(), Some(access.clone())).await?.expect_status(200)?.json();
    assert_eq!(same_vendor["id"].as_str(), Some(pairwise.as_str()), "one vendor, one id");
    let other_vendor = get("/t/xingfu/p/test-nosy-b/whoami".into(), Some(access.clone())).await?.expect_status(200)?.json();
    assert_eq!(other_vendor["outcome"], "user");
    assert_ne!(other_vendor["id"].as_str(), Some(pairwise.as_str()), "another vendor cannot link the user");

    // Anonymous, and not granted.
    let anonymous = get("/t/xingfu/p/hello/me".into(), None).await?.expect_status(200)?.json();
    assert_eq!(anonymous["anonymous"], true);
    let not_granted = get("/t/heping/p/hello/me".into(), Some(access.clone())).await?;
    assert_eq!((not_granted.status, not_granted.error_code().as_str()), (403, "permission-denied"));

    // Staff roles are narrowed to the request's tenant.
    let staff = json!({ "kind": "staff", "phone": "13800000009", "display_name": "李网格员", "password": "grid-worker-1",
        "roles": [{ "role": "grid-worker", "tenant": "xingfu-g1" }, { "role": "volunteer", "tenant": "heping" }, { "role": "county-admin", "tenant": "demo-county" }] });
    host.admin("POST", "/accounts", Some(staff)).await?.expect_status(201)?;
    let (staff_token, _) = tokens(&post(&host, "/api/auth/login", json!({ "phone": "13800000009", "password": "grid-worker-1" })).await?.expect_status(200)?);
    let seen = get("/t/xingfu/p/hello/me".into(), Some(staff_token)).await?.expect_status(200)?.json();
    let mut roles: Vec<String> = seen["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| format!("{}@{}", g["role"].as_str().unwrap_or(""), g["tenant"].as_str().unwrap_or("")))
        .collect();
    roles.sort();
    assert_eq!(roles, ["county-admin@demo-county", "grid-worker@xingfu-g1"], "the volunteer role in 和平 does not reach 幸福");
    assert_eq!(seen["kind"], "staff");
    host.stop().await;
    Ok(())
}
on_both_databases!(plugins_see_a_pairwise_identity, identity_in_plugins);
