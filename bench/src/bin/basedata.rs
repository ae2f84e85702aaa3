//! P10 — base data at county scale: a county of `--residents` (400,000) against the same
//! county with `--small` (3,000) residents, on SQLite and on PostgreSQL, in one run.
//!
//! Both counties have the same tree (`--streets` × `--communities` × `--grids`: 12 × 10 × 6 =
//! 720 grids) and residents generated as the demo's (ages, households, tags). The residents
//! go in through `POST /api/base/imports` in county-wide files of at most `--file-rows`
//! rows; the import rate is the big county's rows over the time from the first upload to the
//! last report of `done`. Then, as the platform operator, each request below is sent
//! `--samples` times one after another (after two unmeasured ones) and its p50 taken:
//!
//! - the county's residents, first page (50), and a page far into the list (its cursor);
//! - the county's lone elders aged 80+ (`tags=独居老人&min_age=80`) and disabled residents
//!   (`tags=残疾`);
//! - one grid's residents; one resident found by whole name in the county;
//! - the county's dashboard.
//!
//! `cargo run --release -p linli-bench --bin basedata -- [--residents 400000] [--small 3000]
//!  [--samples 30] [--write FILE]`
use anyhow::{bail, Context, Result};
use clap::Parser;
use linli_bench::{percentile, write_section};
use linli_host::capabilities::base::demo;
use linli_tests::{Backend, TestHost};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Residents of the big county.
    #[arg(long, default_value_t = 400_000)]
    residents: usize,
    /// Residents of the small county, the baseline.
    #[arg(long, default_value_t = 3_000)]
    small: usize,
    #[arg(long, default_value_t = 12)]
    streets: usize,
    /// Communities per street.
    #[arg(long, default_value_t = 10)]
    communities: usize,
    /// Grids per community.
    #[arg(long, default_value_t = 6)]
    grids: usize,
    /// Rows per imported file (the import takes files up to 32 MiB).
    #[arg(long, default_value_t = 100_000)]
    file_rows: usize,
    /// Requests measured per figure.
    #[arg(long, default_value_t = 30)]
    samples: usize,
    /// Only this database (`sqlite` or `postgres`); both when left out.
    #[arg(long)]
    only: Option<String>,
    /// Rewrite the P10 section of this file.
    #[arg(long)]
    write: Option<String>,
}

const COUNTY: &str = "p10-county";

/// The county's tenant document: streets `s01…`, communities `s01-c01…`, grids `s01-c01-g1…`.
fn tree(args: &Args) -> Value {
    let streets: Vec<Value> = (1..=args.streets)
        .map(|s| {
            let communities: Vec<Value> = (1..=args.communities)
                .map(|c| {
                    let id = format!("s{s:02}-c{c:02}");
                    let grids: Vec<Value> =
                        (1..=args.grids).map(|g| json!({ "id": format!("{id}-g{g}"), "name": format!("第{s}街道第{c}社区第{g}网格") })).collect();
                    json!({ "id": id, "name": format!("第{s}街道第{c}社区"), "children": grids })
                })
                .collect();
            json!({ "id": format!("s{s:02}"), "name": format!("第{s}街道"), "children": communities })
        })
        .collect();
    json!({ "tenants": [{ "id": COUNTY, "name": "县域规模测试县", "children": streets }] })
}

/// What one county measured: import rows/s, then (figure, p50 ms) in FIGURES order.
struct Measured {
    residents: usize,
    import_rows_per_second: f64,
    p50_ms: Vec<f64>,
}

const FIGURES: &[&str] = &[
    "residents, first page",
    "residents, a page deep in the list",
    "lone elders 80+ (tags + min_age)",
    "disabled residents (one tag)",
    "one grid's residents",
    "one resident by whole name",
    "dashboard",
];
/// Goals (ms) of the issue, per figure; None where it sets none.
const GOALS_MS: &[Option<f64>] = &[Some(30.0), Some(30.0), Some(30.0), Some(30.0), Some(30.0), Some(30.0), Some(50.0)];

