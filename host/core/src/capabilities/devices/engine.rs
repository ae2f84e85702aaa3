//! The ingest pipeline: a reading is checked where it arrives (size, JSON shape), then
//! handed to one of a few shard workers by device id, so each device's readings are
//! evaluated in order, without locks, while devices spread over the cores. Telemetry rows
//! and last-seen times are written in batches behind the workers.
use super::alarms;
use super::registry::{self, Device};
use super::rules::{Decision, RuleSpec, Tracker};
use super::Devices;
use crate::store::vault::TELEMETRY_PAYLOAD;
use crate::store::{now_millis, Store};
pub use linli_formats::telemetry::{parse_reading, Reading, Rejected};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The device id of a telemetry or acknowledgement topic.
pub enum Topic<'a> {
    Telemetry(&'a str),
    Ack(&'a str),
}

pub fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Option<Topic<'a>> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix("/devices/")?;
    let (id, leaf) = rest.split_once('/')?;
    if !registry::is_valid_device_id(id) {
        return None;
    }
    match leaf {
        "telemetry" => Some(Topic::Telemetry(id)),
        "ack" => Some(Topic::Ack(id)),
        _ => None,
    }
}

pub fn shard_of(device_id: &str, shards: usize) -> usize {
    // FNV-1a: stable and cheap; only the spread matters.
    let hash = device_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    usize::try_from(hash % u64::try_from(shards.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// A shard worker's memory (or a partition's, when ingest is partitioned).
#[derive(Default)]
pub(crate) struct Shard {
    devices: HashMap<String, (Arc<Device>, Instant)>,
    unknown: HashMap<String, Instant>,
    trackers: HashMap<(String, String), Tracker>,
    /// Rules that apply per device, and the rules version they were chosen from.
    applicable: HashMap<String, (u64, Vec<Arc<RuleSpec>>)>,
    /// Repeats counted per open alarm but not yet written.
    repeats: HashMap<String, i64>,
    /// The `Devices::generation` the trackers belong to.
    generation: u64,
}

impl Shard {
    /// A partition's evaluation, starting from the trackers the database gave.
    pub(crate) fn with_trackers(trackers: HashMap<(String, String), Tracker>, generation: u64) -> Self {
        Self { trackers, generation, ..Self::default() }
    }
}

/// What the batch writer is handed, in the order it must be written.
pub(crate) enum Written {
    Row(TelemetryRow),
    /// Since when a `duration` rule's condition has held for a device (None: it does not).
    Window {
        rule_id: String,
        device_id: String,
        since: Option<i64>,
    },
    /// A partition was evaluated up to this stream sequence (partitioned ingest).
    Position {
        partition: u16,
        seq: u64,
    },
    /// Tell when everything handed over before this is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// How long a worker trusts its copy of a device's registration.
const DEVICE_TTL: Duration = Duration::from_secs(30);
/// Write repeat counts of an open alarm every this many repeats (and at its clear).
const REPEAT_FLUSH: i64 = 50;

pub async fn run_shard(devices: Arc<Devices>, mut readings: mpsc::Receiver<Reading>) {
    let mut shard = Shard::default();
    while let Some(reading) = readings.recv().await {
        if let Err(e) = handle(&devices, &mut shard, reading).await {
            tracing::warn!("a device reading could not be processed: {e}");
        }
    }
}

async fn device(devices: &Devices, shard: &mut Shard, id: &str) -> Result<Option<Arc<Device>>, sqlx::Error> {
    if let Some((device, fetched)) = shard.devices.get(id) {
        if fetched.elapsed() < DEVICE_TTL {
            return Ok(Some(device.clone()));
        }
    }
    if shard.unknown.get(id).is_some_and(|at| at.elapsed() < DEVICE_TTL) {
        return Ok(None);
    }
    match registry::get(&devices.store, id, 0).await? {
        Some(device) => {
            let device = Arc::new(device);
            shard.devices.insert(id.to_string(), (device.clone(), Instant::now()));
            shard.unknown.remove(id);
            Ok(Some(device))
        }
        None => {
            shard.unknown.insert(id.to_string(), Instant::now());
            Ok(None)
        }
    }
}

/// Write the repeats counted but not yet written (when a partition is handed over).
pub(crate) async fn flush_repeats(store: &Store, shard: &mut Shard) -> Result<(), sqlx::Error> {
    for (alarm_id, count) in shard.repeats.drain().filter(|(_, count)| *count > 0) {
        alarms::repeat(store, &alarm_id, count).await?;
    }
    Ok(())
}

pub(crate) async fn handle(devices: &Devices, shard: &mut Shard, reading: Reading) -> Result<(), sqlx::Error> {
    let generation = devices.generation.load(std::sync::atomic::Ordering::SeqCst);
    if shard.generation != generation {
        // This replica took over ingest: the trackers restart from the database.
        shard.trackers.clear();
        shard.generation = generation;
    }
    let Some(device) = device(devices, shard, &reading.device_id).await? else {
        devices.metrics.device_messages.with_label_values(&["unknown-device"]).inc();
        return Ok(());
    };
    devices.metrics.device_messages.with_label_values(&["accepted"]).inc();
    devices.saw(&device.id, reading.received_at);
    let _ = devices.telemetry.send(Written::Row((reading.device_id.clone(), reading.at, reading.received_at, reading.payload.clone()))).await;

    let (version, all_rules) = devices.rules_snapshot();
    let stale = shard.applicable.get(&device.id).is_none_or(|(v, _)| *v != version);
    if stale {
        let tree = devices.tree.snapshot();
        let mut chosen: Vec<Arc<RuleSpec>> = all_rules
            .iter()
            .filter(|r| r.applies_to(&device.id, &device.device_type) && tree.is_within(&device.location.tenant, &r.tenant_id))
            .cloned()
            .collect();
        // A rule for this one device replaces type rules on the same metric.
        let overridden: Vec<String> = chosen.iter().filter(|r| r.device_id.is_some()).map(|r| r.metric.clone()).collect();
        chosen.retain(|r| r.device_id.is_some() || !overridden.contains(&r.metric));
        shard.applicable.insert(device.id.clone(), (version, chosen));
    }
    let rules = shard.applicable.get(&device.id).map(|(_, rules)| rules.clone()).unwrap_or_default();
    for rule in rules {
        let Some(value) = reading.values.iter().find(|(k, _)| *k == rule.metric).map(|(_, v)| *v) else { continue };
        let key = (rule.id.clone(), device.id.clone());
        let tracker = match shard.trackers.get_mut(&key) {
            Some(t) => t,
            None => {
                let initial = devices.initial_tracker(&key);
                shard.trackers.entry(key.clone()).or_insert(initial)
            }
        };
        let window_before = tracker.since;
        let decision = tracker.evaluate(&rule, value, reading.at);
        if rule.duration_seconds > 0 && tracker.since != window_before {
            // Kept with the telemetry, so that a replica taking this device over goes on
            // with the window instead of starting it again.
            let window = Written::Window { rule_id: rule.id.clone(), device_id: device.id.clone(), since: tracker.since };
            let _ = devices.telemetry.send(window).await;
        }
        match decision {
            Decision::Nothing => {}
            Decision::Raise { value, since } => {
                let alarm = match alarms::raise(&devices.store, &devices.outbox, &devices.tickets, &rule, &device, value, since).await {
                    Ok(alarm) => alarm,
                    Err(super::DeviceError::Conflict(_)) => {
                        // Another replica raised it (while both held this device during a
                        // handover): go on with that alarm.
                        if let Some(open) = alarms::open_for(&devices.store, &rule.id, &device.id).await? {
                            tracker.raised(open);
                        }
                        continue;
                    }
                    Err(e) => {
                        // Not raised: the condition is evaluated again with the next reading.
                        tracing::error!(rule = rule.id, device = device.id, "alarm not raised: {e}");
                        tracker.since = Some(since);
                        continue;
                    }
                };
                tracing::info!(alarm = alarm.id, rule = rule.id, device = device.id, tenant = alarm.tenant_id, "alarm raised");
                devices.metrics.alarms.with_label_values(&["raised"]).inc();
                tracker.raised(alarm.id);
            }
            Decision::Repeat { .. } => {
                if let Some(alarm_id) = tracker.open_alarm.clone() {
                    let count = shard.repeats.entry(alarm_id.clone()).or_default();
                    *count += 1;
                    if *count >= REPEAT_FLUSH {
                        alarms::repeat(&devices.store, &alarm_id, std::mem::take(count)).await?;
                    }
                }
            }
            Decision::Clear { value } => {
                if let Some(alarm_id) = tracker.open_alarm.clone() {
                    if let Some(count) = shard.repeats.remove(&alarm_id).filter(|c| *c > 0) {
                        alarms::repeat(&devices.store, &alarm_id, count).await?;
                    }
                    if alarms::clear(&devices.store, &devices.outbox, &alarm_id, value).await?.is_some() {
                        tracing::info!(alarm = alarm_id, rule = rule.id, device = device.id, "alarm cleared");
                        devices.metrics.alarms.with_label_values(&["cleared"]).inc();
                    }
                }
                tracker.cleared(reading.at);
            }
            Decision::Suppressed => devices.metrics.alarms.with_label_values(&["suppressed"]).inc(),
        }
    }
    Ok(())
}

/// A telemetry row: device, device time, arrival time, JSON.
pub type TelemetryRow = (String, i64, i64, String);

const TELEMETRY_BATCH: usize = 4000;
/// Rows per INSERT statement (4 parameters each, well under SQLite's limit).
const ROWS_PER_STATEMENT: usize = 500;

/// One transaction's worth of what the writer was handed.
#[derive(Default)]
struct Batch {
    rows: Vec<TelemetryRow>,
    /// The latest state per (rule, device).
    windows: HashMap<(String, String), Option<i64>>,
    /// The latest position per partition.
    positions: HashMap<u16, u64>,
    flushed: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Batch {
    fn add(&mut self, item: Written) {
        match item {
            Written::Row(row) => self.rows.push(row),
            Written::Window { rule_id, device_id, since } => {
                self.windows.insert((rule_id, device_id), since);
            }
            Written::Position { partition, seq } => {
                self.positions.insert(partition, seq);
            }
            Written::Flush(done) => self.flushed.push(done),
        }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.windows.len() + self.positions.len()
    }
}

/// Writes telemetry in batches: whatever arrived within a short window, in one transaction,
/// with the duration windows and (partitioned ingest) the partitions' positions it reached,
/// so that a position in the database never runs ahead of what is written. `stream` names
/// the ingest stream the positions belong to.
pub(crate) async fn run_telemetry_writer(store: Store, stream: Option<String>, mut items: mpsc::Receiver<Written>) {
    let mut batch = Batch::default();
    while let Some(first) = items.recv().await {
        batch.add(first);
        while batch.len() < TELEMETRY_BATCH {
            match items.try_recv() {
                Ok(item) => batch.add(item),
                Err(_) => break,
            }
        }
        let taken = std::mem::take(&mut batch);
        if taken.len() > 0 {
            // A failed batch is not tried again: its positions are not written either, so
            // the partition's next holder reads those readings again.
            if let Err(e) = write_batch(&store, stream.as_deref(), &taken).await {
                tracing::warn!(rows = taken.rows.len(), "telemetry rows not stored: {e}");
            }
        }
        for done in taken.flushed {
            let _ = done.send(());
        }
    }
}

async fn write_batch(store: &Store, stream: Option<&str>, batch: &Batch) -> Result<(), sqlx::Error> {
    let mut tx = store.begin_write().await?;
    write_rows(&mut tx, store, &batch.rows).await?;
    let windows: Vec<_> = batch.windows.iter().collect();
    for chunk in windows.chunks(ROWS_PER_STATEMENT) {
        let placeholders = (0..chunk.len()).map(|i| format!("({})", store.params(i * 3 + 1, 3))).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "INSERT INTO alarm_windows (rule_id, device_id, since) VALUES {placeholders} ON CONFLICT (rule_id, device_id) DO UPDATE SET since = excluded.since"
        );
        let mut query = sqlx::query(&sql);
        for ((rule_id, device_id), since) in chunk {
            query = query.bind(rule_id).bind(device_id).bind(*since);
        }
        query.execute(&mut *tx).await?;
    }
    if let Some(stream) = stream {
        for (partition, seq) in &batch.positions {
            sqlx::query(
                "INSERT INTO device_ingest_offsets (stream, partition_no, seq) VALUES ($1, $2, $3) ON CONFLICT (stream, partition_no) DO UPDATE SET seq = excluded.seq",
            )
            .bind(stream)
            .bind(i32::from(*partition))
            .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

async fn write_rows(tx: &mut sqlx::Transaction<'_, sqlx::Any>, store: &Store, rows: &[TelemetryRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let placeholders = (0..chunk.len()).map(|i| format!("({})", store.params(i * 4 + 1, 4))).collect::<Vec<_>>().join(", ");
        let sql = format!("INSERT INTO telemetry (device_id, at, received_at, payload) VALUES {placeholders}");
        let mut query = sqlx::query(&sql);
        for (device, at, received_at, payload) in chunk {
            let (sealed, _) = TELEMETRY_PAYLOAD.seal_row(&store.vault, &[device, &at.to_string()], payload)?;
            query = query.bind(device).bind(*at).bind(*received_at).bind(sealed);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Deletes telemetry older than the retention, hourly.
pub async fn run_retention(store: Store, retention_days: u32) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let cutoff = now_millis().saturating_sub(i64::from(retention_days) * 86_400_000);
        match sqlx::query("DELETE FROM telemetry WHERE received_at < $1").bind(cutoff).execute(&store.pool).await {
            Ok(done) if done.rows_affected() > 0 => tracing::info!(rows = done.rows_affected(), retention_days, "old telemetry deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!("telemetry retention: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_a_device() {
        assert!(matches!(parse_topic("linli", "linli/devices/wm-1/telemetry"), Some(Topic::Telemetry("wm-1"))));
        assert!(matches!(parse_topic("linli", "linli/devices/wm-1/ack"), Some(Topic::Ack("wm-1"))));
        assert!(matches!(parse_topic("county-a/linli", "county-a/linli/devices/wm-1/ack"), Some(Topic::Ack("wm-1"))));
        assert!(parse_topic("linli", "linli/devices/WM 1/telemetry").is_none());
        assert!(parse_topic("linli", "linli/devices/wm-1/other").is_none());
        assert!(parse_topic("linli", "elsewhere/wm-1/telemetry").is_none());
        assert!(parse_topic("linli", "linlix/devices/wm-1/telemetry").is_none());
    }

    #[test]
    fn shards_spread_and_are_stable() {
        let counts = (0..1000).fold([0usize; 4], |mut c, i| {
            c[shard_of(&format!("wm-{i}"), 4)] += 1;
            c
        });
        assert!(counts.iter().all(|&n| n > 150), "{counts:?}");
        assert_eq!(shard_of("wm-7", 4), shard_of("wm-7", 4));
    }
}
