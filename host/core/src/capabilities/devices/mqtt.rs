//! MQTT: the host is a client of a broker — the embedded one (`broker.rs`) by default, or
//! an external one such as Mosquitto — on the topics (prefix `linli` unless configured:
//! several hosts may share one broker under different prefixes)
//!
//! - `{prefix}/devices/{id}/telemetry` (device → host): a JSON object, e.g.
//!   `{"ts": 1764000000000, "flow": 0.0}`;
//! - `{prefix}/devices/{id}/commands` (host → device): `{"id": "<command id>", "command": {…}}`;
//! - `{prefix}/devices/{id}/ack` (device → host): `{"id": "<command id>", …}`.
use super::engine::{self, Topic};
use super::{DeviceError, Devices};
use crate::store::now_millis;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The largest packet the host's client accepts; bigger ones are cut off by the broker
/// connection. The per-message limit devices are held to is smaller
/// (`max_payload_bytes`), so an oversized message is counted and refused, not fatal.
const MAX_PACKET: usize = 1 << 20;

/// Where the broker is and how the host signs in to it.
#[derive(Debug, Clone)]
pub(crate) struct BrokerAddress {
    pub host: String,
    pub port: u16,
    /// User name and password; none for an external broker that lets anyone in.
    pub credentials: Option<(String, String)>,
}

/// `mqtt://host:port` (port defaults to 1883).
pub fn parse_url(url: &str) -> Result<(String, u16), DeviceError> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| DeviceError::Config(format!("broker `{url}` must be `embedded`, `off` or mqtt://host:port")))?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse().map_err(|_| DeviceError::Config(format!("broker `{url}`: `{port}` is not a port")))?)),
        None => Ok((rest.to_string(), 1883)),
    }
}

/// What a connection to the broker is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Session {
    /// Every replica's own: commands out, the devices' acknowledgements in. A clean session
    /// under a client id of its own.
    Commands,
    /// Telemetry in, on the replica that holds device ingest only. Persistent (clean session
    /// off) under one client id per topic prefix that the replicas take in turn, so that the
    /// broker keeps what devices send while no replica has it — between one holder's death
    /// and the next one's takeover, or while the only host restarts — and hands it to the
    /// next holder (at `qos = 1`; the broker's own limits apply, e.g. Mosquitto's
    /// `max_queued_messages`).
    Telemetry,
}

impl Session {
    fn client_id(self, devices: &Devices) -> String {
        match self {
            Self::Commands => format!("linli-host-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            Self::Telemetry => format!("linli-ingest-{}", devices.config.topic_prefix),
        }
    }

    fn subscription(self, devices: &Devices) -> (String, QoS) {
        let prefix = &devices.config.topic_prefix;
        match self {
            Self::Commands => (format!("{prefix}/devices/+/ack"), QoS::AtLeastOnce),
            Self::Telemetry => (format!("{prefix}/devices/+/telemetry"), qos(devices)),
        }
    }

    fn subscribed(self, devices: &Devices) -> &AtomicBool {
        match self {
            Self::Commands => &devices.commands_subscribed,
            Self::Telemetry => &devices.telemetry_subscribed,
        }
    }
}

/// A connection to the broker and the task that consumes its messages.
pub(crate) struct Connection {
    pub client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Connection {
    /// Say goodbye to the broker (a persistent session is then kept for the next holder at
    /// once, not after the keep-alive runs out) and end the task.
    pub async fn close(mut self) {
        if self.client.disconnect().await.is_ok() && tokio::time::timeout(Duration::from_secs(2), &mut self.task).await.is_ok() {
            return;
        }
        self.task.abort();
    }
}

/// Connect to the broker and consume device messages until the host stops or the
/// connection is closed. Reconnects on its own; every (re)connection subscribes again.
pub(crate) fn connect(devices: &Arc<Devices>, session: Session, broker: &BrokerAddress) -> Connection {
    let mut options = MqttOptions::new(session.client_id(devices), &broker.host, broker.port);
    if let Some((user, password)) = &broker.credentials {
        options.set_credentials(user, password);
    }
    options.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(MAX_PACKET, MAX_PACKET).set_clean_session(session == Session::Commands);
    let (client, eventloop) = AsyncClient::new(options, 4096);
    let weak = Arc::downgrade(devices);
    let subscriber = client.clone();
    let stopped = devices.stopped();
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = stopped => {}
            _ = run(weak, session, subscriber, eventloop) => {}
        }
    });
    Connection { client, task }
}

/// The telemetry subscription's quality of service (`[devices] qos`).
pub(crate) fn qos(devices: &Devices) -> QoS {
    if devices.config.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

async fn run(devices: std::sync::Weak<Devices>, session: Session, client: AsyncClient, mut eventloop: EventLoop) {
    loop {
        let polled = eventloop.poll().await;
        let Some(devices) = devices.upgrade() else { return };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // A resumed persistent session keeps its subscription; subscribing again
                // costs nothing and covers a broker that forgot it.
                let (topic, qos) = session.subscription(&devices);
                if let Err(e) = client.try_subscribe(topic, qos) {
                    tracing::error!("cannot subscribe to device topics: {e}");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                session.subscribed(&devices).store(true, Ordering::SeqCst);
                let what = if session == Session::Telemetry { "device telemetry" } else { "command acknowledgements" };
                tracing::info!(broker = devices.broker_label(), "receiving {what}");
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => on_publish(&devices, &publish.topic, &publish.payload).await,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                session.subscribed(&devices).store(false, Ordering::SeqCst);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                if session.subscribed(&devices).swap(false, Ordering::SeqCst) {
                    tracing::warn!(broker = devices.broker_label(), ?session, "MQTT connection lost: {e}; reconnecting");
                } else {
                    tracing::debug!(?session, "MQTT connection: {e}");
                }
                drop(devices);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn on_publish(devices: &Devices, topic: &str, payload: &[u8]) {
    match engine::parse_topic(&devices.config.topic_prefix, topic) {
        Some(Topic::Telemetry(device_id)) => {
            if let Err(rejected) = devices.ingest(device_id, payload, now_millis()).await {
                tracing::debug!(device = device_id, "message refused: {rejected}");
            }
        }
        Some(Topic::Ack(device_id)) => devices.command_answered(device_id, payload),
        None => {
            devices.metrics.device_messages.with_label_values(&["bad-topic"]).inc();
        }
    }
}
