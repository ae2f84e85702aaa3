//! `cargo run --release -p linli-bench --bin import -- [--rounds N] [--per-grid N]
//!  [--write FILE]`
//!
//! P8: the demo county's base-data import (600 residents a grid: 3,000) through the host's
//! API on SQLite and on PostgreSQL, with every real name, ID number, phone number and birth
//! date sealed and the first three blind-indexed (issue 21). Measured in the same run, as
//! its baseline: the sealing alone — four AEAD seals and three blind indexes per resident
//! with the host's own vault — so the share of the import that encryption costs is a ratio of
//! two figures from one machine and one run.
use anyhow::{bail, Context, Result};
use linli_bench::{mean, median};
use linli_host::capabilities::base::demo;
use linli_host::store::vault::{RESIDENT_BIRTH_DATE, RESIDENT_ID_NUMBER, RESIDENT_NAME, RESIDENT_PHONE};
use linli_tests::{Backend, TestHost, DEMO_COUNTY};
use std::time::Instant;

struct Args {
    rounds: usize,
    per_grid: usize,
    write: Option<String>,
}

fn args() -> Result<Args> {
    let mut out = Args { rounds: 3, per_grid: 600, write: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => out.rounds = value()?.parse()?,
            "--per-grid" => out.per_grid = value()?.parse()?,
            "--write" => out.write = Some(value()?),
            other => bail!("unknown argument {other}; see the comment at the top of bench/src/bin/import.rs"),
        }
    }
    Ok(out)
}

/// One round on a fresh host: (residents per second of the import, residents per second of
/// sealing alone).
async fn round(backend: Backend, per_grid: usize) -> Result<Option<(usize, f64, f64)>> {
    let Some(host) = TestHost::start(backend).await? else { return Ok(None) };
    let server = host.server.as_ref().context("host running")?;
    let data = demo::generate(&server.platform.tenants(), DEMO_COUNTY, per_grid, 7);
    // (name, ID number, phone) of every generated resident.
    let rows: Vec<(String, String, String)> = data
        .residents
        .iter()
        .flat_map(|(_, csv)| {
            csv.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()).map(|f| (f[0].to_string(), f[1].to_string(), f[2].to_string())).collect::<Vec<_>>()
        })
        .collect();
    let started = Instant::now();
    for (tenant, csv) in &data.residents {
        let report = host.import_csv("residents", tenant, csv).await?;
        if report["status"] != "done" {
            bail!("import failed: {report}");
        }
    }
    let import = rows.len() as f64 / started.elapsed().as_secs_f64();
    let vault = &server.platform.store.vault;
    let started = Instant::now();
    for (n, (name, id_number, phone)) in rows.iter().enumerate() {
        let id = format!("resident-{n}");
        let birth_date = id_number.get(6..14).map(|d| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])).unwrap_or_default();
        std::hint::black_box(RESIDENT_NAME.seal(vault, &id, name)?);
        std::hint::black_box(RESIDENT_ID_NUMBER.seal(vault, &id, id_number)?);
        std::hint::black_box(RESIDENT_PHONE.seal(vault, &id, phone)?);
        std::hint::black_box(RESIDENT_BIRTH_DATE.seal(vault, &id, &birth_date)?);
    }
    let sealing = rows.len() as f64 / started.elapsed().as_secs_f64();
    host.stop().await;
    Ok(Some((rows.len(), import, sealing)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let mut table = String::new();
    for (name, backend) in [("SQLite", Backend::Sqlite), ("PostgreSQL", Backend::Postgres)] {
        let (mut imports, mut sealings, mut shares, mut count) = (vec![], vec![], vec![], 0);
        for _ in 0..args.rounds {
            let Some((n, import, sealing)) = round(backend, args.per_grid).await? else { break };
            count = n;
            imports.push(import);
            sealings.push(sealing);
            shares.push(import / sealing);
        }
        if imports.is_empty() {
            println!("{name}: not reachable; its row is left out");
            continue;
        }
        let share = median(&mut shares);
        println!(
            "{name}: {count} residents; import {:.0}/s, sealing alone {:.0}/s; sealing is {:.1}% of the import time",
            mean(&imports),
            mean(&sealings),
            share * 100.0
        );
        table.push_str(&format!("| {name} | {count} | {:.0} | {:.0} | {:.1}% |\n", mean(&imports), mean(&sealings), share * 100.0));
    }
    if let Some(path) = args.write {
        let section = format!(
            "## P8 — base-data import with sealed fields — {}\n\nCommand: `cargo run --release -p linli-bench --bin import -- --rounds {} --per-grid {} --write bench/RESULTS.md`\n\
             Machine: 2 cores. The demo county's residents imported through `POST /api/base/imports` on a fresh host per round (validation, duplicate check by blind index, one write transaction). \
             Baseline in the same run: sealing alone, four AEAD seals (AES-256-GCM: name, ID number, phone, birth date) and three HMAC blind indexes per resident with the host's vault, one thread. \
             Not measured: the import before sealing (it would need the previous build in the same run).\n\n\
             | database | residents | import residents/s (mean of rounds) | sealing alone residents/s | sealing's share of the import time (median) |\n|---|---|---|---|---|\n{table}",
            linli_bench::today(),
            args.rounds,
            args.per_grid
        );
        linli_bench::write_section(&path, "P8 ", &section)?;
    }
    Ok(())
}
