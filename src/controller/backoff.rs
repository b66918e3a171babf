//! When to come back: per-object exponential backoff after failed
//! reconciles, reset by a success, and the requeue for a due time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Failure counts per object.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts a failure of `key` and returns how long to wait: 5 s doubling,
    /// capped at 5 minutes.
    pub fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        super::arrays::connect_backoff(*n)
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// When to come back to an object with something due at `wake_at` (a
/// snapshot, a sync): a second after it, so it is in the past when the
/// pass runs; one second for a time already reached (never zero, so an
/// engine that keeps naming a past time cannot spin); or after `base`
/// (the resync), whichever is first.
pub fn requeue_after(
    base: Duration,
    wake_at: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Duration {
    let due = wake_at.map(|t| {
        (t - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .saturating_add(Duration::from_secs(1))
    });
    due.map_or(base, |d| d.min(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_per_object_and_resets_on_success() {
        let b = Backoff::default();
        assert_eq!(b.failed("a"), Duration::from_secs(5));
        assert_eq!(b.failed("a"), Duration::from_secs(10));
        assert_eq!(b.failed("b"), Duration::from_secs(5));
        b.succeeded("a");
        assert_eq!(b.failed("a"), Duration::from_secs(5));
    }

    #[test]
    fn requeues_after_a_due_time_or_the_resync_whichever_is_first() {
        use chrono::TimeZone;
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
            .single()
            .expect("time");
        let resync = Duration::from_secs(300);
        let soon = now + chrono::Duration::seconds(60);
        assert_eq!(
            requeue_after(resync, Some(soon), now),
            Duration::from_secs(61)
        );
        // Reached or already past (a slow pass): at once, but never zero.
        assert_eq!(
            requeue_after(resync, Some(now), now),
            Duration::from_secs(1)
        );
        let past = now - chrono::Duration::seconds(5);
        assert_eq!(
            requeue_after(resync, Some(past), now),
            Duration::from_secs(1)
        );
        let far = now + chrono::Duration::seconds(3600);
        assert_eq!(requeue_after(resync, Some(far), now), resync);
        assert_eq!(requeue_after(resync, None, now), resync);
    }
}
