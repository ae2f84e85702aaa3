//! `linli:platform/devices`: the device registry, MQTT (and HTTP) ingest, telemetry with
//! retention, alarm rules and alarms, and commands. `Devices` is the host-wide service;
//! plugins see the devices and alarms of their installation's subtree through `adapter`.
mod adapter;
pub mod alarms;
pub mod broker;
pub mod engine;
pub mod mqtt;
pub mod partitions;
pub mod registry;
pub mod rules;

pub use adapter::{Adapter, DevicesGrant, DevicesState, INFO};

use super::events::Outbox;
use crate::metrics::Metrics;
use crate::store::vault::{DEVICE_COMMAND, DEVICE_COMMAND_ACK, TELEMETRY_PAYLOAD};
use crate::store::{now_millis, Store};
use crate::tenancy::SharedTree;
use engine::{Reading, Rejected, Written};
use registry::{Device, NewDevice};
use rules::{AlarmStatus, RuleSpec, Tracker};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Debug is written by hand: the broker password stays out of logs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    /// `embedded` (start a broker inside the host), `mqtt://host:port` (an external
    /// broker such as Mosquitto) or `off` (HTTP ingest only).
    pub broker: String,
    /// Where the embedded broker listens.
    pub embedded_listen: String,
    /// How the host signs in to an external broker (the embedded one makes its own
    /// password). An empty password signs in without credentials.
    pub broker_username: String,
    pub broker_password: String,
    /// A directory where the host keeps Mosquitto's `passwd` and `acl` files current (on
    /// every device registration and secret rotation); empty: not kept. Mosquitto rereads
    /// them on SIGHUP.
    pub mosquitto_files: String,
    /// Topics are `{topic_prefix}/devices/{id}/…`.
    pub topic_prefix: String,
    /// 0 (at most once) or 1 (at least once) for telemetry subscriptions.
    pub qos: u8,
    /// Larger device messages are refused and counted.
    pub max_payload_bytes: usize,
    /// Telemetry older than this is deleted.
    pub retention_days: u32,
    /// A device not heard from for this long shows as offline.
    pub offline_after_seconds: u64,
    /// Evaluation workers; devices are spread over them by id.
    pub shards: usize,
    /// Partitioned ingest for several replicas: `nats://host:port` of a NATS server with
    /// JetStream, through which every replica's share of the broker's telemetry reaches the
    /// replica that evaluates its device's partition. Empty: one replica at a time evaluates
    /// all telemetry (the holder of the ingest lease; alone, the only replica).
    pub ingest_stream: String,
    /// Partitions of the ingest stream: the most replicas that can share the evaluation.
    /// Changing it moves devices between partitions: change it with every replica stopped.
    pub ingest_partitions: u16,
    /// How long the stream keeps a reading (whether evaluated or not): the longest all
    /// replicas may be down without losing what devices sent meanwhile.
    pub ingest_stream_max_age_minutes: u64,
    /// The most the stream keeps; the oldest readings go first.
    pub ingest_stream_max_mib: u64,
}

impl std::fmt::Debug for DevicesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicesConfig")
            .field("broker", &crate::store::redact(&self.broker))
            .field("embedded_listen", &self.embedded_listen)
            .field("broker_username", &self.broker_username)
            .field("broker_password", &crate::store::redacted(&self.broker_password))
            .field("mosquitto_files", &self.mosquitto_files)
            .field("topic_prefix", &self.topic_prefix)
            .field("qos", &self.qos)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("retention_days", &self.retention_days)
            .field("offline_after_seconds", &self.offline_after_seconds)
            .field("shards", &self.shards)
            .field("ingest_stream", &crate::store::redact(&self.ingest_stream))
            .field("ingest_partitions", &self.ingest_partitions)
            .field("ingest_stream_max_age_minutes", &self.ingest_stream_max_age_minutes)
            .field("ingest_stream_max_mib", &self.ingest_stream_max_mib)
            .finish()
    }
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            broker: "embedded".into(),
            embedded_listen: "127.0.0.1:1884".into(),
            broker_username: broker::HOST_USER.into(),
            broker_password: String::new(),
            mosquitto_files: String::new(),
            topic_prefix: "linli".into(),
            qos: 1,
            max_payload_bytes: 16 << 10,
            retention_days: 30,
            offline_after_seconds: 600,
            shards: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 16),
            ingest_stream: String::new(),
            ingest_partitions: 16,
            ingest_stream_max_age_minutes: 60,
            ingest_stream_max_mib: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Denied(String),
    #[error("devices: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Why a device message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The ingest stream did not store it (partitioned ingest); the device may send it again.
    #[error("{0}")]
    Unavailable(String),
}

