//! Backups that restore: a county's host with residents, time credits and an open alarm is
//! backed up while it serves, its database wiped, and restored; the restored host serves
//! the same residents, balances and open alarms. SQLite through `linli backup` / `linli
//! restore`; PostgreSQL through `pg_dump` / `pg_restore`, the commands the README gives.
use anyhow::{Context, Result};
use linli_tests::lab::wait_until;
use linli_tests::serve::{Serve, SERVE_ADMIN_TOKEN, SERVE_MASTER_KEY};
use linli_tests::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

async fn teller(serve: &Serve, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
    let reply = Reply::from(serve.http.request(method, format!("{}/t/xingfu/p/test-teller{path}", serve.url())).json(&body).send().await?).await?;
    Ok(reply.expect_status(200)?.json())
}

/// Residents, two ledger accounts with hours moved between them, and a fall alarm open.
/// Returns the ledger account ids.
async fn a_county_with_history(serve: &Serve) -> Result<Vec<String>> {
    let vendor = Vendor::new("linli-tests")?;
    serve.admin(reqwest::Method::POST, "/keys", Some(json!({ "county": DEMO_COUNTY, "vendor": vendor.name, "public_key": vendor.public_key() }))).await?;
    serve.upload(DEMO_COUNTY, vendor.package("teller", |_| {})?).await?;
    serve
        .admin(
            reqwest::Method::POST,
            "/installations",
            Some(json!({ "plugin_id": "test-teller", "version": "0.1.0", "tenant_id": "xingfu", "grants": ["ledger"] })),
        )
        .await?;
    let mut accounts = Vec::new();
    for owner in ["pool:issuer", "user:member"] {
        accounts.push(
            teller(serve, reqwest::Method::POST, "/accounts", json!({ "currency": "hours", "owner": owner })).await?["id"]
                .as_str()
                .context("account id")?
                .to_string(),
        );
    }
    teller(serve, reqwest::Method::PUT, &format!("/accounts/{}/limits", accounts[0]), json!({ "floor": -100_000, "cap": null })).await?;
    teller(serve, reqwest::Method::POST, "/transfers", json!({ "payer": accounts[0], "payee": accounts[1], "amount": 250, "key": "seed" })).await?;

    let csv = format!(
        "姓名,身份证号,手机号,网格,楼栋,单元,房号,标签\n王秀英,{},13800000001,xingfu-g1,3,2,501,独居老人\n李建国,{},13800000011,xingfu-g1,3,2,502,\n",
        id_number("33078219500312002"),
        id_number("33078219800101003")
    );
    let started = serve
        .http
        .post(format!("{}/api/base/imports?kind=residents&tenant=xingfu", serve.url()))
        .bearer_auth(SERVE_ADMIN_TOKEN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    let id = Reply::from(started).await?.expect_status(202)?.json()["id"].as_str().context("import id")?.to_string();
    wait_until("the import is done", || async { Ok(operator_get(serve, &format!("/api/base/imports/{id}")).await?["status"] == "done") }).await?;

    let device = serve
        .admin(
            reqwest::Method::POST,
            "/devices",
            Some(json!({ "id": "fall-1", "device_type": "fall-button", "model": "T-1", "vendor": "测试", "location": "grid:xingfu-g1" })),
        )
        .await?;
    let secret = device["secret"].as_str().context("device secret")?.to_string();
    serve.admin(reqwest::Method::POST, "/alarm-rules", Some(linli_tests::lab::instant_rule("fall", "跌倒求助", "fall-button", "pressed"))).await?;
    let sent =
        serve.http.post(format!("{}/api/devices/fall-1/telemetry", serve.url())).bearer_auth(&secret).body(json!({ "pressed": 1 }).to_string()).send().await?;
    anyhow::ensure!(sent.status() == 202, "telemetry: {}", sent.status());
    wait_until("the fall alarm is open", || async { Ok(open_alarms(serve).await?.len() == 1) }).await?;
    Ok(accounts)
}

/// A staff API answer, read as the platform operator.
async fn operator_get(serve: &Serve, path: &str) -> Result<Value> {
    Ok(Reply::from(serve.http.get(format!("{}{path}", serve.url())).bearer_auth(SERVE_ADMIN_TOKEN).send().await?).await?.expect_status(200)?.json())
}

async fn open_alarms(serve: &Serve) -> Result<Vec<Value>> {
    Ok(serve.admin(reqwest::Method::GET, "/alarms?status=active", None).await?["alarms"].as_array().cloned().unwrap_or_default())
}

/// What the host serves that a restore must bring back: residents (as staff see them),
/// balances, open alarms.
async fn what_it_serves(serve: &Serve, accounts: &[String]) -> Result<Value> {
    let residents = operator_get(serve, "/api/base/residents?limit=100").await?["items"].clone();
    let mut balances = Vec::new();
    for account in accounts {
        balances.push(teller(serve, reqwest::Method::GET, &format!("/accounts/{account}"), json!({})).await?["balance"].clone());
    }
    let alarms: Vec<Value> = open_alarms(serve)
        .await?
        .into_iter()
        .map(|a| json!({ "id": a["id"], "rule": a["rule_id"], "device": a["device_id"], "severity": a["severity"] }))
        .collect();
    Ok(json!({ "residents": residents, "balances": balances, "alarms": alarms }))
}

/// `linli ARGS` for the host in `dir` on `database_url`, with `master` as its key.
fn linli_with(dir: &Path, database_url: &str, master: &str, args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(linli_bin()).args(args).env("LINLI_DATA_DIR", dir).env("LINLI_DATABASE_URL", database_url).env("LINLI_MASTER_KEY", master).output()?)
}

