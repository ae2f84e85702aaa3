//! Device ingest partitioned over replicas (`[devices] ingest_stream = "nats://…"`).
//!
//! Devices keep speaking MQTT. Every replica takes a share of the broker's telemetry (an
//! MQTT shared subscription: the broker hands each message to one of them) and appends the
//! reading to a NATS JetStream stream, on one subject per partition; a device always lands
//! in the same partition. Each partition is evaluated by one replica at a time, the holder
//! of its lease, reading the stream in order from the position the database holds for it.
//! A partition's telemetry rows, its rules' open `duration` windows and its position commit
//! in one transaction (the batch writer's), so a replica that takes a partition over — when
//! a replica joins or leaves, or dies — goes on from the last commit. The readings after it
//! are evaluated once more; that raises and clears nothing twice, because an alarm is
//! written before its reading's position is, the new holder starts from the alarms in the
//! database, and the database keeps one open alarm per rule and device (a unique index).
//!
//! Partitions are split over the live replicas (those renewing a member lease) in runs, so
//! that each does an equal share of the work: the replica that feeds the stream from the
//! broker evaluates fewer (`owners`).
use super::engine::{self, Shard, Written};
use super::{restore_trackers, DeviceError, Devices};
use crate::store::{lease, Store};
use async_nats::jetstream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long a member's or a partition holder's lease lasts without renewal: a dead
/// replica's partitions move after this long.
const LEASE_TTL_MS: i64 = 10_000;
/// How often a replica renews its leases and rebalances.
const BEAT: Duration = Duration::from_secs(1);
/// How long a partition's evaluation may take to finish its last readings when it is
/// handed over; after that it is stopped where it is (its successor reads the rest again).
const HANDOVER_LIMIT: Duration = Duration::from_secs(10);

/// How long a partition's reader waits after an error of the stream before going on.
const ERROR_PAUSE: Duration = Duration::from_millis(200);

/// The JetStream stream readings go through.
pub struct IngestStream {
    client: async_nats::Client,
    context: jetstream::Context,
    /// The stream's name, also the key of its partitions' positions in the database.
    pub name: String,
    subject_root: String,
    pub partitions: u16,
}

/// The stream's name and subject root for a topic prefix: NATS names take no `/`, `.`,
/// `*`, `>` or spaces, so other characters become `_`, and a prefix that needed that gets
/// a short hash of itself (`a/b` and `a_b` stay apart).
pub fn names(topic_prefix: &str) -> (String, String) {
    let plain: String = topic_prefix.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let token = if plain == topic_prefix {
        plain
    } else {
        use sha2::Digest;
        format!("{plain}_{}", &hex::encode(sha2::Sha256::digest(topic_prefix.as_bytes()))[..8])
    };
    (format!("LINLI_TELEMETRY_{token}"), format!("linli-telemetry.{token}"))
}

/// The partition a device's readings go to, of `partitions`.
pub fn partition_of(device_id: &str, partitions: u16) -> u16 {
    u16::try_from(engine::shard_of(device_id, usize::from(partitions))).unwrap_or(0)
}