/// Import `residents` (spread evenly over the grids) in county-wide files; rows per second.
async fn import(host: &TestHost, args: &Args, residents: usize) -> Result<(usize, f64, String)> {
    let server = host.server.as_ref().context("host running")?;
    let tree = server.platform.tenants();
    let grids = args.streets * args.communities * args.grids;
    let data = demo::generate(&tree, COUNTY, residents.div_ceil(grids), 26);
    let mut rows: Vec<&str> = Vec::new();
    for (_, csv) in &data.residents {
        rows.extend(csv.lines().skip(1));
    }
    let header = data.residents.first().and_then(|(_, csv)| csv.lines().next()).context("generated residents")?.to_string();
    // A name that is in the data, for the look-up by name.
    let name = rows.get(rows.len() / 2).and_then(|r| r.split(',').next()).context("a row")?.to_string();
    let started = Instant::now();
    for (n, chunk) in rows.chunks(args.file_rows).enumerate() {
        let csv = format!("{header}\n{}\n", chunk.join("\n"));
        let report = import_file(host, &csv).await?;
        println!("    file {}: {} rows, {:.0} s since the first", n + 1, chunk.len(), started.elapsed().as_secs_f64());
        if report["status"] != "done" {
            bail!("the import did not finish: {report}");
        }
    }
    Ok((rows.len(), rows.len() as f64 / started.elapsed().as_secs_f64(), name))
}

/// Upload one file and wait for its outcome (a big file takes a while: no 30 s limit here).
async fn import_file(host: &TestHost, csv: &str) -> Result<Value> {
    let started = host
        .client
        .post(format!("{}/api/base/imports?kind=residents&tenant={COUNTY}", host.url))
        .bearer_auth(&host.admin_token)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await?;
    let report: Value = started.error_for_status()?.json().await?;
    let id = report["id"].as_str().context("import id")?.to_string();
    let (started, mut checked) = (Instant::now(), None);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = host.operator().get(&format!("/api/base/imports/{id}")).await?.expect_status(200)?.json();
        if now["status"] == "writing" && checked.is_none() {
            checked = Some(started.elapsed());
        }
        if !matches!(now["status"].as_str(), Some("validating" | "writing")) {
            let checked = checked.unwrap_or_default().as_secs_f64();
            println!("      checked in {checked:.1} s, written in {:.1} s", started.elapsed().as_secs_f64() - checked);
            return Ok(now);
        }
    }
}

