//! The ledger under fire: the real `linli serve` process, a plugin moving time credits
//! over HTTP for 64 concurrent clients, and the process killed with SIGKILL and restarted
//! twice meanwhile. Afterwards the balances sum to zero, every account is within its floor
//! and cap, and every idempotency key a client saw succeed was applied exactly once (and
//! none it saw refused). Bad input gets a clear error and changes nothing. SQLite and
//! PostgreSQL. And two replicas on one PostgreSQL, one killed for good: the other carries
//! on and nothing acknowledged is lost.
use anyhow::{bail, Context, Result};
use linli_host::capabilities::ledger::book::check_invariants;
use linli_host::store::Store;
use linli_tests::serve::Serve;
use linli_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 64;
const MEMBERS: usize = 8;

/// The test plugin's teller routes on a `linli serve` process.
async fn teller(serve: &Serve, tenant: &str, method: reqwest::Method, path: &str, body: Value) -> Result<Reply> {
    Reply::from(serve.http.request(method, format!("{}/t/{tenant}/p/test-teller{path}", serve.url())).json(&body).send().await?).await
}

async fn open(serve: &Serve, tenant: &str, currency: &str, owner: &str) -> Result<String> {
    let account = teller(serve, tenant, reqwest::Method::POST, "/accounts", json!({ "currency": currency, "owner": owner })).await?.expect_status(200)?.json();
    Ok(account["id"].as_str().context("account id")?.to_string())
}

async fn transfers(store: &Store) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transfers").fetch_one(&store.pool).await?)
}

/// What each client saw: keys applied and keys refused for the floor or cap.
#[derive(Default)]
struct Seen {
    applied: BTreeSet<String>,
    refused: BTreeSet<String>,
}

/// Trust the test vendor, install the teller at 幸福社区 and 和平社区, and open an issuer
/// pool and members it pays 20.00 hours each. Returns the members' account ids.
async fn set_up(serve: &Serve) -> Result<Vec<String>> {
    let vendor = Vendor::new("linli-tests")?;
    serve.admin(reqwest::Method::POST, "/keys", Some(json!({ "county": DEMO_COUNTY, "vendor": vendor.name, "public_key": vendor.public_key() }))).await?;
    serve.upload(DEMO_COUNTY, vendor.package("teller", |_| {})?).await?;
    for tenant in ["xingfu", "heping"] {
        serve
            .admin(
                reqwest::Method::POST,
                "/installations",
                Some(
                    json!({ "plugin_id": "test-teller", "version": "0.1.0", "tenant_id": tenant, "grants": ["ledger"], "limits": { "max_concurrency": 128 } }),
                ),
            )
            .await?;
    }
    let issuer = open(serve, "xingfu", "hours", "pool:issuer").await?;
    teller(serve, "xingfu", reqwest::Method::PUT, &format!("/accounts/{issuer}/limits"), json!({ "floor": -100_000_000, "cap": null }))
        .await?
        .expect_status(200)?;
    let mut members = Vec::new();
    for n in 0..MEMBERS {
        let member = open(serve, "xingfu", "hours", &format!("user:member{n}")).await?;
        teller(serve, "xingfu", reqwest::Method::POST, "/transfers", json!({ "payer": issuer, "payee": member, "amount": 2_000, "key": format!("seed-{n}") }))
            .await?
            .expect_status(200)?;
        members.push(member);
    }
    Ok(members)
}

