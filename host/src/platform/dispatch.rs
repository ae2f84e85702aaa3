//! The dispatcher: delivers due events to plugins' `on-event`, one at a time per
//! installation, concurrently across installations.
use super::Platform;
use crate::capabilities::events::{Due, Outbox};
use std::sync::Arc;
use std::time::Duration;

/// How many installations' head events one round delivers at most.
const ROUND: i64 = 64;

/// Runs until the platform is dropped. Schedules are ticked by the same loop.
/// A round in progress is finished before it stops, so no delivery is left leased.
pub async fn run(platform: std::sync::Weak<Platform>, outbox: Arc<Outbox>) {
    let mut stop = outbox.stop.subscribe();
    let poll = Duration::from_millis(outbox.config.poll_ms.max(10));
    while !*stop.borrow() {
        let Some(platform) = platform.upgrade() else { return };
        if let Err(e) = outbox.tick_schedules().await {
            tracing::warn!("event schedules: {e}");
        }
        let taken = match outbox.take_due(ROUND).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!("event outbox unavailable: {e}");
                Vec::new()
            }
        };
        let busy = !taken.is_empty();
        let deliveries = taken.into_iter().map(|due| deliver(&platform, &outbox, due));
        futures_util::future::join_all(deliveries).await;
        drop(platform);
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = outbox.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }
}

async fn deliver(platform: &Platform, outbox: &Outbox, due: Due) {
    let installation = due.installation_id.clone();
    let seq = due.event.seq;
    let outcome = match platform.loaded(&installation) {
        Some(plugin) => platform.runtime.invoke_event(plugin, &due.event).await.map_err(|e| e.to_string()),
        None => Err(format!("installation `{installation}` is not active on this host")),
    };
    let recorded = match &outcome {
        Ok(()) => {
            platform.metrics.events_delivered.with_label_values(&["delivered"]).inc();
            outbox.delivered(&installation, seq).await
        }
        Err(error) => {
            tracing::warn!(installation, seq, kind = due.event.kind, attempt = due.attempts + 1, "event not delivered: {error}");
            match outbox.failed(&due, error).await {
                Ok(true) => {
                    tracing::error!(installation, seq, kind = due.event.kind, "event dead-lettered after {} tries", due.attempts + 1);
                    platform.metrics.events_delivered.with_label_values(&["dead"]).inc();
                    Ok(())
                }
                Ok(false) => {
                    platform.metrics.events_delivered.with_label_values(&["retry"]).inc();
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    };
    // If the outcome could not be recorded the lease runs out and the event is delivered
    // again: at least once.
    if let Err(e) = recorded {
        tracing::warn!(installation, seq, "could not record the delivery outcome: {e}");
    }
}
