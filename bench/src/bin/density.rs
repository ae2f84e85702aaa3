//! P4 — density: `--communities` communities (in streets of 20) × the 5 reference plugins,
//! each plugin installed separately at each community, in one `linli serve` process
//! (SQLite, no broker). Resident memory (VmRSS) of the idle host is the baseline; then with
//! one installation of each plugin, then with all of them after every installation has
//! served a request (its instance created, its store opened).
//!
//! `cargo run --release -p linli-bench --bin density -- [--communities 200] [--write FILE]`
use anyhow::{Context, Result};
use clap::Parser;
use linli_bench::write_section;
use linli_tests::demo::REFERENCE_PLUGINS;
use linli_tests::serve::Serve;
use linli_tests::{database_url, Backend, Vendor};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Communities to install every reference plugin at (installations = 5 × this).
    #[arg(long, default_value_t = 200)]
    communities: usize,
    /// Rewrite the P4 section of this file.
    #[arg(long)]
    write: Option<String>,
}

const COUNTY: &str = "bench-county";

/// A request each plugin answers without a session (or refuses itself, which still
/// runs its instance): proof that the installation serves.
fn touch_path(plugin: &str) -> &'static str {
    match plugin {
        "hello" => "greet?name=density",
        "legal-aid" => "categories",
        "time-bank" => "categories",
        "elderly-care" => "settings",
        _ => "quote?from=2026-12-01T09:00&to=2026-12-01T17:00",
    }
}

/// Everything the package asks for, scopes included.
fn requested_grants(manifest: &Value) -> Vec<String> {
    let mut grants = Vec::new();
    for capability in manifest["capabilities"].as_array().into_iter().flatten() {
        let name = capability["name"].as_str().unwrap_or_default();
        grants.push(name.to_string());
        for scope in capability["scopes"].as_array().into_iter().flatten() {
            grants.push(format!("{name}:{}", scope.as_str().unwrap_or_default()));
        }
    }
    grants
}

fn community(n: usize) -> String {
    format!("st{:02}-c{:02}", n / 20 + 1, n % 20 + 1)
}

fn tree(communities: usize) -> Value {
    let streets: Vec<Value> = (0..communities.div_ceil(20))
        .map(|s| {
            let children: Vec<Value> =
                (s * 20..((s + 1) * 20).min(communities)).map(|n| json!({ "id": community(n), "name": format!("社区{}", n + 1) })).collect();
            json!({ "id": format!("st{:02}", s + 1), "name": format!("街道{}", s + 1), "children": children })
        })
        .collect();
    json!({ "tenants": [{ "id": COUNTY, "name": "密度测试县", "children": streets }] })
}

async fn touch(serve: &Serve, community: &str, plugin: &str) -> Result<()> {
    let reply = serve.http.get(format!("{}/t/{community}/p/{plugin}/{}", serve.url(), touch_path(plugin))).send().await?;
    let status = reply.status().as_u16();
    anyhow::ensure!(status < 500 && status != 404, "{plugin} at {community} answered {status}: {}", reply.text().await.unwrap_or_default());
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let url = database_url(Backend::Sqlite, work.path()).await?.context("SQLite")?;
    let mut serve = Serve::new(work.path(), &url)?;
    serve.spawn().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle, _) = serve.memory_kib()?;
    println!("P4: idle host {:.0} MiB resident", mib(idle));

    serve.admin(reqwest::Method::POST, "/tenants", Some(tree(args.communities))).await?;
    let vendor = Vendor::new("linli")?;
    serve.admin(reqwest::Method::POST, "/keys", Some(json!({ "county": COUNTY, "vendor": vendor.name, "public_key": vendor.public_key() }))).await?;
    let mut plugins = Vec::new();
    for plugin in REFERENCE_PLUGINS {
        let uploaded = serve.upload(COUNTY, vendor.package(plugin, |_| {})?).await?;
        plugins.push((plugin, requested_grants(&uploaded["manifest"])));
    }

    let started = Instant::now();
    let (mut after_one_each, mut installed) = (0, 0usize);
    for n in 0..args.communities {
        let tenant = community(n);
        for (plugin, grants) in &plugins {
            serve
                .admin(reqwest::Method::POST, "/installations", Some(json!({ "plugin_id": plugin, "version": "0.1.0", "tenant_id": tenant, "grants": grants })))
                .await
                .with_context(|| format!("installing {plugin} at {tenant}"))?;
            touch(&serve, &tenant, plugin).await?;
            installed += 1;
        }
        if n == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            after_one_each = serve.memory_kib()?.0;
            println!("    one installation of each plugin: {:.0} MiB", mib(after_one_each));
        }
        if (n + 1) % 20 == 0 {
            println!("    {installed} installations, {:.0} MiB, {:.0} s", mib(serve.memory_kib()?.0), started.elapsed().as_secs_f64());
        }
    }
    let install_seconds = started.elapsed().as_secs_f64();
    // A second pass: every installation serves again, as a busy day would have it.
    for n in 0..args.communities {
        for (plugin, _) in &plugins {
            touch(&serve, &community(n), plugin).await?;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (all, peak) = serve.memory_kib()?;
    // Signed: the allocator may give back more than the further installations take.
    let per_installation = (all as f64 - after_one_each as f64) / installed.saturating_sub(plugins.len()).max(1) as f64;
    println!(
        "    {installed} installations: {:.0} MiB resident (peak {:.0} MiB), {per_installation:+.1} KiB per further installation, {:.2}× the idle host; installed and served in {install_seconds:.0} s",
        mib(all),
        mib(peak),
        all as f64 / idle as f64
    );
    serve.stop()?;

    if let Some(path) = args.write {
        let section = format!(
            "## P4 — density: {installed} installations in one host — {date}\n\n\
             Command: `cargo run --release -p linli-bench --bin density -- --communities {c} --write {path}`\n\
             `linli serve` in its own process (SQLite, no broker); {c} communities in {streets} streets, each with its own installation of \
             all 5 reference plugins (every requested capability granted); every installation served two requests. Resident memory \
             from /proc (VmRSS).\n\n\
             | state | resident memory | ratio to idle | target |\n|---|---|---|---|\n\
             | baseline: idle host, nothing installed | {idle:.0} MiB | 1.00× | |\n\
             | one installation of each plugin | {one:.0} MiB | {one_ratio:.2}× | |\n\
             | {installed} installations | {all:.0} MiB (peak {peak:.0} MiB) | {all_ratio:.2}× | ≤ 512 MB |\n\n\
             Each further installation: {per_installation:+.1} KiB (from one of each to all). Installing them one by one through the admin API and serving each: \
             {install_seconds:.0} s.\n",
            date = linli_bench::today(),
            c = args.communities,
            streets = args.communities.div_ceil(20),
            idle = mib(idle),
            one = mib(after_one_each),
            one_ratio = after_one_each as f64 / idle as f64,
            all = mib(all),
            peak = mib(peak),
            all_ratio = all as f64 / idle as f64,
        );
        write_section(&path, "P4 ", &section)?;
        println!("wrote {path}");
    }
    Ok(())
}
