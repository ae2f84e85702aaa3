//! Key rotation as an operator runs it: `linli keys rotate-data` on the demo county's
//! residents, killed with SIGKILL midway, leaves every value readable, and running it again
//! finishes the rotation and destroys the old key. `linli keys rotate-master` then rewraps
//! the data keys, and the host starts with the new key file only. SQLite and PostgreSQL.
use anyhow::{Context, Result};
use linli_tests::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn linli(data_dir: &Path, database_url: &str) -> Command {
    let mut command = Command::new(linli_bin());
    command.env("LINLI_DATA_DIR", data_dir).env("LINLI_DATABASE_URL", database_url).env("LINLI_DEVICES__BROKER", "off");
    command
}

async fn under(pool: &sqlx::AnyPool, key: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM base_residents WHERE id_number LIKE $1").bind(format!("enc1:{key}:%")).fetch_one(pool).await?)
}

async fn fields_key(pool: &sqlx::AnyPool) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT id FROM data_keys WHERE purpose = 'fields' AND retired_at IS NULL").fetch_one(pool).await?)
}

/// With the host stopped: a rotation killed midway, run again, then a new master key.
async fn rotate_while_down(data_dir: PathBuf, database_url: String, residents: i64) -> Result<()> {
    // The database as it is, without the host's key handling (which would finish a rotation).
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&database_url).await?;
    let old = fields_key(&pool).await?;
    assert_eq!(under(&pool, &old).await?, residents);

    // One value per transaction, killed once it has begun on the residents.
    let mut child = linli(&data_dir, &database_url)
        .args(["keys", "rotate-data", "--batch", "1", "--grace-seconds", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    for line in BufReader::new(stdout).lines() {
        if line?.starts_with("base_residents.id_number: ") {
            break;
        }
    }
    child.kill()?;
    child.wait()?;
    let left = under(&pool, &old).await?;
    assert!(left > 0 && left < residents, "killed midway: {left} of {residents} ID numbers still under the old key");
    let new = fields_key(&pool).await?;
    assert_ne!(new, old);
    assert_eq!(under(&pool, &new).await? + left, residents, "every value is under one of the two keys");

    let again = linli(&data_dir, &database_url).args(["keys", "rotate-data", "--grace-seconds", "0"]).output()?;
    let said = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.status.success(), "{said}{}", String::from_utf8_lossy(&again.stderr));
    assert!(said.contains("finished the rotation an earlier run began") && said.contains(&format!("destroyed the old data key {old}")), "{said}");
    assert_eq!(under(&pool, &new).await?, residents);
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE purpose = 'fields'").fetch_one(&pool).await?;
    assert_eq!(keys, 1, "the old key is gone");
    pool.close().await;

    // A new master key: the key file is replaced and the host starts with it.
    let before = std::fs::read_to_string(data_dir.join("master.key"))?;
    let rotated = linli(&data_dir, &database_url).args(["keys", "rotate-master"]).output()?;
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    assert_ne!(std::fs::read_to_string(data_dir.join("master.key"))?, before);
    assert!(!data_dir.join("master.key.next").exists());
    Ok(())
}

async fn a_killed_rotation_resumes(host: TestHost) -> Result<()> {
    let imported = host.import_demo_residents(200, 11).await?;
    let (data_dir, database_url) = (host.data_dir.clone(), host.database_url.clone());
    let host = host.restart_after(rotate_while_down(data_dir, database_url, imported.len() as i64)).await?;
    let worker = host.person(json!({ "kind": "staff", "phone": "13900000021", "display_name": "网格员", "password": "linli-test-2026", "roles": [{ "role": "grid-worker", "tenant": "xingfu-g1" }] })).await?;
    let list = worker.get("/api/base/residents?limit=3").await?.expect_status(200)?.json();
    let first = list["items"][0]["id"].as_str().context("a resident")?.to_string();
    let detail = worker.get(&format!("/api/base/residents/{first}")).await?.expect_status(200)?.json();
    let id_number = detail["id_number"].as_str().unwrap_or("");
    assert!(id_number.len() == 18 && imported.iter().any(|(id, _)| id == id_number), "readable after both rotations: {detail}");
    host.stop().await;
    Ok(())
}
on_both_databases!(a_killed_data_key_rotation, a_killed_rotation_resumes);