/// A reading as the stream carries it: `{received_at} {device_id}\n{payload}`.
pub fn frame(device_id: &str, received_at: i64, payload: &[u8]) -> Vec<u8> {
    let head = format!("{received_at} {device_id}\n");
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// The device, arrival time and payload of a framed reading; None when it is not one.
pub fn unframe(data: &[u8]) -> Option<(&str, i64, &[u8])> {
    let newline = data.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(data.get(..newline)?).ok()?;
    let (received_at, device_id) = head.split_once(' ')?;
    if !super::registry::is_valid_device_id(device_id) {
        return None;
    }
    Some((device_id, received_at.parse().ok()?, data.get(newline + 1..)?))
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Unavailable(format!("{what}: {e}"))
}

impl IngestStream {
    /// Connect to NATS and create the stream if it does not exist yet (or update its limits).
    pub async fn connect(url: &str, topic_prefix: &str, partitions: u16, max_age: Duration, max_bytes: i64) -> Result<Self, DeviceError> {
        let shown = crate::store::redact(url);
        let address: async_nats::ServerAddr =
            url.parse().map_err(|e| DeviceError::Config(format!("ingest_stream `{shown}` is not a NATS URL (nats://[user:password@]host:port): {e}")))?;
        // The client takes a user and password from its options, not from the URL.
        let options = match (address.username(), address.password()) {
            (Some(user), Some(password)) => async_nats::ConnectOptions::with_user_and_password(user.to_string(), password.to_string()),
            _ => async_nats::ConnectOptions::new(),
        };
        let client = options
            .name("linli-device-ingest")
            .connection_timeout(Duration::from_secs(5))
            .connect(address)
            .await
            .map_err(|e| DeviceError::Config(format!("cannot reach the ingest stream's NATS server at {shown}: {e}")))?;
        let context = jetstream::new(client.clone());
        let (name, subject_root) = names(topic_prefix);
        let config = jetstream::stream::Config {
            name: name.clone(),
            description: Some(format!("Linli device readings under the MQTT prefix `{topic_prefix}`, one subject per partition")),
            subjects: vec![format!("{subject_root}.*")],
            retention: jetstream::stream::RetentionPolicy::Limits,
            discard: jetstream::stream::DiscardPolicy::Old,
            storage: jetstream::stream::StorageType::File,
            max_age,
            max_bytes,
            ..Default::default()
        };
        match context.get_stream(&name).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(|e| unavailable("the ingest stream cannot be read", e))?;
                if info.config.subjects != config.subjects || info.config.max_age != max_age || info.config.max_bytes != max_bytes {
                    context.update_stream(config).await.map_err(|e| DeviceError::Config(format!("the ingest stream `{name}` cannot be updated: {e}")))?;
                }
            }
            Err(_) => {
                context.create_stream(config).await.map_err(|e| DeviceError::Config(format!("the ingest stream `{name}` cannot be created: {e}")))?;
            }
        }
        Ok(Self { client, context, name, subject_root, partitions: partitions.max(1) })
    }

    pub fn partition_of(&self, device_id: &str) -> u16 {
        partition_of(device_id, self.partitions)
    }

    fn subject(&self, partition: u16) -> String {
        format!("{}.{partition}", self.subject_root)
    }

    /// Append a reading to its device's partition. Resolves once the message is on its way;
    /// the returned future resolves when the stream has stored it.
    pub async fn append(&self, device_id: &str, received_at: i64, payload: &[u8]) -> Result<jetstream::context::PublishAckFuture, DeviceError> {
        let subject = self.subject(self.partition_of(device_id));
        self.context
            .publish(subject, frame(device_id, received_at, payload).into())
            .await
            .map_err(|e| unavailable("the ingest stream did not take a reading", e))
    }

    /// Append a reading without waiting for the stream's answer (the stream stores what
    /// reaches it on its subjects; what does not, because the connection broke, is lost as a
    /// QoS 0 message may be).
    pub async fn append_unacknowledged(&self, device_id: &str, received_at: i64, payload: &[u8]) -> Result<(), DeviceError> {
        let subject = self.subject(self.partition_of(device_id));
        self.client
            .publish(subject, frame(device_id, received_at, payload).into())
            .await
            .map_err(|e| unavailable("the ingest stream did not take a reading", e))
    }

    /// A partition's readings in order, after stream sequence `after`. A position beyond
    /// the stream's end (the stream was recreated) reads the partition from its start.
    async fn read(&self, partition: u16, after: u64) -> Result<jetstream::consumer::pull::Ordered, DeviceError> {
        let mut stream = self.context.get_stream(&self.name).await.map_err(|e| unavailable("the ingest stream cannot be read", e))?;
        let last = stream.info().await.map_err(|e| unavailable("the ingest stream cannot be read", e))?.state.last_sequence;
        let deliver_policy = if after == 0 {
            jetstream::consumer::DeliverPolicy::All
        } else if after > last {
            tracing::warn!(
                stream = self.name,
                partition,
                position = after,
                last,
                "the ingest stream ends before this partition's stored position (was it recreated?): reading it from its start"
            );
            jetstream::consumer::DeliverPolicy::All
        } else {
            jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 }
        };
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig { filter_subject: self.subject(partition), deliver_policy, ..Default::default() })
            .await
            .map_err(|e| unavailable("cannot read a partition of the ingest stream", e))?;
        consumer.messages().await.map_err(|e| unavailable("cannot read a partition of the ingest stream", e))
    }
}

/// What feeding a reading into the stream costs the replica that holds the broker's
/// telemetry session, against evaluating it: about a quarter (P5b: 2–3 µs of CPU against
/// 9–10). That replica evaluates correspondingly fewer partitions.
const FEEDING_COST: f64 = 0.25;

