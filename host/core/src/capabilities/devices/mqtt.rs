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
    /// Partitioned ingest: the telemetry session of `Telemetry` (one holder at a time, kept
    /// by the broker in between), whose messages are appended to the ingest stream and
    /// acknowledged to the broker only once the stream has stored them; the replicas
    /// evaluate them from there. One holder keeps every device's readings in the order the
    /// broker has them (a shared subscription would spread one device's readings over the
    /// replicas, and they could reach the stream out of order).
    Bridge,
}

impl Session {
    fn client_id(self, devices: &Devices) -> String {
        match self {
            Self::Commands => format!("linli-host-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            Self::Telemetry | Self::Bridge => format!("linli-ingest-{}", devices.config.topic_prefix),
        }
    }

    fn subscription(self, devices: &Devices) -> (String, QoS) {
        let prefix = &devices.config.topic_prefix;
        match self {
            Self::Commands => (format!("{prefix}/devices/+/ack"), QoS::AtLeastOnce),
            Self::Telemetry | Self::Bridge => (format!("{prefix}/devices/+/telemetry"), qos(devices)),
        }
    }

    fn subscribed(self, devices: &Devices) -> &AtomicBool {
        match self {
            Self::Commands => &devices.commands_subscribed,
            Self::Telemetry | Self::Bridge => &devices.telemetry_subscribed,
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
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_clean_session(session == Session::Commands)
        .set_manual_acks(session == Session::Bridge);
    let (client, eventloop) = AsyncClient::new(options, 4096);
    let weak = Arc::downgrade(devices);
    let subscriber = client.clone();
    let stopped = devices.stopped();
    let task = tokio::spawn(async move {
        let (stored, acks) = tokio::sync::mpsc::channel(STORED_IN_FLIGHT);
        let acknowledger = (session == Session::Bridge).then(|| tokio::spawn(acknowledge_when_stored(weak.clone(), subscriber.clone(), acks)));
        tokio::select! {
            _ = stopped => {}
            _ = run(weak, session, subscriber, eventloop, stored) => {}
        }
        if let Some(acknowledger) = acknowledger {
            acknowledger.abort();
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

/// Readings appended to the stream whose broker acknowledgement waits for the stream.
const STORED_IN_FLIGHT: usize = 4096;

/// A message taken from the broker and appended to the stream, not yet acknowledged.
struct Forwarded {
    publish: rumqttc::Publish,
    device_id: String,
    received_at: i64,
    stored: async_nats::jetstream::context::PublishAckFuture,
}

/// Acknowledge bridged messages to the broker in the order they came, each once the stream
/// has stored it; one the stream did not store is appended again (a few times, then given
/// up and counted). Meanwhile the broker holds back what it has not been able to hand over.
async fn acknowledge_when_stored(devices: std::sync::Weak<Devices>, client: AsyncClient, mut forwarded: tokio::sync::mpsc::Receiver<Forwarded>) {
    while let Some(message) = forwarded.recv().await {
        let mut outcome = message.stored.await.map(drop).map_err(|e| e.to_string());
        let mut attempt = 0u32;
        while let Err(e) = &outcome {
            attempt += 1;
            let Some(devices) = devices.upgrade() else { return };
            if attempt > 5 {
                tracing::error!(device = message.device_id, "a reading was not stored in the ingest stream and is dropped: {e}");
                devices.metrics.device_messages.with_label_values(&["not-stored"]).inc();
                break;
            }
            tracing::warn!(device = message.device_id, attempt, "the ingest stream did not store a reading (appending it again): {e}");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            outcome = match devices.forward(&message.device_id, &message.publish.payload, message.received_at, true).await {
                Ok(Some(stored)) => stored.await.map(drop).map_err(|e| e.to_string()),
                Ok(None) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
        }
        if let Err(e) = client.ack(&message.publish).await {
            tracing::debug!("broker acknowledgement not sent: {e}");
        }
    }
}

async fn run(devices: std::sync::Weak<Devices>, session: Session, client: AsyncClient, mut eventloop: EventLoop, stored: tokio::sync::mpsc::Sender<Forwarded>) {
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
                let what = match session {
                    Session::Telemetry => "device telemetry",
                    Session::Bridge => "device telemetry for the ingest stream",
                    Session::Commands => "command acknowledgements",
                };
                tracing::info!(broker = devices.broker_label(), "receiving {what}");
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if session == Session::Bridge => bridge(&devices, &client, publish, &stored).await,
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

/// Partitioned ingest: append a telemetry message to the stream; the broker hears it was
/// taken (QoS 1) once the stream has stored it. Refused messages are acknowledged at once
/// (the broker would only hand them over again). What the broker hands over again after a
/// holder died between the stream's store and the acknowledgement is appended twice; the
/// evaluation raises nothing twice for it (partitions.rs).
async fn bridge(devices: &Devices, client: &AsyncClient, publish: rumqttc::Publish, stored: &tokio::sync::mpsc::Sender<Forwarded>) {
    let received_at = now_millis();
    let device_id = match engine::parse_topic(&devices.config.topic_prefix, &publish.topic) {
        Some(Topic::Telemetry(device_id)) => device_id.to_string(),
        _ => {
            devices.metrics.device_messages.with_label_values(&["bad-topic"]).inc();
            let _ = client.ack(&publish).await;
            return;
        }
    };
    let acknowledged = publish.qos != QoS::AtMostOnce;
    match devices.forward(&device_id, &publish.payload, received_at, acknowledged).await {
        Ok(Some(ack)) => {
            let _ = stored.send(Forwarded { publish, device_id, received_at, stored: ack }).await;
        }
        Ok(None) => {
            let _ = client.ack(&publish).await;
        }
        Err(super::IngestError::Rejected(rejected)) => {
            tracing::debug!(device = device_id, "message refused: {rejected}");
            let _ = client.ack(&publish).await;
        }
        Err(e) => {
            // Not appended, so not acknowledged: the broker hands it to the session's next
            // connection (this one's after a reconnect, or the next holder's).
            tracing::warn!(device = device_id, "{e}");
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