impl crate::errors::Classified for DeviceError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::NotFound(_) => K::NotFound,
            Self::Conflict(_) => K::Conflict,
            // A device that did not answer a command in time.
            Self::Unavailable(_) => K::Timeout,
            Self::Denied(_) => K::Denied,
            Self::Config(_) => K::Internal,
            Self::Database(_) => K::Unavailable,
        }
    }
}

impl From<crate::store::vault::VaultError> for DeviceError {
    /// A sealed value that does not open is a database fault like a row that does not decode.
    fn from(e: crate::store::vault::VaultError) -> Self {
        DeviceError::Database(e.into())
    }
}

/// The host-wide device service.
pub struct Devices {
    pub store: Store,
    pub outbox: Arc<Outbox>,
    /// Rules with a `ticket_category` open a ticket with the alarm.
    pub tickets: Arc<super::tickets::Tickets>,
    pub config: DevicesConfig,
    tree: SharedTree,
    metrics: Arc<Metrics>,
    rules: RwLock<(u64, Arc<Vec<Arc<RuleSpec>>>)>,
    rules_version: AtomicU64,
    /// Trackers restored from the database at start, taken by the shards on first use.
    restored: Mutex<HashMap<(String, String), Tracker>>,
    shards: Vec<mpsc::Sender<Reading>>,
    receivers: Mutex<Vec<mpsc::Receiver<Reading>>>,
    telemetry: mpsc::Sender<Written>,
    telemetry_rx: Mutex<Option<mpsc::Receiver<Written>>>,
    last_seen: Mutex<HashMap<String, i64>>,
    /// This replica's connection for commands and their acknowledgements.
    mqtt: Mutex<Option<mqtt::Connection>>,
    /// The telemetry session, open while this replica holds device ingest.
    telemetry_session: tokio::sync::Mutex<Option<mqtt::Connection>>,
    /// The JetStream stream of partitioned ingest, once connected (`ingest_stream`).
    stream: std::sync::OnceLock<Arc<partitions::IngestStream>>,
    /// The task keeping this replica's share of the partitions; `stop` waits for it to hand
    /// them back.
    partition_keeper: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The partitions this replica evaluates now, in order.
    evaluating: Mutex<Vec<u16>>,
    /// Where the broker is, once `start` has worked it out.
    broker_address: std::sync::OnceLock<mqtt::BrokerAddress>,
    /// The embedded broker, when the host runs one.
    gate: std::sync::OnceLock<Arc<broker::Gate>>,
    commands_subscribed: AtomicBool,
    telemetry_subscribed: AtomicBool,
    /// Whether this replica holds the broker's telemetry session: one replica at a time
    /// does, the holder of the `device-ingest` lease (all of them send commands and hear
    /// acknowledgements). It evaluates all telemetry — or, with partitioned ingest, appends
    /// it to the ingest stream, and each replica evaluates the partitions it holds.
    pub ingesting: AtomicBool,
    /// Bumped when this replica takes over ingest, so the shards drop their trackers and
    /// start from the alarms the previous holder left in the database.
    pub(crate) generation: AtomicU64,
    /// Who holds leases for this process.
    replica_id: String,
    commands: Mutex<HashMap<String, oneshot::Sender<String>>>,
    /// Set once when the host stops: every task of this service ends.
    stop: tokio::sync::watch::Sender<bool>,
}

/// How long a replica's hold on device ingest lasts without renewal.
const LEASE_TTL_MS: i64 = 10_000;

/// Trackers as the database leaves them: open alarms, open `duration` windows and the last
/// clear per rule and device.
async fn restore_trackers(store: &Store) -> Result<HashMap<(String, String), Tracker>, sqlx::Error> {
    let mut restored: HashMap<(String, String), Tracker> = HashMap::new();
    for (rule, device, since) in alarms::open_windows(store).await? {
        restored.entry((rule, device)).or_default().since = Some(since);
    }
    for (rule, device, cleared_at) in alarms::last_cleared(store).await? {
        restored.entry((rule, device)).or_default().last_cleared = Some(cleared_at);
    }
    for (rule, device, alarm) in alarms::open(store).await? {
        restored.entry((rule, device)).or_default().open_alarm = Some(alarm);
    }
    Ok(restored)
}

