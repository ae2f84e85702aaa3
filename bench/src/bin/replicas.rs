//! `cargo run --release -p linli-bench --bin replicas -- [--messages N] [--devices N]
//!  [--rounds N] [--partitions N] [--cpu F] [--write FILE]`
//!
//! P5b: partitioned device ingest (`[devices] ingest_stream`) with one and with two
//! `linli serve` replicas, in alternating rounds of one run, on PostgreSQL, Mosquitto and
//! NATS JetStream (the tests' URLs). Each round publishes N water-meter readings (QoS 0,
//! one rule with a duration window per device, as P5) and counts them until the replicas
//! have evaluated them all; the rate is readings evaluated per second, both replicas
//! together.
//!
//! The replicas share the machine with the brokers, the database and the publisher. So
//! that what bounds a round is the replicas' own work, each replica runs in a cgroup of its
//! own limited to F of one core (default 0.25): one replica has F, two have 2F, and the rest
//! of the machine is left to everything else either way. Without cgroups (not root, or no
//! cpu controller) the bench says so and runs the replicas unlimited.
use anyhow::{bail, Context, Result};
use clap::Parser;
use linli_tests::serve::Serve;
use linli_tests::{database_url, mqtt_url, nats_url, Backend};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// P5b: partitioned device ingest with one and with two replicas.
#[derive(Parser)]
struct Args {
    /// Readings published per round.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Devices the readings are spread over.
    #[arg(long, default_value_t = 1_000)]
    devices: u64,
    /// Rounds of each kind (one replica, two replicas), alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Partitions of the ingest stream.
    #[arg(long, default_value_t = 16)]
    partitions: u16,
    /// The share of one core each replica may use (cgroup quota).
    #[arg(long, default_value_t = 0.25)]
    cpu: f64,
    /// Rewrite the P5b section of this file.
    #[arg(long)]
    write: Option<String>,
}

/// A cgroup limiting its processes to a share of one core (v1 `cpu` controller or v2).
struct CpuLimit {
    dir: PathBuf,
}

impl CpuLimit {
    fn new(name: &str, cores: f64) -> Result<Self> {
        let period = 100_000u64;
        let quota = ((cores * period as f64) as u64).max(1_000);
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let dir = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
            dir
        } else {
            let dir = Path::new("/sys/fs/cgroup").join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("cpu.max"), format!("{quota} {period}"))?;
            dir
        };
        Ok(Self { dir })
    }

    fn add(&self, pid: u32) -> Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).with_context(|| format!("moving {pid} into {}", self.dir.display()))
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // Empty once its processes have ended.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

async fn evaluated(replicas: &[&Serve]) -> Result<u64> {
    let mut sum = 0;
    for replica in replicas {
        sum += replica.counter("linli_device_messages_total", "outcome", "accepted").await?;
    }
    Ok(sum)
}

async fn partitions_of(replica: &Serve) -> Result<usize> {
    let status = replica.admin(reqwest::Method::GET, "/devices/status", None).await?;
    Ok(status["partitions"].as_array().map_or(0, Vec::len))
}

