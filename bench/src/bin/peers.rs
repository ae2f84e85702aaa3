//! P11: Linli against the runtime a vendor would otherwise use. The very same standard
//! wasi:http component file (tests/plugins/wasi-hello built without its Linli route, so that
//! it imports WASI alone: `GET /hello`) is served by Linli (a fresh
//! instance per request, the default) and by `wasmtime serve` of wasmtime-cli 48 — the
//! version Linli embeds, which also makes a fresh instance per request — next to a native
//! axum handler answering the same bytes in the Linli process. wrk (a separate process)
//! drives each in turn, in alternating rounds; the figure is each server process's own CPU
//! time per request (on 2 cores wrk competes with the servers, so requests per second are
//! not their capacity; CPU per request is).
//!
//! `cargo run --release -p linli-bench --bin peers -- [--wasmtime PATH] [--rounds N]
//!  [--seconds N] [--connections N] [--write FILE]`
use anyhow::{Context, Result};
use axum::routing::get;
use clap::Parser;
use linli_bench::{mean, median, wrk_rounds, wrk_run, WrkRounds};
use linli_tests::{plugin_dir, target_dir, Backend, TestHost, Vendor};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Parser)]
struct Args {
    /// The wasmtime CLI (scripts/bench installs wasmtime-cli 48.0.8 into ~/.cache/linli/tools).
    #[arg(long)]
    wasmtime: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The component (scripts/bench builds it: `cargo build --release --target wasm32-wasip2
    /// -p wasi-hello --no-default-features --target-dir target/peers`).
    #[arg(long)]
    component: Option<PathBuf>,
    /// Rewrite the P11 section of this file.
    #[arg(long)]
    write: Option<String>,
}

/// The wasmtime version Linli embeds (Cargo.lock pins every wasmtime crate to it).
const WASMTIME_VERSION: &str = "48.0.8";

fn default_wasmtime() -> Result<PathBuf> {
    let home = std::env::var("HOME").context("HOME")?;
    Ok(PathBuf::from(home).join(format!(".cache/linli/tools/wasmtime-{WASMTIME_VERSION}/bin/wasmtime")))
}

/// `wasmtime serve` on `component` at a free port of 127.0.0.1; waits until it answers.
async fn wasmtime_serve(wasmtime: &PathBuf, component: &PathBuf) -> Result<(Child, String)> {
    let version = Command::new(wasmtime).arg("--version").output().with_context(|| format!("running {}", wasmtime.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    anyhow::ensure!(version.contains(WASMTIME_VERSION), "{} is {version}, not wasmtime {WASMTIME_VERSION} (the version Linli embeds)", wasmtime.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(wasmtime)
        .args(["serve", "--addr", &addr, "-Scli"])
        .arg(component)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting wasmtime serve")?;
    let url = format!("http://{addr}/hello");
    let started = Instant::now();
    loop {
        if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
            return Ok((child, url));
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "wasmtime serve did not answer {url} within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let wasmtime = match &args.wasmtime {
        Some(path) => path.clone(),
        None => default_wasmtime()?,
    };
    let component = match &args.component {
        Some(path) => path.clone(),
        None => target_dir().join("peers/wasm32-wasip2/release/wasi_hello.wasm"),
    };
    anyhow::ensure!(component.exists(), "{} is not built (scripts/bench builds it)", component.display());
    let (mut peer, peer_url) = wasmtime_serve(&wasmtime, &component).await?;
    let peer_pid = peer.id().to_string();

    let host = TestHost::start(Backend::Sqlite).await?.context("host")?;
    let vendor = Vendor::new("linli-tests")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package_from(&plugin_dir("wasi-hello"), &component, |_| {})?).await?.expect_status(201)?;
    host.install("wasi-hello", "0.1.0", "xingfu", &["data"], json!({ "max_concurrency": 256 })).await?.expect_status(201)?;
    let state = host.server.as_ref().context("host")?.state.clone();
    let app = linli_host::api::router(state).route("/native/hello", get(|| async { ([("content-type", "text/plain; charset=utf-8")], "hello") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // (label, url, the process whose CPU counts)
    let routes = [
        ("native".to_string(), format!("http://{addr}/native/hello"), "self".to_string()),
        ("Linli".to_string(), format!("http://{addr}/t/xingfu/p/wasi-hello/hello"), "self".to_string()),
        (format!("wasmtime serve {WASMTIME_VERSION}"), peer_url, peer_pid),
    ];
    println!("P11: {} rounds of {} s per server under wrk, {} connections", args.rounds, args.seconds, args.connections);
    for (_, url, pid) in &routes {
        let (url, pid) = (url.clone(), pid.clone());
        tokio::task::spawn_blocking(move || wrk_run(&url, 8, 1, &pid)).await??;
    }
    let WrkRounds { cpu_per_request: mut per_request, rates } = wrk_rounds(&routes, args.rounds, args.connections, args.seconds).await?;
    let _ = peer.kill();
    let _ = peer.wait();
    let [native, linli, peer_cpu] = per_request.each_mut().map(|v| median(v));
    let against_peer = peer_cpu / linli;
    println!(
        "    CPU per request, median of rounds: native {native:.1} µs, Linli {linli:.1} µs, wasmtime serve {peer_cpu:.1} µs; Linli's throughput per CPU {against_peer:.2}× wasmtime serve's, {:.2}× native's",
        native / linli
    );
    if let Some(path) = &args.write {
        let verdict = if against_peer >= 3.0 { "met" } else { "missed" };
        let section = format!(
            "## P11 — Linli against `wasmtime serve` on the same component — {date}\n\n\
             Command: `target/release/peers --rounds {r} --seconds {s} --connections {c} --write {path}` \
             (scripts/bench installs wasmtime-cli {WASMTIME_VERSION} with `cargo install --locked` into \
             `~/.cache/linli/tools/wasmtime-{WASMTIME_VERSION}` once)\n\n\
             The same file, `wasi-hello`'s component built without its Linli route (a standard \
             `wasi:http/incoming-handler` from the `wasi` crate, importing WASI alone), answers `GET /hello` from \
             Linli (installed as usual: a fresh instance per request) and from `wasmtime serve -Scli` (a fresh \
             instance per request too). The native handler answers the same bytes \
             from an axum route in Linli's process. wrk (one thread, {c} connections, a separate process) drives \
             each for {s} s in turn, {r} rounds; the figure is that server process's CPU time (user + system, \
             /proc/PID/stat) per completed request, median of rounds.\n\n\
             | server | CPU per request | requests/s under wrk (mean) | throughput per CPU against Linli |\n|---|---|---|---|\n\
             | native axum handler | {native:.1} µs | {nr:.0} | {nx:.2}× |\n\
             | Linli, fresh instance per request | {linli:.1} µs | {lr:.0} | 1.00× |\n\
             | `wasmtime serve` {WASMTIME_VERSION} | {peer_cpu:.1} µs | {pr:.0} | {px:.2}× |\n\n\
             Goal of issue 26 (Linli ≥ 3× `wasmtime serve`'s throughput per CPU on the same component, fresh \
             instances on both sides): {against_peer:.2}×, {verdict}.\n",
            date = linli_bench::today(),
            r = args.rounds,
            s = args.seconds,
            c = args.connections,
            nr = mean(&rates[0]),
            lr = mean(&rates[1]),
            pr = mean(&rates[2]),
            nx = linli / native,
            px = linli / peer_cpu,
        );
        linli_bench::write_section(path, "P11 ", &section)?;
        println!("wrote {path}");
    }
    host.stop().await;
    Ok(())
}