impl Devices {
    /// Load rules and open alarms. Nothing runs until `start`.
    pub async fn new(
        store: Store,
        outbox: Arc<Outbox>,
        tickets: Arc<super::tickets::Tickets>,
        tree: SharedTree,
        metrics: Arc<Metrics>,
        config: DevicesConfig,
    ) -> Result<Arc<Self>, DeviceError> {
        let shard_count = config.shards.max(1);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shard_count).map(|_| mpsc::channel(4096)).unzip();
        let (telemetry, telemetry_rx) = mpsc::channel(16_384);
        let restored = restore_trackers(&store).await?;
        let devices = Arc::new(Self {
            store,
            outbox,
            tickets,
            config,
            tree,
            metrics,
            rules: RwLock::new((0, Arc::new(Vec::new()))),
            rules_version: AtomicU64::new(0),
            restored: Mutex::new(restored),
            shards: senders,
            receivers: Mutex::new(receivers),
            telemetry,
            telemetry_rx: Mutex::new(Some(telemetry_rx)),
            last_seen: Mutex::default(),
            mqtt: Mutex::default(),
            telemetry_session: tokio::sync::Mutex::default(),
            stream: std::sync::OnceLock::new(),
            partition_keeper: tokio::sync::Mutex::default(),
            evaluating: Mutex::default(),
            broker_address: std::sync::OnceLock::new(),
            gate: std::sync::OnceLock::new(),
            commands_subscribed: AtomicBool::new(false),
            telemetry_subscribed: AtomicBool::new(false),
            ingesting: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            replica_id: uuid::Uuid::new_v4().simple().to_string(),
            commands: Mutex::default(),
            stop: tokio::sync::watch::Sender::new(false),
        });
        devices.reload_rules().await?;
        Ok(devices)
    }

    /// Whether readings go through the partitioned ingest stream (`ingest_stream`).
    pub fn partitioned(&self) -> bool {
        !self.config.ingest_stream.is_empty()
    }

    /// Partitioned ingest: connect to the stream (creating it the first time). `start` then
    /// takes this replica's share of the partitions.
    pub async fn join_ingest_stream(&self) -> Result<(), DeviceError> {
        let config = &self.config;
        let max_age = Duration::from_secs(config.ingest_stream_max_age_minutes.max(1).saturating_mul(60));
        let max_bytes = i64::try_from(config.ingest_stream_max_mib.max(1).saturating_mul(1 << 20)).unwrap_or(i64::MAX);
        if !(1..=1024).contains(&config.ingest_partitions) {
            return Err(DeviceError::Config(format!("ingest_partitions is {}; it must be 1–1024", config.ingest_partitions)));
        }
        let stream = partitions::IngestStream::connect(&config.ingest_stream, &config.topic_prefix, config.ingest_partitions, max_age, max_bytes).await?;
        // Each partition starts from the database when this replica takes it, not from what
        // was there when the host started.
        if let Ok(mut restored) = self.restored.lock() {
            restored.clear();
        }
        let _ = self.stream.set(Arc::new(stream));
        Ok(())
    }

    /// Partitioned ingest: the partitions this replica evaluates now (None: not partitioned).
    pub fn evaluated_partitions(&self) -> Option<Vec<u16>> {
        self.partitioned().then(|| self.evaluating.lock().map(|p| p.clone()).unwrap_or_default())
    }

    pub(crate) fn set_evaluated_partitions(&self, mut partitions: Vec<u16>) {
        partitions.sort_unstable();
        if let Ok(mut evaluating) = self.evaluating.lock() {
            *evaluating = partitions;
        }
    }

    /// The lease of the broker's telemetry session (and, unpartitioned, of evaluation).
    pub(crate) fn lease_name(&self) -> String {
        format!("device-ingest:{}", self.config.topic_prefix)
    }

    /// Take or keep the ingest lease every `every` while the service runs (several
    /// replicas); with `every` = None this replica ingests alone.
    pub async fn share_ingest(self: &Arc<Self>, every: Option<Duration>) -> Result<(), sqlx::Error> {
        let Some(every) = every else {
            self.ingesting.store(true, Ordering::SeqCst);
            return Ok(());
        };
        let held = crate::store::lease::hold_lease(&self.store, &self.lease_name(), &self.replica_id, LEASE_TTL_MS).await?;
        self.ingesting.store(held, Ordering::SeqCst);
        tokio::spawn(crate::util::every(every, Arc::downgrade(self), self.stopped(), |devices| async move {
            match crate::store::lease::hold_lease(&devices.store, &devices.lease_name(), &devices.replica_id, LEASE_TTL_MS).await {
                Ok(held) => devices.set_ingesting(held).await,
                Err(e) => tracing::warn!("device-ingest lease not renewed (trying again): {e}"),
            }
        }));
        Ok(())
    }

    async fn set_ingesting(self: &Arc<Self>, on: bool) {
        if self.ingesting.load(Ordering::SeqCst) == on {
            return;
        }
        if on && self.partitioned() {
            // Only the broker's telemetry session moves; each partition's evaluation moves
            // with its own lease (partitions.rs).
            self.ingesting.store(true, Ordering::SeqCst);
            self.open_telemetry_session().await;
            tracing::info!("this replica now takes device telemetry into the ingest stream");
        } else if on {
            // Start from what the previous holder left: open alarms, last clears.
            match restore_trackers(&self.store).await {
                Ok(restored) => {
                    if let Ok(mut slot) = self.restored.lock() {
                        *slot = restored;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot take over device ingest yet: {e}");
                    return;
                }
            }
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.ingesting.store(true, Ordering::SeqCst);
            self.open_telemetry_session().await;
            tracing::info!("this replica now evaluates device telemetry");
        } else {
            self.ingesting.store(false, Ordering::SeqCst);
            self.close_telemetry_session().await;
            tracing::info!("another replica evaluates device telemetry now");
        }
    }

    /// Take the telemetry session (once the broker's address is known: `start` opens it for
    /// a replica that already holds ingest by then).
    async fn open_telemetry_session(self: &Arc<Self>) {
        let Some(broker) = self.broker_address.get() else { return };
        let mut session = self.telemetry_session.lock().await;
        if session.is_none() {
            let kind = if self.partitioned() { mqtt::Session::Bridge } else { mqtt::Session::Telemetry };
            *session = Some(mqtt::connect(self, kind, broker));
        }
    }

    /// Hand the telemetry session back to the broker, which keeps it for the next holder.
    async fn close_telemetry_session(&self) {
        let session = self.telemetry_session.lock().await.take();
        if let Some(session) = session {
            session.close().await;
        }
    }

    /// Connected to the broker and subscribed to what this replica receives: the devices'
    /// acknowledgements and, while it holds device ingest, their telemetry.
    pub fn connected(&self) -> bool {
        self.commands_subscribed.load(Ordering::SeqCst) && (!self.ingesting.load(Ordering::SeqCst) || self.telemetry_subscribed.load(Ordering::SeqCst))
    }

    /// Start the workers, the batch writers and the MQTT connection.
    pub fn start(self: &Arc<Self>) -> Result<(), DeviceError> {
        let prefix = &self.config.topic_prefix;
        if prefix.is_empty() || prefix.contains(['+', '#']) || prefix.starts_with('/') || prefix.ends_with('/') {
            return Err(DeviceError::Config(format!("topic_prefix `{prefix}` must be non-empty, without + or #, and not start or end with /")));
        }
        let receivers = std::mem::take(&mut *self.receivers.lock().map_err(|_| DeviceError::Config("poisoned".into()))?);
        for receiver in receivers {
            tokio::spawn(until_stopped(self.stopped(), engine::run_shard(self.clone(), receiver)));
        }
        let stream = self.stream.get().cloned();
        if self.partitioned() && stream.is_none() {
            return Err(DeviceError::Config("ingest_stream is set: join the ingest stream before starting".into()));
        }
        if let Some(rows) = self.telemetry_rx.lock().ok().and_then(|mut r| r.take()) {
            // Ends when the last sender (held by this service) is gone, after writing
            // what is queued.
            tokio::spawn(engine::run_telemetry_writer(self.store.clone(), stream.as_ref().map(|s| s.name.clone()), rows));
        }
        if let Some(stream) = &stream {
            let keeper = tokio::spawn(partitions::run(self.clone(), stream.clone(), self.replica_id.clone()));
            if let Ok(mut slot) = self.partition_keeper.try_lock() {
                *slot = Some(keeper);
            }
        }
        tokio::spawn(until_stopped(self.stopped(), engine::run_retention(self.store.clone(), self.config.retention_days)));
        tokio::spawn(crate::util::every(Duration::from_secs(2), Arc::downgrade(self), self.stopped(), flush_last_seen));
        let broker = match self.config.broker.as_str() {
            "off" => return Ok(()),
            "embedded" => {
                let gate = broker::start_embedded(&self.config.embedded_listen)?;
                self.answer_to(&gate);
                let _ = self.gate.set(gate.clone());
                let (host, port) = self.config.embedded_listen.rsplit_once(':').unwrap_or(("127.0.0.1", "1884"));
                let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
                let port = port.parse().map_err(|_| DeviceError::Config(format!("embedded_listen `{}` has no port", self.config.embedded_listen)))?;
                mqtt::BrokerAddress { host: host.to_string(), port, credentials: Some((broker::HOST_USER.to_string(), gate.host_secret().to_string())) }
            }
            url => {
                let (host, port) = mqtt::parse_url(url)?;
                let credentials = (!self.config.broker_password.is_empty()).then(|| (self.config.broker_username.clone(), self.config.broker_password.clone()));
                mqtt::BrokerAddress { host, port, credentials }
            }
        };
        let connection = mqtt::connect(self, mqtt::Session::Commands, &broker);
        if let Ok(mut slot) = self.mqtt.lock() {
            *slot = Some(connection);
        }
        let _ = self.broker_address.set(broker);
        if self.ingesting.load(Ordering::SeqCst) {
            let devices = self.clone();
            tokio::spawn(async move { devices.open_telemetry_session().await });
        }
        Ok(())
    }

    /// Be the embedded broker's gatekeeper: it asks this service whether a device's secret
    /// is right, and counts its refusals in this host's metrics.
    fn answer_to(self: &Arc<Self>, gate: &broker::Gate) {
        let (checks, mut asked) = mpsc::channel::<broker::CredentialCheck>(256);
        gate.attach(broker::Attached { prefix: self.config.topic_prefix.clone(), checks, refused: self.metrics.mqtt_refused.clone() });
        let store = self.store.clone();
        tokio::spawn(until_stopped(self.stopped(), async move {
            while let Some(check) = asked.recv().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let matches = registry::secret_matches(&store, &check.device, &check.secret).await.unwrap_or_else(|e| {
                        tracing::warn!(device = check.device, "cannot check a device's secret: {e}");
                        false
                    });
                    let _ = check.reply.send(matches);
                });
            }
        }));
    }

    /// Resolves when the service is stopped.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }

    /// Stop the workers and disconnect from the broker. The telemetry session goes back to
    /// the broker first, so what devices send from then on waits there for the next holder;
    /// readings already received and still queued here are dropped.
    pub async fn stop(&self) {
        self.close_telemetry_session().await;
        self.stop.send_replace(true);
        // Partitioned ingest: each partition's last readings written, its lease given back.
        let keeper = self.partition_keeper.lock().await.take();
        if let Some(keeper) = keeper {
            let _ = keeper.await;
        }
        if self.ingesting.swap(false, Ordering::SeqCst) {
            if let Err(e) = crate::store::lease::release_lease(&self.store, &self.lease_name(), &self.replica_id).await {
                tracing::warn!("device-ingest lease not released (it expires on its own): {e}");
            }
        }
        let connection = self.mqtt.lock().ok().and_then(|mut c| c.take());
        if let Some(connection) = connection {
            connection.close().await;
        }
        // Write what the last flush has not.
        let seen: Vec<(String, i64)> = self.last_seen.lock().map(|mut s| s.drain().collect()).unwrap_or_default();
        if let Err(e) = registry::flush_last_seen(&self.store, &seen).await {
            tracing::warn!("last-seen times not stored at stop: {e}");
        }
    }

    pub fn broker_label(&self) -> String {
        match self.config.broker.as_str() {
            "embedded" => format!("embedded broker at {}", self.config.embedded_listen),
            other => other.to_string(),
        }
    }

    /// Check a message and queue it for its device's shard — or, with partitioned ingest,
    /// append it to the stream and wait until the stream has stored it. Refusals are counted.
    pub async fn ingest(&self, device_id: &str, payload: &[u8], received_at: i64) -> Result<(), IngestError> {
        if self.partitioned() {
            // Checked here, so that the sender hears what is wrong with it.
            engine::parse_reading(device_id, payload, received_at, self.config.max_payload_bytes).inspect_err(|rejected| {
                self.metrics.device_messages.with_label_values(&[rejected.label()]).inc();
            })?;
            if let Some(stored) = self.forward(device_id, payload, received_at, true).await? {
                stored.await.map_err(|e| IngestError::Unavailable(format!("the ingest stream did not store the reading: {e}")))?;
            }
            return Ok(());
        }
        let reading = engine::parse_reading(device_id, payload, received_at, self.config.max_payload_bytes).inspect_err(|rejected| {
            self.metrics.device_messages.with_label_values(&[rejected.label()]).inc();
        })?;
        let shard = engine::shard_of(device_id, self.shards.len());
        if let Some(sender) = self.shards.get(shard) {
            // Waiting here slows the MQTT client down rather than dropping readings.
            let _ = sender.send(reading).await;
        }
        Ok(())
    }

    /// Partitioned ingest: append a message to its device's partition. Only its size is
    /// checked here; the partition's evaluation checks the rest (and counts what it refuses).
    /// `acknowledged`: the returned future resolves once the stream has stored it; otherwise
    /// (a QoS 0 message, which the broker does not wait for either) it is sent without
    /// waiting for the stream's answer. None: no stream, or not acknowledged.
    pub(crate) async fn forward(
        &self,
        device_id: &str,
        payload: &[u8],
        received_at: i64,
        acknowledged: bool,
    ) -> Result<Option<async_nats::jetstream::context::PublishAckFuture>, IngestError> {
        let limit = self.config.max_payload_bytes;
        if payload.len() > limit {
            let rejected = Rejected::Oversized { size: payload.len(), limit };
            self.metrics.device_messages.with_label_values(&[rejected.label()]).inc();
            return Err(rejected.into());
        }
        let Some(stream) = self.stream.get() else { return Ok(None) };
        let appended = if acknowledged {
            stream.append(device_id, received_at, payload).await.map(Some)
        } else {
            stream.append_unacknowledged(device_id, received_at, payload).await.map(|()| None)
        };
        appended.map_err(|e| IngestError::Unavailable(e.to_string()))
    }

    fn saw(&self, device_id: &str, at: i64) {
        if let Ok(mut seen) = self.last_seen.lock() {
            seen.insert(device_id.to_string(), at);
        }
    }

    /// When the device was last heard from, including what is not yet written.
    fn last_seen_now(&self, device: &mut Device) {
        if let Some(at) = self.last_seen.lock().ok().and_then(|s| s.get(&device.id).copied()) {
            device.last_seen_at = Some(device.last_seen_at.map_or(at, |stored| stored.max(at)));
            device.online = now_millis().saturating_sub(at) < self.offline_after_ms();
        }
    }

    fn offline_after_ms(&self) -> i64 {
        i64::try_from(self.config.offline_after_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn rules_snapshot(&self) -> (u64, Arc<Vec<Arc<RuleSpec>>>) {
        self.rules.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn initial_tracker(&self, key: &(String, String)) -> Tracker {
        self.restored.lock().ok().and_then(|mut r| r.remove(key)).unwrap_or_default()
    }

    /// Reload the rules if another replica changed them; true when it did.
    pub async fn sync_rules(&self) -> Result<bool, sqlx::Error> {
        let stored = alarms::rules(&self.store).await?;
        let same = self.rules.read().map(|r| r.1.len() == stored.len() && r.1.iter().zip(&stored).all(|(a, b)| **a == *b)).unwrap_or(false);
        if same {
            return Ok(false);
        }
        self.reload_rules().await?;
        Ok(true)
    }

    async fn reload_rules(&self) -> Result<(), sqlx::Error> {
        let loaded = alarms::rules(&self.store).await?;
        let version = self.rules_version.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut rules) = self.rules.write() {
            *rules = (version, Arc::new(loaded.into_iter().map(Arc::new).collect()));
        }
        Ok(())
    }

    pub async fn register(&self, new: &NewDevice) -> Result<(Device, Option<String>), DeviceError> {
        let registered = registry::register(&self.store, &self.tree.snapshot(), new).await?;
        if registered.1.is_some() {
            self.refresh_mosquitto_files().await;
        }
        Ok(registered)
    }

    /// A new secret for a device (shown once); the old one stops working at once — on the
    /// embedded broker its connection is ended too; on Mosquitto new connections are refused
    /// after it rereads its files, while one already open stays until it ends.
    pub async fn rotate_secret(&self, id: &str) -> Result<String, DeviceError> {
        let secret = registry::rotate_secret(&self.store, id).await?;
        if let Some(gate) = self.gate.get() {
            gate.disconnect(id);
        }
        self.refresh_mosquitto_files().await;
        Ok(secret)
    }

    /// Rewrite Mosquitto's password and ACL files where `mosquitto_files` says.
    async fn refresh_mosquitto_files(&self) {
        if self.config.mosquitto_files.is_empty() {
            return;
        }
        if let Err(e) = write_mosquitto_files(&self.store, &self.config, std::path::Path::new(&self.config.mosquitto_files)).await {
            tracing::error!(dir = self.config.mosquitto_files, "Mosquitto's password and ACL files not updated: {e}");
        }
    }

    pub async fn device(&self, id: &str) -> Result<Device, DeviceError> {
        let mut device = registry::get(&self.store, id, self.offline_after_ms()).await?.ok_or_else(|| DeviceError::NotFound(format!("device `{id}`")))?;
        self.last_seen_now(&mut device);
        Ok(device)
    }

    /// Devices within `tenant_id`'s subtree.
    pub async fn devices(&self, tenant_id: &str, device_type: Option<&str>) -> Result<Vec<Device>, DeviceError> {
        let tenants = self.tree.snapshot().subtree(tenant_id);
        let mut devices = registry::list(&self.store, &tenants, device_type, self.offline_after_ms()).await?;
        devices.iter_mut().for_each(|d| self.last_seen_now(d));
        Ok(devices)
    }

    pub async fn latest_telemetry(&self, device_id: &str) -> Result<Option<(i64, String)>, DeviceError> {
        let latest: Option<(i64, String)> = sqlx::query_as("SELECT at, payload FROM telemetry WHERE device_id = $1 ORDER BY at DESC LIMIT 1")
            .bind(device_id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(latest
            .map(|(at, payload)| TELEMETRY_PAYLOAD.open_row(&self.store.vault, &[device_id, &at.to_string()], &payload).map(|payload| (at, payload)))
            .transpose()?)
    }

    pub async fn set_rule(&self, rule: &RuleSpec) -> Result<(), DeviceError> {
        rule.validate().map_err(DeviceError::Invalid)?;
        if self.tree.snapshot().get(&rule.tenant_id).is_none() {
            return Err(DeviceError::Invalid(format!("tenant `{}` does not exist", rule.tenant_id)));
        }
        if let Some(device) = &rule.device_id {
            self.device(device).await?;
        }
        if let Some(category) = &rule.ticket_category {
            if !self.tickets.categories().await.map_err(|e| DeviceError::Unavailable(e.to_string()))?.iter().any(|c| &c.id == category) {
                return Err(DeviceError::Invalid(format!("ticket category `{category}` does not exist")));
            }
        }
        alarms::save_rule(&self.store, rule).await?;
        self.reload_rules().await?;
        Ok(())
    }

    pub async fn delete_rule(&self, id: &str) -> Result<(), DeviceError> {
        if !alarms::delete_rule(&self.store, id).await? {
            return Err(DeviceError::NotFound(format!("rule `{id}`")));
        }
        self.reload_rules().await?;
        Ok(())
    }

    pub fn rules(&self) -> Vec<RuleSpec> {
        self.rules_snapshot().1.iter().map(|r| (**r).clone()).collect()
    }

    pub async fn alarms(&self, tenant_id: &str, status: Option<AlarmStatus>, limit: u32) -> Result<Vec<alarms::Alarm>, DeviceError> {
        Ok(alarms::list(&self.store, &self.tree.snapshot().subtree(tenant_id), status, limit).await?)
    }

    pub async fn alarm(&self, id: &str) -> Result<alarms::Alarm, DeviceError> {
        alarms::get(&self.store, id).await?.ok_or_else(|| DeviceError::NotFound(format!("alarm `{id}`")))
    }

    pub async fn acknowledge(&self, id: &str, by: &str) -> Result<alarms::Alarm, DeviceError> {
        alarms::acknowledge(&self.store, &self.outbox, id, by).await
    }

    /// Publish a command and wait for the device's acknowledgement.
    pub async fn send_command(&self, device_id: &str, command: &serde_json::Value, timeout: Duration, sent_by: &str) -> Result<String, DeviceError> {
        self.device(device_id).await?;
        let client = self
            .mqtt
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|c| c.client.clone()))
            .ok_or_else(|| DeviceError::Unavailable("no MQTT broker is configured ([devices] broker = \"off\")".into()))?;
        let id = uuid::Uuid::now_v7().to_string();
        let message = serde_json::json!({ "id": id, "command": command });
        sqlx::query("INSERT INTO device_commands (id, device_id, sent_by, command, status, sent_at) VALUES ($1, $2, $3, $4, 'sent', $5)")
            .bind(&id)
            .bind(device_id)
            .bind(sent_by)
            .bind(DEVICE_COMMAND.seal(&self.store.vault, &id, &command.to_string())?.0)
            .bind(now_millis())
            .execute(&self.store.pool)
            .await?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.commands.lock() {
            pending.insert(id.clone(), tx);
        }
        let topic = format!("{}/devices/{device_id}/commands", self.config.topic_prefix);
        let published = client.publish(topic, rumqttc::QoS::AtLeastOnce, false, message.to_string().into_bytes()).await;
        let answer = match published {
            Ok(()) => tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok),
            Err(e) => {
                tracing::warn!(device = device_id, "command not published: {e}");
                None
            }
        };
        if let Ok(mut pending) = self.commands.lock() {
            pending.remove(&id);
        }
        let (status, ack) = match &answer {
            Some(ack) => ("acknowledged", Some(DEVICE_COMMAND_ACK.seal(&self.store.vault, &id, ack)?.0)),
            None => ("timed-out", None),
        };
        sqlx::query("UPDATE device_commands SET status = $1, ack = $2, answered_at = $3 WHERE id = $4")
            .bind(status)
            .bind(ack)
            .bind(now_millis())
            .bind(&id)
            .execute(&self.store.pool)
            .await?;
        answer.ok_or_else(|| DeviceError::Unavailable(format!("device `{device_id}` did not acknowledge the command within {} ms", timeout.as_millis())))
    }

    fn command_answered(&self, device_id: &str, payload: &[u8]) {
        let id = serde_json::from_slice::<serde_json::Value>(payload).ok().and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
        let Some(id) = id else {
            self.metrics.device_messages.with_label_values(&["malformed"]).inc();
            return;
        };
        let waiting = self.commands.lock().ok().and_then(|mut pending| pending.remove(&id));
        match waiting {
            Some(tx) => {
                let _ = tx.send(String::from_utf8_lossy(payload).into_owned());
            }
            None => tracing::debug!(device = device_id, command = id, "acknowledgement of a command nobody waits for"),
        }
    }
}

