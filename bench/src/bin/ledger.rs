//! `cargo run --release -p linli-bench --bin ledger -- [--clients N] [--seconds N]
//!  [--rounds N] [--write FILE]`
//!
//! Ledger transfers per second with N concurrent clients (default 64) on SQLite and on
//! PostgreSQL, through the ledger's book (what the capability calls) with random pairs
//! of 64 member accounts. The baseline, measured in the same run against the same
//! database, is the least a transfer must do: one transaction updating two balances, no
//! checks, no movements, no idempotency. The two alternate in rounds; the invariants are
//! checked at the end.
use anyhow::{bail, Context, Result};
use linli_bench::{mean, median};
use linli_host::capabilities::ledger::book::{check_invariants, Book, CurrencySettings, LedgerError, TransferRequest};
use linli_host::store::Store;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 64;

struct Args {
    clients: usize,
    seconds: u64,
    rounds: usize,
    write: Option<String>,
}

fn args() -> Result<Args> {
    let mut out = Args { clients: 64, seconds: 3, rounds: 3, write: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => out.clients = value()?.parse()?,
            "--seconds" => out.seconds = value()?.parse()?,
            "--rounds" => out.rounds = value()?.parse()?,
            "--write" => out.write = Some(value()?),
            other => bail!("unknown argument {other}; see the comment at the top of bench/src/bin/ledger.rs"),
        }
    }
    Ok(out)
}

