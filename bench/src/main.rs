//! `cargo run --release -p linli-bench -- [--rounds N] [--seconds N] [--connections N]
//!  [--iterations N] [--wrk] [--write FILE]`
//!
//! P2 instantiate + call of hello's /greet in process: median and p99 µs (a fresh
//!    instance each time, through the runtime's async front door), and the call alone on an
//!    installation that reuses its instances (`requests_per_instance`);
//! P1 over HTTP with a load generator: hello's /greet route, both ways, against the same
//!    logic as a native axum handler mounted in the same host, same run: throughput and p99
//!    ratios.
//!     The machine is noisy, so the three routes alternate in short rounds and each ratio
//!     reported is the median of the rounds' ratios.
//! P1b with `--wrk`: the same three routes driven by wrk from another process, reporting
//!     the host's CPU time per request (the in-process generator's work, alike for both
//!     routes, pulls the ratios above towards 1).
use anyhow::{Context, Result};
use axum::extract::Query;
use axum::routing::get;
use axum::Json;
use clap::Parser;
use linli_bench::{closed_loop, mean, median, percentile, Target};
use linli_host::runtime::PluginRequest;
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
    /// Instead of the in-process load generator, drive the three routes with wrk (a
    /// separate process) and report the host's own CPU time per request: the in-process
    /// generator's work, alike for both routes, is then not in the figures.
    #[arg(long)]
    wrk: bool,
}

/// Where hello is installed as usual (a fresh instance per request), and where its
/// installation lets one instance serve up to 10,000 requests of one caller.
const FRESH: &str = "xingfu";
const REUSED: &str = "heping";

