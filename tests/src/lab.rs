//! A host wired to the test MQTT broker, with a device-side client: what the device,
//! alarm, ticket and elderly-care stories share.
use crate::{mqtt_url, Backend, TestHost};
use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const HOUR_MS: i64 = 3_600_000;
/// Device time of the simulated day (2026-11-20 00:00 UTC+8).
pub const DAY0: i64 = 1_763_568_000_000;

/// A host connected to the test broker under a topic prefix of its own (tests run at once
/// on one broker), and a device-side MQTT client.
pub struct Lab {
    pub host: TestHost,
    pub prefix: String,
    pub device: AsyncClient,
    /// Messages the device side received (commands): topic and payload.
    pub received: tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

/// Wait (up to 15 s) until `check` is true.
pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    for _ in 0..300 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("timed out waiting until {what}")
}

/// A name no other test run uses: topic prefixes on the shared broker.
pub fn unique() -> String {
    format!("{:x}{:x}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default())
}

/// The device side on `broker`: an MQTT client that publishes as devices under `prefix`
/// and receives what is sent to them (commands): topic and payload.
pub async fn device_client(broker: &str, prefix: &str) -> Result<(AsyncClient, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>)> {
    let (host_name, port) = broker.trim_start_matches("mqtt://").rsplit_once(':').context("broker address")?;
    let mut options = MqttOptions::new(format!("{prefix}-devices"), host_name, port.parse()?);
    options.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(1 << 20, 1 << 20);
    let (device, mut eventloop) = AsyncClient::new(options, 1024);
    device.subscribe(format!("{prefix}/devices/+/commands"), QoS::AtLeastOnce).await?;
    let (tx, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    Ok((device, received))
}

impl Lab {
    /// None only when the broker (or PostgreSQL) is missing and CI is not set.
    pub async fn start(backend: Backend, tune: impl FnOnce(&mut linli_host::config::Config)) -> Result<Option<Lab>> {
        let Some(broker) = mqtt_url().await? else { return Ok(None) };
        let prefix = format!("t{}", unique());
        let topic_prefix = prefix.clone();
        let Some(host) = TestHost::start_tuned(backend, |c| {
            c.devices.broker = broker.clone();
            c.devices.topic_prefix = topic_prefix;
            c.devices.max_payload_bytes = 1024;
            c.events.first_backoff_ms = 50;
            c.events.max_backoff_ms = 200;
            c.events.poll_ms = 50;
            tune(c);
        })
        .await?
        else {
            return Ok(None);
        };
        wait_until("the host subscribes to device topics", || async { Ok(host.admin("GET", "/devices/status", None).await?.json()["connected"] == true) })
            .await?;

        let (device, received) = device_client(&broker, &prefix).await?;
        Ok(Some(Lab { host, prefix, device, received }))
    }

    /// Publish a telemetry message as `device`.
    pub async fn send(&self, device: &str, payload: Value) -> Result<()> {
        self.send_raw(&format!("{}/devices/{device}/telemetry", self.prefix), payload.to_string().into_bytes()).await
    }

    pub async fn send_raw(&self, topic: &str, payload: Vec<u8>) -> Result<()> {
        self.device.publish(topic, QoS::AtLeastOnce, false, payload).await?;
        Ok(())
    }

    /// Register a device (201) and return the answer.
    pub async fn register(&self, id: &str, device_type: &str, location: &str) -> Result<Value> {
        Ok(self
            .host
            .admin("POST", "/devices", Some(json!({ "id": id, "device_type": device_type, "model": "T-1", "vendor": "测试", "location": location })))
            .await?
            .expect_status(201)?
            .json())
    }

    pub async fn rule(&self, rule: Value) -> Result<()> {
        self.host.admin("POST", "/alarm-rules", Some(rule)).await?.expect_status(200)?;
        Ok(())
    }

    pub async fn alarms(&self, status: &str) -> Result<Vec<Value>> {
        self.host.alarms(status).await
    }

    /// The device with its latest reading.
    pub async fn latest(&self, device: &str) -> Result<Value> {
        Ok(self.host.admin("GET", &format!("/devices/{device}"), None).await?.expect_status(200)?.json())
    }

    /// `linli_device_messages_total` for one outcome.
    pub async fn metric(&self, outcome: &str) -> Result<u64> {
        self.host.counter("linli_device_messages_total", "outcome", outcome).await
    }

    /// Readings of an idle water meter (flow 0) every hour of device time, from `from`
    /// through `to` hours after DAY0.
    pub async fn idle_hours(&self, device: &str, from: i64, to: i64) -> Result<()> {
        for hour in from..=to {
            self.send(device, json!({ "ts": DAY0 + hour * HOUR_MS, "flow": 0.0 })).await?;
        }
        Ok(())
    }
}

/// The idle-water-meter rule: no use for 12 hours, cleared by any use.
pub fn idle_water_rule(ticket_category: Option<&str>) -> Value {
    let mut rule = json!({
        "id": "water-idle", "name": "独居老人用水异常（12小时无用水）", "tenant_id": "demo-county",
        "device_type": "water-meter", "metric": "flow", "op": "<=", "threshold": 0.0, "duration_seconds": 12 * 3600,
        "clear_op": ">", "clear_threshold": 0.0, "severity": "major", "suppress_seconds": 0
    });
    if let Some(category) = ticket_category {
        rule["ticket_category"] = json!(category);
    }
    rule
}

pub fn instant_rule(id: &str, name: &str, device_type: &str, metric: &str) -> Value {
    json!({
        "id": id, "name": name, "tenant_id": "demo-county", "device_type": device_type,
        "metric": metric, "op": ">=", "threshold": 1.0, "clear_op": "<", "clear_threshold": 1.0, "severity": "critical"
    })
}

/// A resident aged 78 living alone in 幸福社区 第一网格, 3栋2单元401; returns (house id, address).
pub async fn lone_elder_home(host: &TestHost) -> Result<(String, String)> {
    let csv =
        format!("姓名,身份证号,手机号,网格,楼栋,单元,房号,标签\n王阿姨,{},13800000031,xingfu-g1,3,2,401,独居老人\n", crate::id_number("33078219480101012"));
    let report = host.import_csv("residents", "xingfu", &csv).await?;
    if report["status"] != "done" {
        bail!("import failed: {report}");
    }
    let store = host.store().await?;
    let (id, sealed): (String, String) = sqlx::query_as("SELECT id, address FROM base_houses WHERE tenant_id = 'xingfu-g1'").fetch_one(&store.pool).await?;
    let address = linli_host::store::vault::HOUSE_ADDRESS.open(&store.vault, &id, &sealed)?;
    Ok((id, address))
}

/// Answer every command like a gate controller would (`{"ok": true}`), and remember them.
pub fn answer_commands(lab: &mut Lab) -> Arc<Mutex<Vec<Value>>> {
    answer_commands_refusing(lab, Arc::new(Mutex::new(Vec::new())))
}

/// As `answer_commands`, but a command about a plate in `refused` is answered `{"ok": false}`
/// (a gate that will not take it), for as long as the plate is in the list.
pub fn answer_commands_refusing(lab: &mut Lab, refused: Arc<Mutex<Vec<String>>>) -> Arc<Mutex<Vec<Value>>> {
    let (seen, prefix, device) = (Arc::new(Mutex::new(Vec::new())), lab.prefix.clone(), lab.device.clone());
    let (_, mut received) = tokio::sync::mpsc::unbounded_channel();
    std::mem::swap(&mut received, &mut lab.received);
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((topic, payload)) = received.recv().await {
            let message: Value = serde_json::from_slice(&payload).unwrap_or_default();
            if let Ok(mut log) = log.lock() {
                log.push(message["command"].clone());
            }
            let id = topic.split('/').nth(2).unwrap_or_default().to_string();
            let refuse = refused.lock().is_ok_and(|plates| plates.iter().any(|p| message["command"]["plate"] == p.as_str()));
            let ack = json!({ "id": message["id"], "ok": !refuse });
            let _ = device.publish(format!("{prefix}/devices/{id}/ack"), QoS::AtLeastOnce, false, ack.to_string().into_bytes()).await;
        }
    });
    seen
}

/// How many `name` commands about `plate` the device side received.
pub fn commands(seen: &Arc<Mutex<Vec<Value>>>, name: &str, plate: &str) -> usize {
    seen.lock().map(|log| log.iter().filter(|c| c["command"] == name && c["plate"] == plate).count()).unwrap_or(0)
}
