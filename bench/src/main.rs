//! `cargo run --release -p linli-bench -- [--rounds N] [--seconds N] [--connections N]
//!  [--iterations N] [--write FILE]`
//!
//! P2 instantiate + call of hello's /greet in process: median and p99 µs (a fresh
//!    instance each time, through the runtime's async front door);
//! P1 over HTTP with a load generator: hello's /greet route against the same logic as a
//!    native axum handler mounted in the same host, same run: throughput and p99 ratios.
//!     The machine is noisy, so the two alternate in short rounds and the ratio reported
//!     is the median of the rounds' ratios.
use anyhow::{Context, Result};
use clap::Parser;
use axum::extract::Query;
use axum::routing::get;
use axum::Json;
use linli_bench::{closed_loop, median, percentile, Target};
use linli_host::runtime::{LoadedPlugin, PluginRequest};
use linli_tests::{Backend, TestHost, Vendor};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../plugins/hello/src/greeting.rs"]
mod greeting;

/// P1 and P2: hello's /greet as a plugin route and as a native axum handler.
#[derive(clap::Parser)]
struct Args {
    /// Alternating rounds of the two routes.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Seconds of each route in each round.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// Clients of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Instantiate + call repetitions for P2.
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    /// Rewrite the P1, P2 section of this file.
    #[arg(long)]
    write: Option<String>,
}

fn greet_request() -> PluginRequest {
    PluginRequest {
        method: "GET".into(),
        path: "/greet".into(),
        query: "name=bench".into(),
        headers: vec![("x-linli-tenant".into(), "xingfu".into())],
        body: vec![],
        tenant: "xingfu".into(),
        request_id: "bench".into(),
        user: None,
    }
}

struct Latency {
    median_us: f64,
    p99_us: f64,
}

fn summarize(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    Latency { median_us: percentile(&samples, 0.5).as_secs_f64() * 1e6, p99_us: percentile(&samples, 0.99).as_secs_f64() * 1e6 }
}

/// Sequential requests straight into the runtime: a fresh instance each time.
async fn in_process(host: &TestHost, plugin: Arc<LoadedPlugin>, iterations: usize) -> Result<Latency> {
    let runtime = host.server.as_ref().context("host")?.platform.runtime.clone();
    for _ in 0..1000 {
        runtime.invoke(plugin.clone(), greet_request()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let response = runtime.invoke(plugin.clone(), greet_request()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(started.elapsed());
        anyhow::ensure!(response.status == 200, "hello answered {}", response.status);
    }
    Ok(summarize(samples))
}

async fn native_greet(Query(q): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
    Json(greeting::greeting(q.get("name").map(String::as_str).unwrap_or_default()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let host = TestHost::start(Backend::Sqlite).await?.context("host")?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package("hello", |_| {})?).await?.expect_status(201)?;
    host.install("hello", "0.1.0", "xingfu", &["data"], json!({ "max_concurrency": 256 })).await?.expect_status(201)?;
    let platform = host.server.as_ref().context("host")?.platform.clone();
    let plugin = platform.resolve("hello", "xingfu").context("hello is installed")?;

    // The same host's router with a native handler of the same logic beside the plugin.
    let state = host.server.as_ref().context("host")?.state.clone();
    let app = linli_host::api::router(state)
        .route("/native/greet", get(native_greet));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!("(a) instantiate + call, hello /greet, {} iterations", args.iterations);
    let call = in_process(&host, plugin, args.iterations).await?;
    println!("    median {:.1} µs, p99 {:.1} µs", call.median_us, call.p99_us);

    println!("(b) HTTP, {} connections, {} rounds of {} s per route, alternating", args.connections, args.rounds, args.seconds);
    let native_route = Arc::new(vec![Target::new(0, "GET", &format!("http://{addr}/native/greet?name=bench"), None)?]);
    let plugin_route = Arc::new(vec![Target::new(0, "GET", &format!("http://{addr}/t/xingfu/p/hello/greet?name=bench"), None)?]);
    let phase = Duration::from_secs(args.seconds);
    let (mut throughput_ratios, mut p99_ratios, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        let native = closed_loop(native_route.clone(), args.connections, phase).await?;
        let plugin = closed_loop(plugin_route.clone(), args.connections, phase).await?;
        anyhow::ensure!(native.errors == 0 && plugin.errors == 0, "requests failed: {}", native.first_error.or(plugin.first_error).unwrap_or_default());
        println!(
            "    round {round}: native {:>7.0} req/s p99 {:.2} ms ({} req) | plugin {:>7.0} req/s p99 {:.2} ms ({} req) | {:.2}×",
            native.per_second, native.p99_ms, native.requests, plugin.per_second, plugin.p99_ms, plugin.requests, plugin.per_second / native.per_second
        );
        throughput_ratios.push(plugin.per_second / native.per_second);
        p99_ratios.push(plugin.p99_ms / native.p99_ms);
        rounds.push((native, plugin));
    }
    let throughput_ratio = median(&mut throughput_ratios);
    let p99_ratio = median(&mut p99_ratios);
    let mean = |f: &dyn Fn(&(linli_bench::Load, linli_bench::Load)) -> f64| rounds.iter().map(f).sum::<f64>() / rounds.len() as f64;
    let (native_rate, native_p99) = (mean(&|r| r.0.per_second), mean(&|r| r.0.p99_ms));
    let (plugin_rate, plugin_p99) = (mean(&|r| r.1.per_second), mean(&|r| r.1.p99_ms));
    println!("    plugin / native (median of rounds): throughput {throughput_ratio:.2}×, p99 {p99_ratio:.2}×");

    if let Some(path) = args.write {
        let date = linli_bench::today();
        let section = format!(
            "## P1, P2 — a plugin route against native axum; instantiate + call — {date}\n\n\
             Command: `cargo run --release -p linli-bench --bin linli-bench -- --rounds {r} --seconds {s} --connections {c} --iterations {i} --write {path}`\n\
             Machine: {cores} cores. The load generator runs in the same process as the host, for both routes alike.\n\n\
             | figure | value | target |\n|---|---|---|\n\
             | P2 instantiate + call, median | {dm:.1} µs | ≤ 5 µs |\n\
             | P2 instantiate + call, p99 | {dp:.1} µs | |\n\
             | P1 baseline: native axum handler, mean of rounds | {nr:.0} req/s, p99 {np:.2} ms | |\n\
             | P1 hello plugin route, mean of rounds | {pr:.0} req/s, p99 {pp:.2} ms | |\n\
             | P1 plugin / native throughput, median of rounds | {tr:.2}× | ≥ 0.8× |\n\
             | P1 plugin / native p99, median of rounds | {lr:.2}× | ≤ 1.5× |\n",
            r = args.rounds, s = args.seconds, c = args.connections, i = args.iterations,
            cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            dm = call.median_us, dp = call.p99_us,
            nr = native_rate, np = native_p99, pr = plugin_rate, pp = plugin_p99,
            tr = throughput_ratio, lr = p99_ratio,
        );
        linli_bench::write_section(&path, "P1, P2 ", &section)?;
        println!("wrote {path}");
    }
    host.stop().await;
    Ok(())
}
