//! Small helpers every layer may use: a periodic beat and the counties' calendar day.
use chrono::NaiveDate;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Call `beat` with `target` every `period` (the first time one period from now) until
/// `target` is dropped or `stop` completes.
pub async fn every<T, F, Fut>(period: Duration, target: Weak<T>, stop: impl Future<Output = ()>, mut beat: F)
where
    F: FnMut(Arc<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = &mut stop => return,
        }
        let Some(target) = target.upgrade() else { return };
        beat(target).await;
    }
}

/// Today in China Standard Time (UTC+8), where every county is.
pub fn today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}