/// The owner (an index into `members`, in id order) of each partition: each member gets an
/// equal share of the work, feeding counted — the feeder (the telemetry session's holder,
/// when one of them holds it) evaluates `1.25 / n − 0.25` of the partitions (none from five
/// members on), the others split the rest. Members own contiguous runs of partitions; every
/// replica works out the same table from the same members.
pub fn owners(partitions: u16, members: &[String], feeder: Option<&str>) -> Vec<usize> {
    let n = members.len();
    if n == 0 {
        return Vec::new();
    }
    let feeder = feeder.and_then(|f| members.iter().position(|m| m == f)).filter(|_| n > 1);
    let total = f64::from(partitions);
    let feeder_share = ((1.0 + FEEDING_COST) / n as f64 - FEEDING_COST).max(0.0);
    let exact: Vec<f64> = (0..n)
        .map(|i| match feeder {
            Some(f) if f == i => total * feeder_share,
            Some(_) => total * (1.0 - feeder_share) / (n - 1) as f64,
            None => total / n as f64,
        })
        .collect();
    // Whole partitions by the largest remainders; ties to the others before the feeder, then
    // to the lower index.
    let mut quotas: Vec<u16> = exact.iter().map(|q| q.floor() as u16).collect();
    let mut left = partitions.saturating_sub(quotas.iter().sum());
    let mut by_remainder: Vec<usize> = (0..n).collect();
    let remainder = |i: usize| exact[i] - exact[i].floor();
    by_remainder.sort_by(|a, b| remainder(*b).total_cmp(&remainder(*a)).then((feeder == Some(*a)).cmp(&(feeder == Some(*b)))).then(a.cmp(b)));
    for i in by_remainder.into_iter().cycle().take(n * 2) {
        if left == 0 {
            break;
        }
        quotas[i] += 1;
        left -= 1;
    }
    quotas.iter().enumerate().flat_map(|(i, q)| std::iter::repeat_n(i, usize::from(*q))).collect()
}

/// Where a partition was evaluated and written up to (0: nothing yet).
async fn position(store: &Store, stream: &str, partition: u16) -> Result<u64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM device_ingest_offsets WHERE stream = $1 AND partition_no = $2")
        .bind(stream)
        .bind(i32::from(partition))
        .fetch_optional(&store.pool)
        .await?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

fn lease_root(topic_prefix: &str) -> String {
    format!("device-ingest:{topic_prefix}:")
}