/// What `write_mosquitto_files` wrote.
#[derive(Debug, Default)]
pub struct MosquittoFiles {
    pub devices: usize,
    /// Devices registered before brokers needed credentials: rotate their secrets.
    pub without_hash: Vec<String>,
}

/// Write Mosquitto's `passwd` (the host's user and every device) and `acl` (each device on
/// its own topics) into `dir`, each replaced in one rename. The host's user needs
/// `broker_password`.
pub async fn write_mosquitto_files(store: &Store, config: &DevicesConfig, dir: &std::path::Path) -> Result<MosquittoFiles, DeviceError> {
    if config.broker_password.is_empty() {
        return Err(DeviceError::Config("set [devices] broker_password (LINLI_DEVICES__BROKER_PASSWORD): the host signs in to Mosquitto with it".into()));
    }
    if !broker::is_host_user(&config.broker_username) {
        return Err(DeviceError::Config(format!(
            "[devices] broker_username `{}` must begin with `{}` (device ids may not), so no device can be the host",
            config.broker_username,
            broker::HOST_CLIENT_PREFIX
        )));
    }
    let mut written = MosquittoFiles::default();
    let mut passwd = format!("{}:{}\n", config.broker_username, broker::mosquitto_hash(&config.broker_password));
    for (id, hash) in registry::broker_hashes(store).await? {
        match hash {
            Some(hash) => {
                passwd.push_str(&format!("{id}:{hash}\n"));
                written.devices += 1;
            }
            None => written.without_hash.push(id),
        }
    }
    let acl = broker::mosquitto_acl(&config.topic_prefix, &config.broker_username);
    let io = |what: &str, e: std::io::Error| DeviceError::Config(format!("{what} in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory", e))?;
    for (name, text) in [("passwd", passwd), ("acl", acl)] {
        let staged = dir.join(format!(".{name}.new"));
        std::fs::write(&staged, text).map_err(|e| io("cannot write", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o640)).map_err(|e| io("cannot set permissions", e))?;
        }
        std::fs::rename(&staged, dir.join(name)).map_err(|e| io("cannot replace", e))?;
    }
    Ok(written)
}

/// Run `task` until `stopped` resolves.
async fn until_stopped(stopped: impl std::future::Future<Output = ()>, task: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stopped => {}
        _ = task => {}
    }
}

/// Write the last-seen times heard since the previous round.
async fn flush_last_seen(devices: Arc<Devices>) {
    let seen: Vec<(String, i64)> = devices.last_seen.lock().map(|mut s| s.drain().collect()).unwrap_or_default();
    if let Err(e) = registry::flush_last_seen(&devices.store, &seen).await {
        tracing::warn!("last-seen times not stored: {e}");
        // Keep them for the next round.
        if let Ok(mut pending) = devices.last_seen.lock() {
            for (id, at) in seen {
                pending.entry(id).and_modify(|t| *t = (*t).max(at)).or_insert(at);
            }
        }
    }
}
