//! Starting the demo county while something else writes to its SQLite database: every start
//! applies the whole set-up. SQLite alone lets one writer in at a time, and a transaction
//! that read before it wrote fails outright (SQLITE_BUSY_SNAPSHOT, code 517) when another
//! connection wrote in between — the busy timeout never retries that. PostgreSQL has no
//! such failure, so this story runs on SQLite only.
use anyhow::Context;
use linli_host::store::{now_millis, sqlite_url, Store};
use linli_tests::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Each start of the demo's set-up takes about 3 s here (seven plugins, two of them 12–18 MB
/// JavaScript and Python components); without `Store::begin_write` the set-up failed at
/// the first start already.
const STARTS: usize = 20;

/// Another writer on the same database file (as a second process or a busy background task
/// would be): short write transactions back to back, each holding the write lock for about
/// a millisecond, so that any transaction of the host that reads and then writes meets one
/// in between. Returns how many it committed.
async fn busy_writer(store: Store, stop: Arc<AtomicBool>) -> anyhow::Result<u64> {
    sqlx::query("INSERT INTO leases (name, holder, expires_at) VALUES ('startup-test-writer', 'test', 0) ON CONFLICT (name) DO NOTHING")
        .execute(&store.pool)
        .await?;
    let mut commits = 0;
    while !stop.load(Ordering::SeqCst) {
        let mut tx = store.begin_write().await?;
        sqlx::query("UPDATE leases SET expires_at = $1 WHERE name = 'startup-test-writer'").bind(now_millis()).execute(&mut *tx).await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
        tx.commit().await?;
        commits += 1;
        // A gap, so the host's writers waiting on the busy timeout get their turn.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(commits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_set_up_succeeds_at_every_start_beside_another_writer() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let setup_file = demo::demo_setup(&Vendor::new("linli")?, work.path())?;
    // Fewer generated residents than the demo's 600 a grid: every import still opens its
    // transaction with a read (is this house known?), which is where it used to fail.
    let text = std::fs::read_to_string(&setup_file)?;
    anyhow::ensure!(text.contains("residents_per_grid = 600"), "demo/setup.toml changed: adjust this test");
    std::fs::write(&setup_file, text.replace("residents_per_grid = 600", "residents_per_grid = 60"))?;
    for start in 1..=STARTS {
        let data = tempfile::tempdir()?;
        let database_url = sqlite_url(data.path());
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(busy_writer(Store::open(&database_url, linli_host::store::vault::Keys::of_data_dir(data.path())?).await?, stop.clone()));
        let mut config = linli_host::config::Config {
            listen: "127.0.0.1:0".into(),
            data_dir: data.path().to_path_buf(),
            database_url,
            // The background writers run as in the demo, only faster: the replica sync, the
            // ingest lease and the key reload every second.
            cluster: linli_host::platform::cluster::ClusterConfig { sync_seconds: 1 },
            // The plugins are compiled once, for every start and every test host of the run.
            compile_cache_dir: Some(shared_compile_cache()),
            ..Default::default()
        };
        config.devices.broker = "off".into();
        let started = linli_host::start(config, Some(linli_host::setup::Setup::load(&setup_file)?)).await;
        stop.store(true, Ordering::SeqCst);
        let commits = writer.await?.context("the other writer")?;
        let server = started.with_context(|| format!("start {start} of {STARTS} failed"))?;
        assert!(commits > 10, "start {start}: the other writer committed only {commits} times during the set-up");
        // The set-up is whole: the parking space seeded through its plugin, the last step's
        // result (the council's proposals) and the generated residents are there.
        let client = reqwest::Client::new();
        let board: serde_json::Value =
            client.get(format!("{}/api/dashboard?tenant=xingfu", server.url())).bearer_auth(&server.admin_token).send().await?.json().await?;
        assert_eq!(board["totals"]["parking.spaces"], json!(1.0), "start {start}: {}", board["totals"]);
        assert_eq!(board["totals"]["council.proposals"], json!(2.0), "start {start}: {}", board["totals"]);
        let residents: serde_json::Value =
            client.get(format!("{}/api/base/residents?limit=1", server.url())).bearer_auth(&server.admin_token).send().await?.json().await?;
        let total = residents["total_in_scope"].as_i64().unwrap_or(0);
        assert!((300..400).contains(&total), "start {start}: {total} residents");
        server.stop().await;
    }
    Ok(())
}
