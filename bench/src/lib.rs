//! What the benchmarks share: the load generator (closed and open loop) and writing
//! their sections of bench/RESULTS.md.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HEADER: &str = "# Benchmark results\n\n`scripts/bench` runs every benchmark and rewrites its figure section (P1, P1b, … P11); each names the command that produced it. Ratios compare against a baseline measured in the same run.\n\n";

/// Replace the section whose title starts with `title` (`## {title}…`) with `section`,
/// keeping every other section in place. A new figure section (`## P<n>…`) goes among the
/// others in the order of their titles, so P1…P7 stay in order above the notes.
pub fn write_section(path: &str, title: &str, section: &str) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut sections: Vec<String> = existing.split("\n## ").skip(1).map(|s| format!("## {}", s.trim_end())).collect();
    let heading = format!("## {title}");
    match sections.iter().position(|s| s.starts_with(&heading)) {
        Some(at) => sections[at] = section.trim_end().to_string(),
        None => {
            let is_figure = |s: &String| figure_order(s).is_some();
            let order = figure_order(&heading);
            let at = sections
                .iter()
                .position(|s| figure_order(s).is_some_and(|o| Some(&o) > order.as_ref()))
                .or_else(|| sections.iter().rposition(is_figure).map(|last| last + 1))
                .unwrap_or(0);
            sections.insert(at, section.trim_end().to_string());
        }
    }
    std::fs::write(path, format!("{HEADER}{}\n", sections.join("\n\n")))
}

/// Where a figure section (`## P<number><rest>`) goes: by its number, then the rest of its
/// title (P1, P1b, P2 … P9, P10, P11); None for the notes.
fn figure_order(title: &str) -> Option<(u32, String)> {
    let rest = title.strip_prefix("## P")?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    Some((rest[..digits].parse().ok()?, rest[digits..].to_string()))
}

/// Today's date (UTC) for section titles.
pub fn today() -> String {
    std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

/// The `p` quantile (0..=1) of sorted samples.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    let at = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

/// One request the load generator sends, parsed once: the generator shares the cores
/// with the host, so it should cost as little as it can per request.
#[derive(Clone)]
pub struct Target {
    /// Which kind of request this is, for per-kind latencies.
    pub label: usize,
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub bearer: Option<String>,
}

impl Target {
    pub fn new(label: usize, method: &str, url: &str, bearer: Option<&str>) -> anyhow::Result<Self> {
        Ok(Self { label, method: method.parse()?, url: reqwest::Url::parse(url)?, bearer: bearer.map(str::to_string) })
    }
}

/// What a load phase saw: successful requests' latencies and the failures.
pub struct Load {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    samples: Vec<(usize, Duration)>,
}

impl Load {
    fn new(mut samples: Vec<(usize, Duration)>, errors: Vec<String>, elapsed: Duration) -> Self {
        samples.sort_by_key(|s| s.1);
        let latencies: Vec<Duration> = samples.iter().map(|s| s.1).collect();
        Self {
            requests: samples.len() as u64,
            per_second: samples.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            p99_ms: percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            errors: errors.len() as u64,
            first_error: errors.into_iter().next(),
            samples,
        }
    }

    pub fn summary(&self) -> String {
        format!("{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} requests, {} errors)", self.per_second, self.p50_ms, self.p99_ms, self.requests, self.errors)
    }

    /// p50 and p99 in ms and the count of one kind of request.
    pub fn of_label(&self, label: usize) -> (f64, f64, usize) {
        let latencies: Vec<Duration> = self.samples.iter().filter(|s| s.0 == label).map(|s| s.1).collect();
        (percentile(&latencies, 0.5).as_secs_f64() * 1e3, percentile(&latencies, 0.99).as_secs_f64() * 1e3, latencies.len())
    }
}

async fn send(client: &reqwest::Client, target: &Target) -> Result<(), String> {
    let mut request = client.request(target.method.clone(), target.url.clone());
    if let Some(token) = &target.bearer {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.map_err(|e| format!("{} {}: {e}", target.method, target.url))?;
    let status = reply.status();
    let body = reply.bytes().await.map_err(|e| format!("{} {}: {e}", target.method, target.url))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} {}: {status} {}", target.method, target.url.path(), String::from_utf8_lossy(&body[..body.len().min(200)])))
    }
}