/// Wait until the running replicas hold every partition between them, each some (with
/// two, the one feeding the stream holds fewer: `partitions::owners`).
async fn settled(replicas: &[&Serve], partitions: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut held = Vec::new();
        for replica in replicas {
            held.push(partitions_of(replica).await?);
        }
        if held.iter().sum::<usize>() == usize::from(partitions) && held.iter().all(|h| *h > 0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the replicas did not split the partitions: {held:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each replica's CPU time so far.
fn cpu_of(replicas: &[&Serve]) -> Result<Vec<Duration>> {
    replicas.iter().map(|replica| linli_bench::process_cpu(&replica.pid().context("the replica runs")?.to_string())).collect()
}

/// What one round measured.
struct Round {
    /// Readings evaluated per second, up to the last one.
    rate: f64,
    evaluated: u64,
    /// The replicas' CPU time per reading evaluated, together.
    cpu_per_reading: Duration,
    /// Each replica's share of that time (the first feeds the stream).
    cpu_shares: Vec<f64>,
}

/// Publish `n` readings and count them until the replicas have evaluated them all (QoS 0 may
/// drop some under load: counted up to the last one taken).
async fn round(replicas: &[&Serve], broker: &str, prefix: &str, devices: u64, n: u64) -> Result<Round> {
    let before = evaluated(replicas).await?;
    let cpu_before = cpu_of(replicas)?;
    let started = Instant::now();
    let publisher = tokio::spawn({
        let (broker, prefix) = (broker.to_string(), prefix.to_string());
        async move { linli_bench::publish(&broker, &prefix, devices, n).await }
    });
    let (mut last, mut last_change) = (before, Instant::now());
    loop {
        let now = evaluated(replicas).await?;
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if now >= before + n || (publisher.is_finished() && last_change.elapsed() > Duration::from_secs(5)) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("a round took over 10 minutes ({} of {n} evaluated)", now - before);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.await??;
    let got = last - before;
    let used: Vec<Duration> = cpu_of(replicas)?.iter().zip(&cpu_before).map(|(after, before)| after.saturating_sub(*before)).collect();
    let cpu: Duration = used.iter().sum();
    Ok(Round {
        rate: got as f64 / last_change.duration_since(started).as_secs_f64().max(1e-3),
        evaluated: got,
        cpu_per_reading: cpu / u32::try_from(got.max(1)).unwrap_or(u32::MAX),
        cpu_shares: used.iter().map(|u| u.as_secs_f64() / cpu.as_secs_f64().max(1e-9)).collect(),
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let database = database_url(Backend::Postgres, temp.path()).await?.context("PostgreSQL is needed (LINLI_TEST_POSTGRES_URL)")?;
    let broker = mqtt_url().await?.context("an MQTT broker is needed (LINLI_TEST_MQTT_URL)")?;
    let nats = nats_url().await?.context("NATS with JetStream is needed (LINLI_TEST_NATS_URL)")?;
    let prefix = format!("bench{}", std::process::id());
    let replica = |name: &str| -> Result<Serve> {
        Ok(Serve::device_replica(temp.path(), name, &database, &broker, &prefix)?
            .env("LINLI_DEVICES__QOS", "0")
            .env("LINLI_DEVICES__INGEST_STREAM", &nats)
            .env("LINLI_DEVICES__INGEST_PARTITIONS", &args.partitions.to_string()))
    };
    let limits = match (
        CpuLimit::new(&format!("linli-bench-a-{}", std::process::id()), args.cpu),
        CpuLimit::new(&format!("linli-bench-b-{}", std::process::id()), args.cpu),
    ) {
        (Ok(a), Ok(b)) => Some((a, b)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("no cgroup to limit the replicas' CPU ({e}): they run unlimited, and share the machine with the brokers and the database");
            None
        }
    };
    let limited = limits.is_some();

    let (mut one, mut two, mut lines) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_one, mut cpu_two) = (Vec::new(), Vec::new());
    // The stream is the bench's own: deleted however the rounds end.
    linli_tests::with_ingest_stream(&nats, &prefix, async {
        let mut a = replica("a")?;
        a.spawn().await?;
        if let Some((limit, _)) = &limits {
            limit.add(a.pid().context("replica A runs")?)?;
        }
        println!("registering {} devices …", args.devices);
        for i in 0..args.devices {
            a.admin(reqwest::Method::POST, "/devices", Some(json!({ "id": format!("wm-{i}"), "device_type": "water-meter", "location": "grid:xingfu-g1" })))
                .await?;
        }
        a.admin(reqwest::Method::POST, "/alarm-rules", Some(linli_tests::lab::idle_water_rule(None))).await?;

        let mut b: Option<Serve> = None;
        for number in 1..=args.rounds {
            for replicas in [1usize, 2] {
                if replicas == 2 && b.is_none() {
                    let mut started = replica("b")?;
                    started.spawn().await?;
                    if let Some((_, limit)) = &limits {
                        limit.add(started.pid().context("replica B runs")?)?;
                    }
                    b = Some(started);
                }
                if replicas == 1 {
                    if let Some(mut stopped) = b.take() {
                        stopped.stop()?;
                    }
                }
                let running: Vec<&Serve> = std::iter::once(&a).chain(b.as_ref()).collect();
                settled(&running, args.partitions).await?;
                let measured = round(&running, &broker, &prefix, args.devices, args.messages).await?;
                let cpu_us = measured.cpu_per_reading.as_secs_f64() * 1e6;
                let line = format!(
                    "round {number}, {replicas} replica{}: {:.0} readings/s ({} of {} evaluated), replicas' CPU {cpu_us:.1} µs a reading{}",
                    if replicas == 1 { "" } else { "s" },
                    measured.rate,
                    measured.evaluated,
                    args.messages,
                    if replicas == 1 {
                        String::new()
                    } else {
                        format!(
                            " (feeder {:.0}%, other {:.0}%)",
                            measured.cpu_shares.first().copied().unwrap_or_default() * 100.0,
                            measured.cpu_shares.get(1).copied().unwrap_or_default() * 100.0
                        )
                    }
                );
                println!("{line}");
                lines.push(line);
                if replicas == 1 {
                    one.push(measured.rate);
                    cpu_one.push(cpu_us);
                } else {
                    two.push(measured.rate);
                    cpu_two.push(cpu_us);
                }
            }
        }
        if let Some(mut b) = b.take() {
            b.stop()?;
        }
        a.stop()?;
        Ok(())
    })
    .await?;

    let (one, two) = (linli_bench::median(&mut one), linli_bench::median(&mut two));
    let (cpu_one, cpu_two) = (linli_bench::median(&mut cpu_one), linli_bench::median(&mut cpu_two));
    let ratio = two / one;
    let verdict = if ratio >= 1.6 { "met" } else { "missed" };
    let how = if limited {
        format!("each replica in a cgroup of its own limited to {} of a core (`cpu.cfs_quota_us`)", args.cpu)
    } else {
        "replicas unlimited (no cgroup could be made), sharing the 2 cores with everything else".to_string()
    };
    println!("one replica {one:.0}/s, two replicas {two:.0}/s: {ratio:.2}× ({verdict})");
    if let Some(path) = args.write {
        let section = format!(
            "## P5b — device ingest with one and two replicas — {}\n\n\
             Command: `cargo run --release -p linli-bench --bin replicas -- --messages {} --devices {} --rounds {} --partitions {} --cpu {} --write bench/RESULTS.md`\n\
             (`linli serve` processes on PostgreSQL, Mosquitto and NATS JetStream on 127.0.0.1; {how}; \
             the brokers, the database and the publisher share the rest of the 2 cores. {} partitions; one rule with a \
             duration window per device, as P5.)\n\n\
             | measure | result | target |\n|---|---|---|\n\
             | one replica, readings evaluated (median of {} rounds) | {one:.0}/s | |\n\
             | two replicas, readings evaluated (median of {} rounds) | {two:.0}/s | |\n\
             | two / one | {ratio:.2}× | ≥ 1.6× ({verdict}) |\n\
             | replicas' CPU per reading, one / two (together) | {cpu_one:.1} / {cpu_two:.1} µs | |\n\n\
             Rounds (alternating):\n\n```\n{}\n```\n\n\
             Notes: CPU per reading is the replicas' user and system time over the round (/proc), not the brokers' or \
             the database's. One replica at a time (the holder of the telemetry session's lease, here the first) takes the \
             broker's telemetry into the stream; every replica evaluates the partitions it holds, the feeder fewer \
             (6 of the 16 beside one other: `partitions::owners`). The second replica \
             is stopped (SIGTERM: its partitions handed back) before each one-replica round and started again before \
             each two-replica round.\n",
            linli_bench::today(),
            args.messages,
            args.devices,
            args.rounds,
            args.partitions,
            args.cpu,
            args.partitions,
            args.rounds,
            args.rounds,
            lines.join("\n"),
        );
        linli_bench::write_section(&path, "P5b", &section)?;
        println!("wrote {path}");
    }
    Ok(())
}
