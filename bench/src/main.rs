//! `cargo run --release -p linli-bench -- [--rounds N] [--seconds N] [--connections N]
//!  [--iterations N] [--write FILE]`
//!
//! (a) instantiate + call of hello's /greet in process: median and p99 µs, on the calling
//!     thread and through the async front door (adds the hop to a blocking thread);
//! (b) over HTTP with a load generator: hello's /greet route against the same logic as a
//!     native axum handler mounted in the same host, same run: throughput and p99 ratios.
//!     The machine is noisy, so the two alternate in short rounds and the ratio reported
//!     is the median of the rounds' ratios.
use anyhow::{Context, Result};
use axum::extract::Query;
use axum::routing::get;
use axum::Json;
use linli_host::runtime::{LoadedPlugin, PluginRequest};
use linli_tests::{Backend, TestHost, Vendor};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../plugins/hello/src/greeting.rs"]
mod greeting;

struct Args {
    rounds: usize,
    seconds: u64,
    connections: usize,
    iterations: usize,
    write: Option<String>,
}

fn args() -> Result<Args> {
    let mut out = Args { rounds: 5, seconds: 2, connections: 32, iterations: 20_000, write: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => out.rounds = value()?.parse()?,
            "--seconds" => out.seconds = value()?.parse()?,
            "--connections" => out.connections = value()?.parse()?,
            "--iterations" => out.iterations = value()?.parse()?,
            "--write" => out.write = Some(value()?),
            other => anyhow::bail!("unknown argument {other}; see the comment at the top of bench/src/main.rs"),
        }
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
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

struct Load {
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// `connections` clients, each sending one request after another for `seconds`.
async fn load(url: String, connections: usize, seconds: u64) -> Result<Load> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    // Parsed once: the generator shares the two cores with the host, so it should cost
    // as little as it can per request.
    let url = reqwest::Url::parse(&url)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match client.get(url.clone()).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            samples.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (samples, e) = w.await?;
        all.extend(samples);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Ok(Load {
        requests: all.len() as u64,
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5).as_secs_f64() * 1e3,
        p99_ms: percentile(&all, 0.99).as_secs_f64() * 1e3,
        errors,
    })
}

async fn native_greet(Query(q): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
    Json(greeting::greeting(q.get("name").map(String::as_str).unwrap_or_default()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
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
    let native_url = format!("http://{addr}/native/greet?name=bench");
    let plugin_url = format!("http://{addr}/t/xingfu/p/hello/greet?name=bench");
    let (mut throughput_ratios, mut p99_ratios, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        let native = load(native_url.clone(), args.connections, args.seconds).await?;
        let plugin = load(plugin_url.clone(), args.connections, args.seconds).await?;
        anyhow::ensure!(native.errors == 0 && plugin.errors == 0, "requests failed: native {}, plugin {}", native.errors, plugin.errors);
        println!(
            "    round {round}: native {:>7.0} req/s p99 {:.2} ms ({} req) | plugin {:>7.0} req/s p99 {:.2} ms ({} req) | {:.2}×",
            native.per_second, native.p99_ms, native.requests, plugin.per_second, plugin.p99_ms, plugin.requests, plugin.per_second / native.per_second
        );
        throughput_ratios.push(plugin.per_second / native.per_second);
        p99_ratios.push(plugin.p99_ms / native.p99_ms);
        rounds.push((native, plugin));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let throughput_ratio = median(&mut throughput_ratios);
    let p99_ratio = median(&mut p99_ratios);
    let mean = |f: &dyn Fn(&(Load, Load)) -> f64| rounds.iter().map(f).sum::<f64>() / rounds.len() as f64;
    let native = Load { per_second: mean(&|r| r.0.per_second), p99_ms: mean(&|r| r.0.p99_ms), p50_ms: mean(&|r| r.0.p50_ms), requests: 0, errors: 0 };
    let plugin = Load { per_second: mean(&|r| r.1.per_second), p99_ms: mean(&|r| r.1.p99_ms), p50_ms: mean(&|r| r.1.p50_ms), requests: 0, errors: 0 };
    println!("    plugin / native (median of rounds): throughput {throughput_ratio:.2}×, p99 {p99_ratio:.2}×");

    if let Some(path) = args.write {
        let date = linli_bench::today();
        let section = format!(
            "## Foundation (issue 3) — {date}\n\n\
             Command: `cargo run --release -p linli-bench -- --rounds {r} --seconds {s} --connections {c} --iterations {i} --write bench/RESULTS.md`\n\
             Machine: {cores} cores. The load generator runs in the same process as the host, for both routes alike.\n\n\
             | figure | value | target |\n|---|---|---|\n\
             | (a) instantiate + call, median | {dm:.1} µs | ≤ 10 µs |\n\
             | (a) instantiate + call, p99 | {dp:.1} µs | |\n\
             | (b) native axum handler, mean of rounds | {nr:.0} req/s, p99 {np:.2} ms | baseline |\n\
             | (b) hello plugin route, mean of rounds | {pr:.0} req/s, p99 {pp:.2} ms | |\n\
             | (b) plugin / native throughput, median of rounds | {tr:.2}× | ≥ 0.7× |\n\
             | (b) plugin / native p99, median of rounds | {lr:.2}× | |\n",
            r = args.rounds, s = args.seconds, c = args.connections, i = args.iterations,
            cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            dm = call.median_us, dp = call.p99_us,
            nr = native.per_second, np = native.p99_ms, pr = plugin.per_second, pp = plugin.p99_ms,
            tr = throughput_ratio, lr = p99_ratio,
        );
        linli_bench::write_section(&path, "Foundation (issue 3)", &section)?;
        println!("wrote {path}");
    }
    host.stop().await;
    Ok(())
}
