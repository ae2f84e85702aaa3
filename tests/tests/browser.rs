//! The resident app in real headless Chromium (Debian's chromium, driven by playwright-core
//! from tests/browser/): log in, open legal aid, consent, apply, see the receipt.
//! Screenshots are kept in target/browser-artifacts/. SQLite and PostgreSQL.
use linli_tests::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const PASSWORD: &str = "linli-test-2026";

/// Chromium and the npm packages, which scripts/test installs; outside CI a machine
/// without them skips this test (with a message), under CI=true it fails.
fn browser_ready() -> anyhow::Result<bool> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = workspace_root().join("tests/browser/node_modules/playwright-core");
    if PathBuf::from(&chromium).exists() && modules.exists() {
        return Ok(true);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        anyhow::bail!("the browser tests need {chromium} and tests/browser/node_modules (scripts/test installs both)");
    }
    eprintln!("skipping the browser test: run scripts/test to install Chromium and playwright-core");
    Ok(false)
}

async fn resident_applies_for_legal_aid_in_the_app(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "legal-aid", &["data", "identity", "identity:real-name", "identity:id-number"], &["demo-county"]).await?;
    let record = format!("姓名,身份证号,手机号,网格\n王秀英,{},13800000001,xingfu-g1\n", id_number("33078219560312002"));
    assert_eq!(host.import_csv("residents", "xingfu", &record).await?["status"], "done");
    let resident = host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;

    let backend = if host.database_url.starts_with("postgres") { "postgres" } else { "sqlite" };
    let artifacts = target_dir().join("browser-artifacts").join(format!("legal-aid-{backend}"));
    let url = host.url.clone();
    let script = workspace_root().join("tests/browser/legal_aid.mjs");
    let output = tokio::task::spawn_blocking(move || Command::new("node").arg(script).arg(url).arg(&artifacts).arg("13800000001").arg(PASSWORD).output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the browser flow failed (screenshots in target/browser-artifacts):\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?;
    let receipt = result["receipt"].as_str().unwrap_or_default();

    // What the page showed is what the host holds.
    let mine = resident.get("/t/xingfu/p/legal-aid/applications/mine").await?.expect_status(200)?.json();
    assert_eq!(mine[0]["receipt"], receipt);
    assert_eq!(mine[0]["applicant_name"], "王秀英");
    let consents = resident.get("/api/consents").await?.expect_status(200)?.json();
    assert_eq!(consents.as_array().map(Vec::len), Some(2), "{consents}");
    host.stop().await;
    Ok(())
}
on_both_databases!(legal_aid_in_chromium, resident_applies_for_legal_aid_in_the_app);
