//! `linli devices simulate`: realistic sensors publishing over MQTT on an accelerated
//! clock, so a demo (and a person trying rules) has live data. Each round, every device
//! sends one reading stamped with device time (`ts`); device time runs `speed` times faster
//! than real time, so a lone elder's 12 idle hours pass in under a minute. The simulated
//! devices also answer commands.
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Everything normal: water used at mealtimes, doors, parking comings and goings.
    Normal,
    /// The target water meter reports no use at all (a lone elder who may need help).
    IdleWater,
    /// The target smoke detector goes off after a few rounds, and clears later.
    Smoke,
    /// The target fall button is pressed once.
    Fall,
}

#[derive(Args)]
pub struct SimulateArgs {
    /// The MQTT broker: the host's embedded one by default.
    #[arg(long, env = "LINLI_MQTT", default_value = "mqtt://127.0.0.1:1884")]
    broker: String,
    /// The host's topic prefix (`[devices] topic_prefix`).
    #[arg(long, default_value = "linli")]
    prefix: String,
    /// A device to simulate, `id:type` or `id:type:secret` (repeat). Types: water-meter,
    /// smoke-detector, door-sensor, fall-button, parking-sensor. Each device signs in with
    /// its id and secret (a broker that lets anyone in needs no secret).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Also simulate every device registered on this host (needs the admin token). The
    /// simulator gives each of them a new secret to sign in with — the real devices' secrets
    /// stop working: for demo and test hosts only.
    #[arg(long, env = "LINLI_SERVER")]
    server: Option<String>,
    #[arg(long, env = "LINLI_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, value_enum, default_value = "normal")]
    scenario: Scenario,
    /// The device the scenario happens to (default: the first of the scenario's type).
    #[arg(long)]
    target: Option<String>,
    /// Device seconds per real second.
    #[arg(long, default_value_t = 1800)]
    speed: u64,
    /// Real milliseconds between rounds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many rounds (default: run until interrupted).
    #[arg(long)]
    rounds: Option<u64>,
    /// Device time at the start, unix ms (default: now).
    #[arg(long)]
    start_ms: Option<i64>,
}

/// One simulated device.
struct Sim {
    id: String,
    kind: String,
    secret: Option<String>,
    /// Flips for door and parking sensors.
    state: bool,
}

/// Deterministic noise, so runs are repeatable: a hash of the device and the round.
fn noise(id: &str, round: u64) -> f64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15), |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// China local hour of a unix-ms time.
fn local_hour(ms: i64) -> i64 {
    (ms / 3_600_000 + 8).rem_euclid(24)
}

impl Sim {
    fn reading(&mut self, round: u64, ts: i64, scenario: Scenario, target: bool) -> Value {
        let n = noise(&self.id, round);
        match self.kind.as_str() {
            "water-meter" => {
                let mealtime = matches!(local_hour(ts), 6..=8 | 11..=12 | 17..=20);
                let flow = if scenario == Scenario::IdleWater && target {
                    0.0
                } else if mealtime && n < 0.7 {
                    (2.0 + n * 10.0 * 10.0).round() / 10.0
                } else {
                    0.0
                };
                json!({ "ts": ts, "flow": flow, "battery": 90 })
            }
            "smoke-detector" => {
                let smoke = scenario == Scenario::Smoke && target && (3..8).contains(&round);
                json!({ "ts": ts, "smoke": u8::from(smoke), "battery": 95 })
            }
            "fall-button" => {
                let pressed = scenario == Scenario::Fall && target && round == 3;
                json!({ "ts": ts, "pressed": u8::from(pressed), "battery": 88 })
            }
            "door-sensor" => {
                if n < 0.15 {
                    self.state = !self.state;
                }
                json!({ "ts": ts, "open": u8::from(self.state) })
            }
            "parking-sensor" => {
                if n < 0.1 {
                    self.state = !self.state;
                }
                json!({ "ts": ts, "occupied": u8::from(self.state) })
            }
            _ => json!({ "ts": ts, "value": (n * 100.0).round() }),
        }
    }
}