/// The three routes both load generators drive, by name: the native handler, hello with a
/// fresh instance, hello with a reused one.
fn greet_urls(addr: std::net::SocketAddr) -> [(&'static str, String); 3] {
    [
        ("native", format!("http://{addr}/native/greet?name=bench")),
        ("fresh", format!("http://{addr}/t/{FRESH}/p/hello/greet?name=bench")),
        ("reused", format!("http://{addr}/t/{REUSED}/p/hello/greet?name=bench")),
    ]
}

fn greet_request(tenant: &str) -> PluginRequest {
    PluginRequest {
        method: "GET".into(),
        path: "/greet".into(),
        query: "name=bench".into(),
        headers: vec![("x-linli-tenant".into(), tenant.into())],
        body: vec![],
        tenant: tenant.into(),
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

/// Sequential requests straight into the runtime, through its async front door.
async fn in_process(host: &TestHost, tenant: &str, iterations: usize) -> Result<Latency> {
    let platform = host.server.as_ref().context("host")?.platform.clone();
    let plugin = platform.resolve("hello", tenant).context("hello is installed")?;
    let runtime = platform.runtime.clone();
    for _ in 0..1000 {
        runtime.invoke(plugin.clone(), greet_request(tenant)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let response = runtime.invoke(plugin.clone(), greet_request(tenant)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(started.elapsed());
        anyhow::ensure!(response.status == 200, "hello answered {}", response.status);
    }
    Ok(summarize(samples))
}

/// One route's rounds against the native handler's.
#[derive(Default)]
struct Comparison {
    throughput_ratios: Vec<f64>,
    p99_ratios: Vec<f64>,
    rates: Vec<f64>,
    p99s: Vec<f64>,
}

impl Comparison {
    fn add(&mut self, native: &linli_bench::Load, plugin: &linli_bench::Load) {
        self.throughput_ratios.push(plugin.per_second / native.per_second);
        self.p99_ratios.push(plugin.p99_ms / native.p99_ms);
        self.rates.push(plugin.per_second);
        self.p99s.push(plugin.p99_ms);
    }

    /// (mean req/s, mean p99 ms, median throughput ratio, median p99 ratio)
    fn summary(&mut self) -> (f64, f64, f64, f64) {
        (mean(&self.rates), mean(&self.p99s), median(&mut self.throughput_ratios), median(&mut self.p99_ratios))
    }
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
    host.install("hello", "0.1.0", FRESH, &["data"], json!({ "max_concurrency": 256 })).await?.expect_status(201)?;
    host.install("hello", "0.1.0", REUSED, &["data"], json!({ "max_concurrency": 256, "requests_per_instance": 10_000 })).await?.expect_status(201)?;

    // The same host's router with a native handler of the same logic beside the plugin.
    let state = host.server.as_ref().context("host")?.state.clone();
    let app = linli_host::api::router(state).route("/native/greet", get(native_greet));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    if args.wrk {
        return external_load(&args, addr, host).await;
    }

    println!("(a) instantiate + call, hello /greet, {} iterations", args.iterations);
    let call = in_process(&host, FRESH, args.iterations).await?;
    println!("    fresh instance: median {:.1} µs, p99 {:.1} µs", call.median_us, call.p99_us);
    let reused_call = in_process(&host, REUSED, args.iterations).await?;
    println!("    reused instance: median {:.1} µs, p99 {:.1} µs", reused_call.median_us, reused_call.p99_us);

    println!("(b) HTTP, {} connections, {} rounds of {} s per route, alternating", args.connections, args.rounds, args.seconds);
    let route = |url: String| -> Result<Arc<Vec<Target>>> { Ok(Arc::new(vec![Target::new(0, "GET", &url, None)?])) };
    let [(_, native_url), (_, fresh_url), (_, reused_url)] = greet_urls(addr);
    let (native_route, fresh_route, reused_route) = (route(native_url)?, route(fresh_url)?, route(reused_url)?);
    let phase = Duration::from_secs(args.seconds);
    let (mut fresh, mut reused, mut native_rates, mut native_p99s) = (Comparison::default(), Comparison::default(), Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        let native = closed_loop(native_route.clone(), args.connections, phase).await?;
        let plugin = closed_loop(fresh_route.clone(), args.connections, phase).await?;
        let warm = closed_loop(reused_route.clone(), args.connections, phase).await?;
        anyhow::ensure!(
            native.errors == 0 && plugin.errors == 0 && warm.errors == 0,
            "requests failed: {}",
            native.first_error.or(plugin.first_error).or(warm.first_error).unwrap_or_default()
        );
        println!(
            "    round {round}: native {:>7.0} req/s p99 {:.2} ms | fresh {:>7.0} req/s p99 {:.2} ms ({:.2}×) | reused {:>7.0} req/s p99 {:.2} ms ({:.2}×)",
            native.per_second,
            native.p99_ms,
            plugin.per_second,
            plugin.p99_ms,
            plugin.per_second / native.per_second,
            warm.per_second,
            warm.p99_ms,
            warm.per_second / native.per_second
        );
        fresh.add(&native, &plugin);
        reused.add(&native, &warm);
        native_rates.push(native.per_second);
        native_p99s.push(native.p99_ms);
    }
    let (native_rate, native_p99) = (mean(&native_rates), mean(&native_p99s));
    let (plugin_rate, plugin_p99, throughput_ratio, p99_ratio) = fresh.summary();
    let (reused_rate, reused_p99, reused_throughput_ratio, reused_p99_ratio) = reused.summary();
    println!("    fresh / native (median of rounds): throughput {throughput_ratio:.2}×, p99 {p99_ratio:.2}×");
    println!("    reused / native (median of rounds): throughput {reused_throughput_ratio:.2}×, p99 {reused_p99_ratio:.2}×");

    if let Some(path) = args.write {
        let date = linli_bench::today();
        let section = format!(
            "## P1, P2 — a plugin route against native axum; instantiate + call — {date}\n\n\
             Command: `cargo run --release -p linli-bench --bin linli-bench -- --rounds {r} --seconds {s} --connections {c} --iterations {i} --write {path}`\n\
             Machine: {cores} cores. The load generator runs in the same process as the host, for both routes alike.\n\n\
             Two installations of hello: the default, a fresh instance per request, and one with \
             `requests_per_instance = 10000` (an instance serves up to that many requests of one caller; \
             the load generator's requests are all anonymous, one caller).\n\n\
             | figure | fresh instance per request | instance reused | target |\n|---|---|---|---|\n\
             | P2 instantiate + call (reused: call), median | {dm:.1} µs | {rm:.1} µs | ≤ 5 µs |\n\
             | P2 instantiate + call (reused: call), p99 | {dp:.1} µs | {rp:.1} µs | |\n\
             | P1 hello plugin route, mean of rounds | {pr:.0} req/s, p99 {pp:.2} ms | {rr:.0} req/s, p99 {rl:.2} ms | |\n\
             | P1 plugin / native throughput, median of rounds | {tr:.2}× | {rtr:.2}× | ≥ 0.8× |\n\
             | P1 plugin / native p99, median of rounds | {lr:.2}× | {rlr:.2}× | ≤ 1.5× |\n\n\
             Baseline, the same logic as a native axum handler in the same router, mean of rounds: {nr:.0} req/s, p99 {np:.2} ms.\n",
            r = args.rounds,
            s = args.seconds,
            c = args.connections,
            i = args.iterations,
            cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            dm = call.median_us,
            dp = call.p99_us,
            rm = reused_call.median_us,
            rp = reused_call.p99_us,
            nr = native_rate,
            np = native_p99,
            pr = plugin_rate,
            pp = plugin_p99,
            rr = reused_rate,
            rl = reused_p99,
            tr = throughput_ratio,
            lr = p99_ratio,
            rtr = reused_throughput_ratio,
            rlr = reused_p99_ratio,
        );
        linli_bench::write_section(&path, "P1, P2 ", &section)?;
        println!("wrote {path}");
    }
    host.stop().await;
    Ok(())
}

/// P1 measured from outside: wrk drives each route in turn (rounds alternate, as in the
/// in-process run) and the figure is the host's CPU time per request, the plugin route's
/// against the native handler's. wrk's own CPU is not counted.
async fn external_load(args: &Args, addr: std::net::SocketAddr, host: TestHost) -> Result<()> {
    let routes = greet_urls(addr).map(|(name, url)| (name.to_string(), url, "self".to_string()));
    println!("P1 with wrk, {} connections, {} rounds of {} s per route: host CPU per request", args.connections, args.rounds, args.seconds);
    let linli_bench::WrkRounds { cpu_per_request: mut per_request, rates } =
        linli_bench::wrk_rounds(&routes, args.rounds, args.connections, args.seconds).await?;
    let [native, fresh, reused] = per_request.each_mut().map(|v| median(v));
    println!("    host CPU per request, median of rounds: native {native:.1} µs, fresh {fresh:.1} µs ({:.2}× native's throughput per CPU), reused {reused:.1} µs ({:.2}×)", native / fresh, native / reused);
    if let Some(path) = &args.write {
        let section = format!(
            "## P1b — P1 from outside: host CPU per request under wrk — {date}\n\n\
             Command: `target/release/linli-bench --wrk --rounds {r} --seconds {s} --connections {c} --write {path}`\n\n\
             wrk (one thread, {c} connections, a separate process) drives each route for {s} s in turn, {r} rounds; \
             the figure is the host process's CPU time (user + system, from /proc/self/stat) per completed request, \
             median of rounds. On 2 cores wrk competes with the host, so requests per second are not the host's \
             capacity; CPU per request is. The ratio is native CPU / plugin CPU, i.e. the plugin route's throughput \
             per core against the native handler's.\n\n\
             | route | host CPU per request | requests/s under wrk (mean) | native / route |\n|---|---|---|---|\n\
             | native axum handler | {native:.1} µs | {nr:.0} | 1.00× |\n\
             | hello, fresh instance per request | {fresh:.1} µs | {fr:.0} | {fx:.2}× |\n\
             | hello, instance reused | {reused:.1} µs | {rr:.0} | {rx:.2}× |\n\n\
             Goals of the issue \"Performance against the peers in one run\" (item 3): fresh ≥ 0.4× native, {fv}; \
             reused ≥ 0.6×, {rv}.\n",
            date = linli_bench::today(),
            r = args.rounds,
            s = args.seconds,
            c = args.connections,
            nr = mean(&rates[0]),
            fr = mean(&rates[1]),
            rr = mean(&rates[2]),
            fx = native / fresh,
            rx = native / reused,
            fv = if native / fresh >= 0.4 { "met" } else { "missed" },
            rv = if native / reused >= 0.6 { "met" } else { "missed" },
        );
        linli_bench::write_section(path, "P1b ", &section)?;
        println!("wrote {path}");
    }
    host.stop().await;
    Ok(())
}