/// p50 of `samples` GETs of `path` (after two unmeasured), in ms; the reply must be 200.
async fn p50(host: &TestHost, path: &str, samples: usize) -> Result<f64> {
    let operator = host.operator();
    let mut times = Vec::with_capacity(samples);
    for n in 0..samples + 2 {
        let started = Instant::now();
        let reply = operator.get(path).await?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        if reply.status != 200 {
            bail!("{path}: {} {}", reply.status, reply.text);
        }
        if n >= 2 {
            times.push(took);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(percentile(&times, 0.5))
}

async fn county(backend: Backend, args: &Args, residents: usize) -> Result<Option<Measured>> {
    let Some(host) = TestHost::start(backend).await? else { return Ok(None) };
    host.admin("POST", "/tenants", Some(tree(args))).await?.expect_status(200)?;
    let (imported, rate, name) = import(&host, args, residents).await?;
    println!("  {imported} residents imported at {rate:.0} rows/s");
    // The cursor of a page far into the list: follow `next_cursor` a few pages.
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = host.operator().get(&format!("/api/base/residents?tenant={COUNTY}&cursor={cursor}")).await?.expect_status(200)?.json();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let grid = format!("s{:02}-c{:02}-g1", args.streets.div_ceil(2), args.communities.div_ceil(2));
    let encode = |s: &str| url_escape(s);
    let paths = [
        format!("/api/base/residents?tenant={COUNTY}"),
        format!("/api/base/residents?tenant={COUNTY}&cursor={cursor}"),
        format!("/api/base/residents?tenant={COUNTY}&tags={}&min_age=80", encode("独居老人")),
        format!("/api/base/residents?tenant={COUNTY}&tags={}", encode("残疾")),
        format!("/api/base/residents?tenant={grid}"),
        format!("/api/base/residents?tenant={COUNTY}&name={}", encode(&name)),
        format!("/api/dashboard?tenant={COUNTY}"),
    ];
    let mut p50_ms = Vec::new();
    for (figure, path) in FIGURES.iter().zip(&paths) {
        let ms = p50(&host, path, args.samples).await?;
        println!("    {figure}: p50 {ms:.1} ms");
        p50_ms.push(ms);
    }
    let dashboard = host.operator().get(&format!("/api/dashboard?tenant={COUNTY}")).await?.json();
    let counted = dashboard["totals"]["residents"].as_f64().unwrap_or(0.0) as usize;
    if counted != imported {
        bail!("the dashboard counts {counted} residents of the {imported} imported");
    }
    host.stop().await;
    Ok(Some(Measured { residents: imported, import_rows_per_second: rate, p50_ms }))
}

/// Percent-encoding for a query value (UTF-8 bytes outside the unreserved set).
fn url_escape(value: &str) -> String {
    value.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn verdict(value: f64, goal: Option<f64>, lower_is_better: bool) -> &'static str {
    match goal {
        None => "",
        Some(goal) if (lower_is_better && value <= goal) || (!lower_is_better && value >= goal) => "met",
        Some(_) => "**missed**",
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut table = String::new();
    for (name, backend, key) in [("SQLite", Backend::Sqlite, "sqlite"), ("PostgreSQL", Backend::Postgres, "postgres")] {
        if args.only.as_deref().is_some_and(|only| only != key) {
            continue;
        }
        println!("P10 on {name}: the county of {} residents", args.small);
        let Some(small) = county(backend, &args, args.small).await? else {
            println!("{name}: not reachable; its rows are left out");
            continue;
        };
        println!("P10 on {name}: the county of {} residents", args.residents);
        let big = county(backend, &args, args.residents).await?.context("the database went away")?;
        for ((figure, (s, b)), goal) in FIGURES.iter().zip(small.p50_ms.iter().zip(&big.p50_ms)).zip(GOALS_MS) {
            table.push_str(&format!(
                "| {name} | {figure} | {s:.1} ms | {b:.1} ms | {:.2}× | {} {} |\n",
                b / s,
                goal.map(|g| format!("≤ {g:.0} ms")).unwrap_or_default(),
                verdict(*b, *goal, true)
            ));
        }
        table.push_str(&format!(
            "| {name} | import, rows/s | {:.0} | {:.0} | {:.2}× | ≥ 10000 {} |\n",
            small.import_rows_per_second,
            big.import_rows_per_second,
            big.import_rows_per_second / small.import_rows_per_second,
            verdict(big.import_rows_per_second, Some(10_000.0), false)
        ));
        println!(
            "  import: {:.0} rows/s ({} residents) against {:.0} rows/s ({})",
            big.import_rows_per_second, big.residents, small.import_rows_per_second, small.residents
        );
    }
    if let Some(path) = args.write {
        let section = format!(
            "## P10 — base data at county scale — {}\n\n\
             Command: `target/release/basedata --residents {} --small {} --samples {} --write bench/RESULTS.md`\n\
             Machine: 2 cores. Two hosts per database, each on a fresh database, with the same tree ({} streets × {} communities × {} grids); residents generated as the demo's \
             and imported through `POST /api/base/imports` in county-wide files of at most {} rows. Figures are the p50 of {} requests sent one after another as the platform operator \
             (the load generator in the same process); the ratio is the big county's against the small one's in the same run.\n\n\
             | database | figure | {} residents | {} residents | ratio | goal at the big county |\n|---|---|---|---|---|---|\n{table}\n\
             What keeps a page flat: cursors, never offsets; a county- or street-wide list read in id order, skipping residents elsewhere, a grid's or a community's through its nodes' index; \
             a tag filter through `base_resident_tags`; the totals and the dashboard's residents, elders and lone elders from `base_resident_counts`, which the import keeps, held in memory \
             until the date or a write moves them. A whole name is looked up by its blind index; the demo's names repeat (25 surnames, 40 given names), so one name is hundreds of residents here. \
             The import's time is the database's writing: on PostgreSQL the host process is busy about a quarter of it; the rest is PostgreSQL with its stock settings (128 MB of shared buffers \
             for indexes of random keys, most of them blind indexes), so its rate here sits near the goal and moves with the run.\n",
            linli_bench::today(),
            args.residents,
            args.small,
            args.samples,
            args.streets,
            args.communities,
            args.grids,
            args.file_rows,
            args.samples,
            args.small,
            args.residents,
        );
        write_section(&path, "P10 ", &section)?;
    }
    Ok(())
}