fn scenario_type(scenario: Scenario) -> Option<&'static str> {
    match scenario {
        Scenario::Normal => None,
        Scenario::IdleWater => Some("water-meter"),
        Scenario::Smoke => Some("smoke-detector"),
        Scenario::Fall => Some("fall-button"),
    }
}

/// An admin API call; the answer's JSON.
async fn admin_call(request: reqwest::RequestBuilder, url: &str, token: &str) -> Result<Value> {
    let reply = request.bearer_auth(token).send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = reply.status();
    let body: Value = reply.json().await.with_context(|| format!("{url}: the answer is not JSON"))?;
    if !status.is_success() {
        bail!("{url}: {status}: {}", body["error"]["message"].as_str().unwrap_or("error"));
    }
    Ok(body)
}

async fn registered(server: &str, token: &str) -> Result<Vec<(String, String)>> {
    let url = format!("{}/admin/devices", server.trim_end_matches('/'));
    let body = admin_call(reqwest::Client::new().get(&url), &url, token).await?;
    Ok(body["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|d| Some((d["id"].as_str()?.to_string(), d["device_type"].as_str()?.to_string())))
        .collect())
}

/// A new secret for a registered device, to sign in with.
async fn new_secret(server: &str, token: &str, device: &str) -> Result<String> {
    let url = format!("{}/admin/devices/{device}/secret", server.trim_end_matches('/'));
    let body = admin_call(reqwest::Client::new().post(&url), &url, token).await?;
    body["secret"].as_str().map(str::to_string).with_context(|| format!("{url}: no secret in the answer"))
}

/// Connect as one device (client id and user name: its id), subscribe to its commands and
/// acknowledge each one on its own `ack` topic.
fn connect_device(sim: &Sim, host: &str, port: u16, prefix: &str) -> AsyncClient {
    let mut options = MqttOptions::new(sim.id.clone(), host, port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some(secret) = &sim.secret {
        options.set_credentials(sim.id.clone(), secret.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let answering = client.clone();
    let (id, prefix) = (sim.id.clone(), prefix.to_string());
    tokio::spawn(async move {
        // Say a connection failure once, not every second until it is fixed.
        let mut failure_reported = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failure_reported = false;
                    let _ = answering.subscribe(format!("{prefix}/devices/{id}/commands"), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // Acknowledge every command, echoing it.
                    let command: Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                    let ack = json!({ "id": command["id"], "ok": true, "did": command["command"] });
                    let _ = answering.publish(format!("{prefix}/devices/{id}/ack"), QoS::AtLeastOnce, false, ack.to_string().into_bytes()).await;
                }
                Ok(_) => {}
                Err(e) => {
                    if !failure_reported {
                        eprintln!("{id}: MQTT: {e}; retrying");
                    }
                    failure_reported = true;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    client
}

pub fn run(args: SimulateArgs) -> Result<()> {
    super::block_on(simulate(args))
}

async fn simulate(args: SimulateArgs) -> Result<()> {
    let mut sims: Vec<Sim> = Vec::new();
    for spec in &args.devices {
        let mut parts = spec.splitn(3, ':');
        let (Some(id), Some(kind)) = (parts.next(), parts.next()) else { bail!("--device `{spec}` must be id:type or id:type:secret") };
        sims.push(Sim { id: id.to_string(), kind: kind.to_string(), secret: parts.next().map(str::to_string), state: false });
    }
    if let Some(server) = &args.server {
        let token = args.token.as_deref().context("--server needs the admin token (--token or LINLI_ADMIN_TOKEN)")?;
        for (id, kind) in registered(server, token).await? {
            if !sims.iter().any(|s| s.id == id) {
                let secret = new_secret(server, token, &id).await?;
                sims.push(Sim { id, kind, secret: Some(secret), state: false });
            }
        }
    }
    if sims.is_empty() {
        bail!("no devices: name some with --device id:type, or --server to simulate the registered ones");
    }
    let target = match (&args.target, scenario_type(args.scenario)) {
        (Some(t), _) if !sims.iter().any(|s| &s.id == t) => bail!("--target `{t}` is not among the simulated devices"),
        (Some(t), _) => Some(t.clone()),
        (None, Some(kind)) => {
            Some(sims.iter().find(|s| s.kind == kind).map(|s| s.id.clone()).with_context(|| format!("the scenario needs a {kind}, and none is simulated"))?)
        }
        (None, None) => None,
    };

    let address = args.broker.strip_prefix("mqtt://").context("--broker must be mqtt://host:port")?;
    let (host, port) = address.rsplit_once(':').context("--broker must name a port")?;
    let port: u16 = port.parse().context("--broker port")?;
    let clients: Vec<AsyncClient> = sims.iter().map(|sim| connect_device(sim, host, port, &args.prefix)).collect();

    let started = Instant::now();
    let start_ms = args.start_ms.unwrap_or_else(crate::store::now_millis);
    let step_ms = i64::try_from(args.speed.saturating_mul(args.interval_ms)).unwrap_or(i64::MAX);
    let (mut sent, mut unsent) = (0u64, 0u64);
    println!(
        "simulating {} devices on {} (prefix {}), scenario {:?}{}, {}× time",
        sims.len(),
        args.broker,
        args.prefix,
        args.scenario,
        target.as_deref().map(|t| format!(" on {t}")).unwrap_or_default(),
        args.speed
    );
    let mut ticker = tokio::time::interval(Duration::from_millis(args.interval_ms.max(1)));
    let mut round: u64 = 0;
    loop {
        ticker.tick().await;
        if args.rounds.is_some_and(|r| round >= r) {
            break;
        }
        let ts = start_ms.saturating_add(step_ms.saturating_mul(i64::try_from(round).unwrap_or(i64::MAX)));
        for (sim, client) in sims.iter_mut().zip(&clients) {
            let is_target = target.as_deref() == Some(sim.id.as_str());
            let reading = sim.reading(round, ts, args.scenario, is_target);
            // A device the broker has not let in yet keeps a short queue; beyond it, readings
            // are dropped (and counted) rather than holding up the other devices.
            match client.try_publish(format!("{}/devices/{}/telemetry", args.prefix, sim.id), QoS::AtLeastOnce, false, reading.to_string().into_bytes()) {
                Ok(()) => sent += 1,
                Err(_) => unsent += 1,
            }
        }
        round += 1;
        let device_hours = (ts - start_ms) as f64 / 3_600_000.0;
        let dropped = if unsent > 0 { format!(", {unsent} not sent (devices not signed in)") } else { String::new() };
        println!("round {round}: {sent} messages{dropped}, device time +{device_hours:.1} h (real {:.0} s)", started.elapsed().as_secs_f64());
    }
    // Let the last publishes leave before the client goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("done: {sent} messages from {} devices in {round} rounds", sims.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_target_never_uses_water_and_others_do_at_mealtimes() {
        let mut idle = Sim { id: "wm-1".into(), kind: "water-meter".into(), secret: None, state: false };
        let mut busy = Sim { id: "wm-2".into(), kind: "water-meter".into(), secret: None, state: false };
        // Device time in steps of 30 minutes over a day.
        let day0 = 1_763_568_000_000; // 2026-11-20 00:00 China time
        let (mut idle_use, mut busy_use) = (0.0, 0.0);
        for round in 0..48 {
            let ts = day0 + round as i64 * 1_800_000;
            idle_use += idle.reading(round, ts, Scenario::IdleWater, true)["flow"].as_f64().unwrap_or(0.0);
            let flow = busy.reading(round, ts, Scenario::IdleWater, false)["flow"].as_f64().unwrap_or(0.0);
            if flow > 0.0 {
                assert!(matches!(local_hour(ts), 6..=8 | 11..=12 | 17..=20), "water used at {}h", local_hour(ts));
            }
            busy_use += flow;
        }
        assert_eq!(idle_use, 0.0);
        assert!(busy_use > 0.0);
    }

    #[test]
    fn a_fall_is_pressed_once() {
        let mut button = Sim { id: "fall-1".into(), kind: "fall-button".into(), secret: None, state: false };
        let presses: u64 = (0..10).map(|r| button.reading(r, 0, Scenario::Fall, true)["pressed"].as_u64().unwrap_or(0)).sum();
        assert_eq!(presses, 1);
    }
}