/// `linli ARGS` with the hosts' master key, which must succeed; what it printed.
fn linli(dir: &Path, database_url: &str, args: &[&str]) -> Result<String> {
    let out = linli_with(dir, database_url, SERVE_MASTER_KEY, args)?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "linli {args:?}: {text}");
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_backup_wipe_restore() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().to_path_buf();
    let url = linli_host::store::sqlite_url(&dir);
    let mut serve = Serve::start(dir.clone(), url.clone()).await?;
    let accounts = a_county_with_history(&serve).await?;
    let before = what_it_serves(&serve, &accounts).await?;
    assert_eq!(before["residents"].as_array().map(Vec::len), Some(2), "{before}");
    assert_eq!(before["balances"], json!([-250, 250]), "{before}");

    // Online: the host keeps serving (and writing) while the copy is made.
    let backup = dir.join("backups").join("county.db");
    let said = linli(&dir, &url, &["backup", "--out", backup.to_str().context("utf-8 path")?])?;
    assert!(said.contains("backed up 2 residents"), "{said}");
    let again = linli_with(&dir, &url, SERVE_MASTER_KEY, &["backup", "--out", backup.to_str().unwrap_or("")])?;
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"), "never over an existing backup");
    // After the backup: a transfer the restore will not have.
    teller(&serve, reqwest::Method::POST, "/transfers", json!({ "payer": accounts[0], "payee": accounts[1], "amount": 5, "key": "after" })).await?;

    serve.stop()?;
    for name in ["linli.db", "linli.db-wal", "linli.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    // Restoring with another county's key is refused and puts nothing in place.
    let stranger =
        linli_with(&dir, &url, linli_host::store::vault::MasterKey::generate().encode().as_str(), &["restore", "--from", backup.to_str().unwrap_or("")])?;
    assert!(!stranger.status.success(), "a stranger's key restores nothing");
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("master key"), "{}", String::from_utf8_lossy(&stranger.stderr));
    assert!(!dir.join("linli.db").exists());

    let said = linli(&dir, &url, &["restore", "--from", backup.to_str().unwrap_or("")])?;
    assert!(said.contains("restored 2 residents"), "{said}");
    serve.spawn().await?;
    assert_eq!(what_it_serves(&serve, &accounts).await?, before, "the same residents, balances and open alarms");
    serve.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_dump_wipe_restore() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().to_path_buf();
    let Some(url) = database_url(Backend::Postgres, &dir).await? else { return Ok(()) };
    let mut serve = Serve::start(dir.clone(), url.clone()).await?;
    let accounts = a_county_with_history(&serve).await?;
    let before = what_it_serves(&serve, &accounts).await?;
    let refused = linli_with(&dir, &url, SERVE_MASTER_KEY, &["backup", "--out", dir.join("x.db").to_str().unwrap_or("")])?;
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"), "PostgreSQL is pointed to pg_dump");

    // The README's commands, on the test's own schema.
    let (base, schema) = linli_host::store::split_scratch_postgres_url(&url).context("a scratch schema URL")?;
    let dump = dir.join("county.dump");
    let dumped = Command::new("pg_dump").args(["--format=custom", "--no-owner", "--schema", schema, "--file"]).arg(&dump).arg(base).output()?;
    anyhow::ensure!(dumped.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dumped.stderr));
    serve.stop()?;
    let wiped = Command::new("psql").args([base, "-c", &format!("DROP SCHEMA {schema} CASCADE")]).output()?;
    anyhow::ensure!(wiped.status.success(), "wipe: {}", String::from_utf8_lossy(&wiped.stderr));
    let restored = Command::new("pg_restore").args(["--no-owner", "--dbname", base]).arg(&dump).output()?;
    anyhow::ensure!(restored.status.success(), "pg_restore: {}", String::from_utf8_lossy(&restored.stderr));
    serve.spawn().await?;
    assert_eq!(what_it_serves(&serve, &accounts).await?, before, "the same residents, balances and open alarms");
    serve.stop()?;
    Ok(())
}