/// A partition this replica evaluates.
struct Owned {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Owned {
    /// Let it finish the reading in hand and write what it read, then end.
    async fn hand_over(mut self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(HANDOVER_LIMIT, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Keep this replica's share of the partitions until the service stops, then hand them back.
pub(crate) async fn run(devices: Arc<Devices>, stream: Arc<IngestStream>, replica_id: String) {
    let root = lease_root(&devices.config.topic_prefix);
    let member = format!("{root}member:{replica_id}");
    let mut owned: HashMap<u16, Owned> = HashMap::new();
    let stopped = devices.stopped();
    tokio::pin!(stopped);
    loop {
        if let Err(e) = rebalance(&devices, &stream, &root, &member, &replica_id, &mut owned).await {
            tracing::warn!("device ingest partitions not rebalanced (trying again): {e}");
        }
        devices.set_evaluated_partitions(owned.keys().copied().collect());
        tokio::select! {
            _ = tokio::time::sleep(BEAT) => {}
            _ = &mut stopped => break,
        }
    }
    let handed: Vec<u16> = owned.keys().copied().collect();
    futures_util::future::join_all(owned.into_values().map(Owned::hand_over)).await;
    devices.set_evaluated_partitions(Vec::new());
    for partition in handed {
        if let Err(e) = lease::release_lease(&devices.store, &format!("{root}partition:{partition}"), &replica_id).await {
            tracing::warn!(partition, "partition lease not released (it expires on its own): {e}");
        }
    }
    if let Err(e) = lease::release_lease(&devices.store, &member, &replica_id).await {
        tracing::warn!("member lease not released (it expires on its own): {e}");
    }
}

/// One beat: renew what this replica holds, work out its share among the live members,
/// hand over what is no longer its own and take what is free of its share.
async fn rebalance(
    devices: &Arc<Devices>,
    stream: &Arc<IngestStream>,
    root: &str,
    member: &str,
    me: &str,
    owned: &mut HashMap<u16, Owned>,
) -> Result<(), sqlx::Error> {
    let store = &devices.store;
    let held = lease::renew_held(store, root, me, LEASE_TTL_MS).await?;
    // A partition whose lease ran out while this replica could not renew it may be someone
    // else's now: stop evaluating it at once (its successor reads from the last commit).
    for partition in owned.keys().copied().collect::<Vec<_>>() {
        if !held.contains(&format!("{root}partition:{partition}")) {
            if let Some(lost) = owned.remove(&partition) {
                lost.task.abort();
                tracing::warn!(partition, "device ingest partition lost (its lease ran out); another replica evaluates it");
            }
        }
    }
    if !held.contains(member) && !lease::hold_lease(store, member, me, LEASE_TTL_MS).await? {
        return Ok(());
    }
    let mut members: Vec<String> = lease::live_holders(store, &format!("{root}member:")).await?;
    members.sort();
    members.dedup();
    let Some(index) = members.iter().position(|m| m == me) else { return Ok(()) };
    let feeder = lease::holder(store, &devices.lease_name()).await?;
    let owners = owners(stream.partitions, &members, feeder.as_deref());
    let mine = |partition: u16| owners.get(usize::from(partition)) == Some(&index);

    let leaving: Vec<u16> = owned.keys().copied().filter(|p| !mine(*p)).collect();
    for partition in leaving {
        if let Some(handed) = owned.remove(&partition) {
            handed.hand_over().await;
            lease::release_lease(store, &format!("{root}partition:{partition}"), me).await?;
            tracing::info!(partition, "device ingest partition handed over");
        }
    }
    let mut taken = Vec::new();
    for partition in (0..stream.partitions).filter(|p| mine(*p) && !owned.contains_key(p)) {
        if lease::hold_lease(store, &format!("{root}partition:{partition}"), me, LEASE_TTL_MS).await? {
            taken.push(partition);
        }
    }
    if taken.is_empty() {
        return Ok(());
    }
    // Start from what the previous holders left: open alarms, last clears, open windows.
    let mut restored: HashMap<u16, HashMap<(String, String), super::rules::Tracker>> = HashMap::new();
    for (key, tracker) in restore_trackers(store).await? {
        restored.entry(stream.partition_of(&key.1)).or_default().insert(key, tracker);
    }
    for partition in taken {
        let (stop, stopped) = watch::channel(false);
        let trackers = restored.remove(&partition).unwrap_or_default();
        let task = tokio::spawn(evaluate(devices.clone(), stream.clone(), partition, trackers, stopped));
        owned.insert(partition, Owned { stop, task });
        tracing::info!(partition, "this replica now evaluates a device ingest partition");
    }
    Ok(())
}

/// Evaluate one partition's readings in order until told to stop, then write what was read
/// (rows, windows, position) before returning.
async fn evaluate(
    devices: Arc<Devices>,
    stream: Arc<IngestStream>,
    partition: u16,
    trackers: HashMap<(String, String), super::rules::Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut shard = Shard::with_trackers(trackers, devices.generation.load(std::sync::atomic::Ordering::SeqCst));
    let mut last = loop {
        match position(&devices.store, &stream.name, partition).await {
            Ok(after) => break after,
            Err(e) => tracing::warn!(partition, "the partition's position cannot be read (trying again): {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(BEAT) => {}
            _ = stop.changed() => return,
        }
    };
    let max_payload = devices.config.max_payload_bytes;
    'reading: loop {
        let mut messages = match stream.read(partition, last).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(partition, "{e} (trying again)");
                tokio::select! {
                    _ = tokio::time::sleep(BEAT) => continue 'reading,
                    _ = stop.changed() => break 'reading,
                }
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.changed() => break 'reading,
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                // The consumer recreates itself after most errors; while NATS is away, this
                // waits rather than spins.
                Some(Err(e)) => {
                    tracing::warn!(partition, "reading the ingest stream: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(ERROR_PAUSE) => continue,
                        _ = stop.changed() => break 'reading,
                    }
                }
                // The consumer ended (the connection went): read again from the last reading.
                None => tokio::select! {
                    _ = tokio::time::sleep(ERROR_PAUSE) => continue 'reading,
                    _ = stop.changed() => break 'reading,
                },
            };
            let Ok(seq) = message.info().map(|info| info.stream_sequence) else { continue };
            match unframe(&message.payload) {
                Some((device_id, received_at, payload)) => match engine::parse_reading(device_id, payload, received_at, max_payload) {
                    Ok(reading) => {
                        if let Err(e) = engine::handle(&devices, &mut shard, reading).await {
                            tracing::warn!(partition, "a device reading could not be processed: {e}");
                        }
                    }
                    Err(rejected) => {
                        devices.metrics.device_messages.with_label_values(&[rejected.label()]).inc();
                        tracing::debug!(partition, seq, device = device_id, "message refused: {rejected}");
                    }
                },
                None => tracing::debug!(partition, seq, "a message in the ingest stream is not a framed reading"),
            }
            last = seq;
            let _ = devices.telemetry.send(Written::Position { partition, seq }).await;
        }
    }
    // Handed over or stopping: the repeats counted and everything read, written.
    if let Err(e) = engine::flush_repeats(&devices.store, &mut shard).await {
        tracing::warn!(partition, "repeat counts not written: {e}");
    }
    let (done, written) = oneshot::channel();
    if devices.telemetry.send(Written::Flush(done)).await.is_ok() {
        let _ = written.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_what_is_not_one() {
        let framed = frame("wm-7", 1_764_000_000_123, br#"{"flow": 0.5}"#);
        assert_eq!(unframe(&framed), Some(("wm-7", 1_764_000_000_123, &br#"{"flow": 0.5}"#[..])));
        assert_eq!(unframe(&frame("wm-7", 5, b"")), Some(("wm-7", 5, &b""[..])));
        for bad in [&b"no newline"[..], b"12 WM 7\n{}", b"x wm-7\n{}", b"12wm-7\n{}", b"\n{}", b"12 wm-7 extra\n{}", b"\xff wm-7\n{}"] {
            assert_eq!(unframe(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn partitions_are_split_evenly_with_feeding_counted() {
        let members = |n: usize| (0..n).map(|i| format!("r{i}")).collect::<Vec<_>>();
        let counts = |owners: &[usize], n: usize| (0..n).map(|i| owners.iter().filter(|o| **o == i).count()).collect::<Vec<_>>();
        // Without a feeder among them: even, and contiguous.
        assert_eq!(owners(16, &members(2), None), [[0; 8], [1; 8]].concat());
        assert_eq!(counts(&owners(16, &members(3), None), 3), [6, 5, 5]);
        // The feeder evaluates less: 6 of 16 beside one other, 1 beside three others,
        // none from five members on; alone, everything.
        assert_eq!(counts(&owners(16, &members(2), Some("r1")), 2), [10, 6]);
        assert_eq!(counts(&owners(16, &members(4), Some("r0")), 4), [1, 5, 5, 5]);
        assert_eq!(counts(&owners(16, &members(5), Some("r2")), 5)[2], 0);
        assert_eq!(owners(4, &members(1), Some("r0")), [0; 4]);
        // A tie goes to the one that does not feed, whichever comes first in id order.
        assert_eq!(counts(&owners(4, &members(2), Some("r0")), 2), [1, 3]);
        assert_eq!(counts(&owners(4, &members(2), Some("r1")), 2), [3, 1]);
        // A feeder that is not a member (it left) counts for nothing.
        assert_eq!(owners(16, &members(2), Some("gone")), owners(16, &members(2), None));
        for n in 1..=20 {
            for feeder in [None, Some("r0")] {
                let table = owners(16, &members(n), feeder);
                assert_eq!(table.len(), 16, "{n} members, feeder {feeder:?}");
                assert!(table.windows(2).all(|w| w[0] <= w[1]));
            }
        }
        assert!(owners(16, &[], None).is_empty());
    }

    #[test]
    fn stream_names_are_nats_names_and_keep_prefixes_apart() {
        assert_eq!(names("linli"), ("LINLI_TELEMETRY_linli".to_string(), "linli-telemetry.linli".to_string()));
        let (a, b) = (names("a/b"), names("a_b"));
        assert_ne!(a, b);
        for (name, subject) in [a, b, names("county.x *>")] {
            assert!(!name.contains(['.', '/', '*', '>', ' ']), "{name}");
            assert_eq!(subject.matches('.').count(), 1, "{subject}");
            assert!(!subject.contains(['/', '*', '>', ' ']), "{subject}");
        }
    }
}