/// Spread consecutive picks over the whole list (a stride prime to its length), so the
/// mix is even at any moment, not only over the whole run.
fn pick(targets: &[Target], n: usize) -> &Target {
    &targets[n.wrapping_mul(7919) % targets.len()]
}

/// `connections` clients, each sending the next target as soon as the last one answered,
/// for `duration`: the most the host serves.
pub async fn closed_loop(targets: Arc<Vec<Target>>, connections: usize, duration: Duration) -> anyhow::Result<Load> {
    anyhow::ensure!(!targets.is_empty(), "no targets");
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, targets, next) = (client.clone(), targets.clone(), next.clone());
            tokio::spawn(async move {
                let (mut samples, mut errors) = (Vec::new(), Vec::new());
                while Instant::now() < deadline {
                    let target = pick(&targets, next.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    match send(&client, target).await {
                        Ok(()) => samples.push((target.label, sent.elapsed())),
                        Err(e) => errors.push(e),
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    for worker in workers {
        let (s, e) = worker.await?;
        samples.extend(s);
        errors.extend(e);
    }
    Ok(Load::new(samples, errors, started.elapsed()))
}

/// `rate` requests per second for `duration`, each sent when it is due whether or not
/// earlier ones have answered; latency counts from when it was due, so a host that falls
/// behind shows it in the percentiles (no coordinated omission).
pub async fn open_loop(targets: Arc<Vec<Target>>, rate: u64, duration: Duration) -> anyhow::Result<Load> {
    anyhow::ensure!(!targets.is_empty() && rate > 0, "no targets or no rate");
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut requests = Vec::with_capacity(total);
    for n in 0..total {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, targets) = (client.clone(), targets.clone());
        requests.push(tokio::spawn(async move {
            let target = pick(&targets, n);
            send(&client, target).await.map(|()| (target.label, due.elapsed()))
        }));
    }
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    for request in requests {
        match request.await? {
            Ok(sample) => samples.push(sample),
            Err(e) => errors.push(e),
        }
    }
    Ok(Load::new(samples, errors, started.elapsed()))
}

/// The arithmetic mean (0 for no values).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The middle value (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// A process's CPU time so far (user + system), from /proc/PID/stat (`pid` "self" for this
/// one). The kernel reports it in USER_HZ, 100 per second on Linux whatever its own tick.
pub fn process_cpu(pid: &str) -> anyhow::Result<Duration> {
    use anyhow::Context;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat (Linux only)"))?;
    // The command name, field 2, is in parentheses and may hold spaces: count from after it.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("unexpected /proc/PID/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).context("unexpected /proc/PID/stat");
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// One wrk run (one thread, a separate process) against `url`: the requests it completed,
/// and the CPU time process `pid` ("self" for this one) used meanwhile.
pub fn wrk_run(url: &str, connections: usize, seconds: u64, pid: &str) -> anyhow::Result<(u64, Duration)> {
    use anyhow::Context;
    let before = process_cpu(pid)?;
    let output = std::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), url])
        .output()
        .context("running wrk (Debian: apt-get install wrk)")?;
    let cpu = process_cpu(pid)?.saturating_sub(before);
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(!text.contains("Non-2xx"), "requests failed under wrk: {text}");
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("no request count in wrk's output")?;
    Ok((requests, cpu))
}

/// What `wrk_rounds` measured of each route: CPU µs per request and requests/s, one entry
/// per round.
pub struct WrkRounds<const N: usize> {
    pub cpu_per_request: [Vec<f64>; N],
    pub rates: [Vec<f64>; N],
}

/// `rounds` alternating rounds of wrk over `routes` (name, URL, the process whose CPU counts:
/// "self" or a pid), each route for `seconds` with `connections`; prints each round.
pub async fn wrk_rounds<const N: usize>(
    routes: &[(String, String, String); N],
    rounds: usize,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<WrkRounds<N>> {
    let mut measured = WrkRounds { cpu_per_request: std::array::from_fn(|_| Vec::new()), rates: std::array::from_fn(|_| Vec::new()) };
    for round in 1..=rounds.max(1) {
        let mut line = format!("    round {round}:");
        for (index, (name, url, pid)) in routes.iter().enumerate() {
            let (url, pid) = (url.clone(), pid.clone());
            let (requests, cpu) = tokio::task::spawn_blocking(move || wrk_run(&url, connections, seconds, &pid)).await??;
            anyhow::ensure!(requests > 0, "wrk completed no requests on {name}");
            let micros = cpu.as_secs_f64() * 1e6 / requests as f64;
            let rate = requests as f64 / seconds as f64;
            measured.cpu_per_request[index].push(micros);
            measured.rates[index].push(rate);
            line += &format!(" {name} {micros:.1} µs ({rate:.0} req/s) |");
        }
        println!("{}", line.trim_end_matches(" |"));
    }
    Ok(measured)
}

/// An MQTT client of the benchmarks' own (`{name}-{pid}`) on `mqtt://host:port`.
pub fn mqtt_client(broker: &str, name: &str) -> anyhow::Result<(rumqttc::AsyncClient, rumqttc::EventLoop)> {
    use anyhow::Context;
    let (host, port) = broker.trim_start_matches("mqtt://").rsplit_once(':').context("broker address")?;
    let mut options = rumqttc::MqttOptions::new(format!("{name}-{}", std::process::id()), host, port.parse()?);
    options.set_keep_alive(Duration::from_secs(60)).set_max_packet_size(1 << 20, 1 << 20);
    Ok(rumqttc::AsyncClient::new(options, 100_000))
}

/// Publish `n` water-meter readings (QoS 0) spread over the devices `wm-0` … under `prefix`,
/// as fast as the client goes.
pub async fn publish(broker: &str, prefix: &str, devices: u64, n: u64) -> anyhow::Result<()> {
    let (client, mut eventloop) = mqtt_client(broker, "bench-pub")?;
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for i in 0..n {
        let device = i % devices;
        let payload = serde_json::json!({ "ts": 1_763_568_000_000i64 + i as i64, "flow": (i % 7) as f64 * 0.5, "battery": 90 });
        client.publish(format!("{prefix}/devices/wm-{device}/telemetry"), rumqttc::QoS::AtMostOnce, false, payload.to_string().into_bytes()).await?;
    }
    // Let the queue drain before the pump goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_section_is_replaced_in_place_and_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RESULTS.md");
        let path = path.to_str().unwrap();
        super::write_section(path, "A", "## A — 1\n\nfirst\n").unwrap();
        super::write_section(path, "B", "## B — 1\n\nsecond\n").unwrap();
        super::write_section(path, "A", "## A — 2\n\nnewer\n").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("# Benchmark results"));
        assert!(text.contains("## B — 1\n\nsecond") && text.contains("## A — 2\n\nnewer") && !text.contains("first"));
        assert!(text.find("## B").unwrap() < text.find("## A").unwrap(), "replaced in place");
    }

    #[test]
    fn new_sections_keep_the_order_of_their_titles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RESULTS.md");
        let path = path.to_str().unwrap();
        std::fs::write(path, "# Benchmark results\n\n## Notes: how\n\nnotes\n").unwrap();
        super::write_section(path, "P5 ", "## P5 — ingest\n\nfive\n").unwrap();
        super::write_section(path, "P7 ", "## P7 — county\n\nseven\n").unwrap();
        super::write_section(path, "P1 ", "## P1 — route\n\none\n").unwrap();
        super::write_section(path, "P11 ", "## P11 — peers\n\neleven\n").unwrap();
        super::write_section(path, "P1b ", "## P1b — wrk\n\none b\n").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let at = |t: &str| text.find(t).unwrap();
        assert!(at("## P1 ") < at("## P1b") && at("## P1b") < at("## P5") && at("## P5") < at("## P7"), "{text}");
        assert!(at("## P7") < at("## P11") && at("## P11") < at("## Notes"), "numbers, not letters, order them: {text}");
    }

    #[test]
    fn percentiles_and_medians() {
        let samples: Vec<std::time::Duration> = (1..=100).map(std::time::Duration::from_millis).collect();
        assert_eq!(super::percentile(&samples, 0.5), std::time::Duration::from_millis(51));
        assert_eq!(super::percentile(&samples, 0.99), std::time::Duration::from_millis(99));
        assert_eq!(super::percentile::<std::time::Duration>(&[], 0.99), std::time::Duration::ZERO);
        assert_eq!(super::percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