/// 64 clients, random transfers, each retried with its key until it gets an answer; a
/// client whose host does not answer tries the next URL (another replica).
fn run_clients(urls: Vec<String>, members: Vec<String>, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    (0..CLIENTS)
        .map(|client| {
            let (stop, seen, members, urls) = (stop.clone(), seen.clone(), members.clone(), urls.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
                let mut state = (client as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                let mut target = client % urls.len();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let payer = &members[(next() % MEMBERS as u64) as usize];
                    let payee = &members[(next() % MEMBERS as u64) as usize];
                    if payer == payee {
                        continue;
                    }
                    let key = format!("c{client}-{n}");
                    n += 1;
                    let body = json!({ "payer": payer, "payee": payee, "amount": next() % 300 + 1, "key": key });
                    loop {
                        let sent = http.post(format!("{}/t/xingfu/p/test-teller/transfers", urls[target])).json(&body).send().await;
                        let status = match sent {
                            Ok(reply) => reply.status().as_u16(),
                            // The host is down (killed): try again with the same key.
                            Err(_) => 0,
                        };
                        match status {
                            200 => {
                                seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.applied.insert(key.clone());
                                break;
                            }
                            429 => {
                                seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.refused.insert(key.clone());
                                break;
                            }
                            0 | 500..=599 => {
                                target = (target + 1) % urls.len();
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            other => bail!("unexpected status {other} for {body}"),
                        }
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect()
}

/// The book after the storm: every key a client saw applied is there once, none it saw
/// refused, the invariants hold and the members hold what was paid in.
async fn verify(serve: &Serve, store: &Store, seen: &Seen, members: &[String]) -> Result<()> {
    assert!(seen.applied.len() > 100, "the clients got little done ({} transfers): is the host up?", seen.applied.len());
    let in_book: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM ledger_transfers WHERE idempotency_key LIKE 'c%'").fetch_all(&store.pool).await?;
    let distinct: BTreeSet<String> = in_book.iter().cloned().collect();
    assert_eq!(in_book.len(), distinct.len(), "no key applied twice");
    assert_eq!(distinct, seen.applied, "exactly the keys the clients saw succeed are in the book");
    assert!(seen.refused.is_disjoint(&distinct));
    assert_eq!(check_invariants(store).await?, Vec::<String>::new());
    let mut total = 0;
    for member in members {
        let account = teller(serve, "xingfu", reqwest::Method::GET, &format!("/accounts/{member}"), json!({})).await?.expect_status(200)?.json();
        total += account["balance"].as_i64().context("balance")?;
    }
    assert_eq!(total, 2_000 * MEMBERS as i64, "the members hold exactly what was paid in");
    Ok(())
}

async fn ledger_survives_sigkill(backend: Backend) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let Some(database_url) = database_url(backend, temp.path()).await? else { return Ok(()) };
    let mut serve = Serve::start(temp.path().to_path_buf(), database_url.clone()).await?;
    let members = set_up(&serve).await?;
    let store = Store::open(&database_url, linli_tests::serve::serve_keys()).await?;

    // Bad input: a clear error each, nothing written.
    let points = open(&serve, "xingfu", "points", "user:member0").await?;
    let elsewhere = open(&serve, "heping", "hours", "user:member0").await?;
    let before = transfers(&store).await?;
    for (body, status, code) in [
        (json!({ "payer": members[0], "payee": members[1], "amount": 0, "key": "bad-1" }), 400, "invalid-argument"),
        (json!({ "payer": members[0], "payee": members[1], "amount": -10, "key": "bad-2" }), 400, "invalid-argument"),
        (json!({ "payer": members[0], "payee": "no-such-account", "amount": 10, "key": "bad-3" }), 404, "not-found"),
        (json!({ "payer": members[0], "payee": elsewhere, "amount": 10, "key": "bad-4" }), 404, "not-found"),
        (json!({ "payer": members[0], "payee": points, "amount": 10, "key": "bad-5" }), 400, "invalid-argument"),
        (json!({ "payer": members[0], "payee": members[1], "amount": 2_001, "key": "bad-6" }), 429, "limit-exceeded"),
        (json!({ "payer": members[0], "payee": members[1], "amount": 10, "key": "seed-0" }), 409, "conflict"),
    ] {
        let reply = teller(&serve, "xingfu", reqwest::Method::POST, "/transfers", body.clone()).await?;
        assert_eq!((reply.status, reply.error_code().as_str()), (status, code), "{body}: {}", reply.text);
        assert!(!reply.error_message().is_empty());
    }
    assert_eq!(transfers(&store).await?, before, "refused transfers change nothing");

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let clients = run_clients(vec![serve.url()], members.clone(), stop.clone(), seen.clone());
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        serve.kill()?;
        serve.spawn().await?;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await??;
    }
    // Every client has finished: what they saw is taken out of the lock before awaiting.
    let seen = std::mem::take(&mut *seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    eprintln!("{backend:?}: {} transfers applied, {} refused at a floor or cap, across two SIGKILLs", seen.applied.len(), seen.refused.len());
    verify(&serve, &store, &seen, &members).await?;
    serve.kill()?;
    Ok(())
}

/// Two replicas on one PostgreSQL (issue 8): clients spread over both; one is killed with
/// SIGKILL and stays down; its clients carry on with the other. Nothing a client saw
/// acknowledged is lost, nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_loses_nothing_acknowledged() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let Some(database_url) = database_url(Backend::Postgres, temp.path()).await? else { return Ok(()) };
    let (dir_a, dir_b) = (temp.path().join("a"), temp.path().join("b"));
    std::fs::create_dir_all(&dir_a)?;
    std::fs::create_dir_all(&dir_b)?;
    let mut a = Serve::start(dir_a, database_url.clone()).await?;
    let members = set_up(&a).await?;
    // B starts after the set-up: it loads the installations from the database.
    let b = Serve::start(dir_b, database_url.clone()).await?;
    let store = Store::open(&database_url, linli_tests::serve::serve_keys()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let clients = run_clients(vec![a.url(), b.url()], members.clone(), stop.clone(), seen.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill()?;
    let at_kill = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.applied.len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await??;
    }
    // Every client has finished: what they saw is taken out of the lock before awaiting.
    let seen = std::mem::take(&mut *seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    eprintln!("{} transfers applied ({at_kill} before replica A was killed), {} refused", seen.applied.len(), seen.refused.len());
    assert!(seen.applied.len() > at_kill + 50, "replica B carried on after A died ({at_kill} → {})", seen.applied.len());
    verify(&b, &store, &seen, &members).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_survives_sigkill_sqlite() -> Result<()> {
    ledger_survives_sigkill(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_survives_sigkill_postgres() -> Result<()> {
    ledger_survives_sigkill(Backend::Postgres).await
}