/// A small, fast, per-client random sequence (the same every run).
fn sequence(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Run `clients` tasks for `seconds`, each calling `op(client, n)` in a loop; operations
/// that succeed per second.
async fn drive<F, Fut>(clients: usize, seconds: u64, op: F) -> Result<f64>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<bool>> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    if op(client, n).await? {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

struct Figures {
    baseline: f64,
    ledger: f64,
    ratio: f64,
    invariant_holds: bool,
    transfers: i64,
}

async fn measure(store: Store, args: &Args, round_tag: &str) -> Result<Figures> {
    let mut currencies = BTreeMap::new();
    currencies.insert("hours".to_string(), CurrencySettings { name: "时间币".into(), decimals: 2, floor: 0, cap: None });
    let book = Arc::new(Book { store: store.clone(), plugin_id: "bench-ledger".into(), tenant_id: "xingfu".into(), currencies });
    let issuer = book.open_account("hours", "pool:issuer").await?;
    book.set_limits(&issuer.id, -1_000_000_000_000, None).await?;
    let mut members = Vec::new();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_balances (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)").execute(&store.pool).await?;
    for n in 0..MEMBERS {
        let member = book.open_account("hours", &format!("user:m{n}")).await?;
        book.transfer(&TransferRequest {
            from: issuer.id.clone(),
            to: member.id.clone(),
            amount: 1_000_000,
            idempotency_key: format!("seed-{n}"),
            memo: String::new(),
        })
        .await?;
        members.push(member.id);
        sqlx::query("INSERT INTO bench_balances (id, balance) VALUES ($1, 1000000)").bind(n as i64).execute(&store.pool).await?;
    }
    let members = Arc::new(members);
    let (mut baselines, mut ledgers, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..args.rounds {
        let pool = store.pool.clone();
        let baseline = drive(args.clients, args.seconds, move |client, n| {
            let pool = pool.clone();
            async move {
                let mut next = sequence((client as u64) << 32 | n);
                let (a, b) = ((next() % MEMBERS as u64) as i64, (next() % MEMBERS as u64) as i64);
                if a == b {
                    return Ok(false);
                }
                let amount = (next() % 100 + 1) as i64;
                let mut tx = pool.begin().await?;
                for (id, delta) in if a < b { [(a, -amount), (b, amount)] } else { [(b, amount), (a, -amount)] } {
                    sqlx::query("UPDATE bench_balances SET balance = balance + $1 WHERE id = $2").bind(delta).bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }
        })
        .await?;
        let (book, members) = (book.clone(), members.clone());
        let tag = format!("{round_tag}-r{round}");
        let ledger = drive(args.clients, args.seconds, move |client, n| {
            let (book, members, tag) = (book.clone(), members.clone(), tag.clone());
            async move {
                let mut next = sequence((client as u64) << 32 | n);
                let (a, b) = ((next() % MEMBERS as u64) as usize, (next() % MEMBERS as u64) as usize);
                if a == b {
                    return Ok(false);
                }
                let request = TransferRequest {
                    from: members[a].clone(),
                    to: members[b].clone(),
                    amount: (next() % 100 + 1) as i64,
                    idempotency_key: format!("{tag}-{client}-{n}"),
                    memo: String::new(),
                };
                match book.transfer(&request).await {
                    Ok(_) => Ok(true),
                    Err(LedgerError::Limit(_)) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        })
        .await?;
        println!("    round {}: baseline {baseline:>7.0}/s | ledger {ledger:>7.0}/s | {:.2}×", round + 1, ledger / baseline);
        baselines.push(baseline);
        ledgers.push(ledger);
        ratios.push(ledger / baseline);
    }
    let problems = check_invariants(&store).await?;
    for problem in &problems {
        println!("    INVARIANT BROKEN: {problem}");
    }
    let transfers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transfers").fetch_one(&store.pool).await?;
    Ok(Figures { baseline: mean(&baselines), ledger: mean(&ledgers), ratio: median(&mut ratios), invariant_holds: problems.is_empty(), transfers })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let temp = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for (name, url) in [
        ("SQLite", Some(linli_host::store::sqlite_url(temp.path()))),
        (
            "PostgreSQL",
            linli_host::store::scratch_postgres_url(&linli_host::store::test_postgres_base())
                .await
                .map_err(|e| println!("PostgreSQL is not reachable ({e}); its row is left out"))
                .ok(),
        ),
    ] {
        let Some(url) = url else { continue };
        println!("{name}: {} clients, {} rounds of {} s per side, alternating", args.clients, args.rounds, args.seconds);
        let figures = measure(Store::open(&url, linli_host::store::vault::Keys::of_data_dir(temp.path())?).await?, &args, name).await?;
        println!(
            "    mean: baseline {:.0}/s, ledger {:.0}/s; ledger / baseline (median of rounds) {:.2}×; {} transfers, invariants {}",
            figures.baseline,
            figures.ledger,
            figures.ratio,
            figures.transfers,
            if figures.invariant_holds { "hold" } else { "BROKEN" }
        );
        rows.push((name, figures));
    }
    if rows.iter().any(|(_, f)| !f.invariant_holds) {
        bail!("an invariant was broken; see above");
    }
    if let Some(path) = args.write {
        let mut section = format!(
            "## P6 — ledger transfers — {date}\n\n\
             Command: `cargo run --release -p linli-bench --bin ledger -- --clients {c} --seconds {s} --rounds {r} --write bench/RESULTS.md`\n\
             Machine: {cores} cores; the clients run in the same process as the book, as the plugins' calls do. \
             Baseline: one transaction updating two balances (no checks, no movements, no idempotency key) against the same database.\n\n\
             | database | ledger transfers/s (mean of rounds) | baseline/s | ledger / baseline (median) | invariants after | target |\n|---|---|---|---|---|---|\n",
            date = linli_bench::today(),
            c = args.clients,
            s = args.seconds,
            r = args.rounds,
            cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        );
        for (name, f) in &rows {
            let target = if *name == "PostgreSQL" { "≥ 2,000/s" } else { "" };
            section.push_str(&format!("| {name} | {:.0} | {:.0} | {:.2}× | hold ({} transfers) | {target} |\n", f.ledger, f.baseline, f.ratio, f.transfers));
        }
        linli_bench::write_section(&path, "P6 ", &section)?;
        println!("wrote {path}");
    }
    Ok(())
}
