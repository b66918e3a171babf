//! Prometheus metrics: reconciles, errors and durations per kind; array
//! calls per vendor, API and outcome. One process-wide registry, rendered at
//! `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind reconciled.
    pub kind: String,
}

/// Labels of the reconcile error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The kind reconciled.
    pub kind: String,
    /// The `Synced` reason reported.
    pub reason: String,
}

/// Labels of the array call counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `Synology` or `NGXStorage`.
    pub vendor: String,
    /// The operation (`list_luns`, `create_lun`, ...).
    pub api: String,
    /// `ok`, or the error class (`NotFound`, `Unreachable`, ...).
    pub outcome: String,
}

/// Labels of the per-ReplicationPlan metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    /// The ReplicationPlan's namespace.
    pub namespace: String,
    /// The ReplicationPlan's name.
    pub name: String,
}

/// Labels of the per-object readiness gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// The object's kind.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The `Ready` condition's reason (`NoStatus` before the first status
    /// write), so an alert can tell drift from an unreachable array.
    pub reason: String,
}

/// Labels of the Event counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The kind of the object the Event is about.
    pub kind: String,
    /// The Event reason (`DriftCorrected`, `ArrayUnreachable`, ...).
    pub reason: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles run, per kind.
    pub reconciles: Family<KindLabels, Counter>,
    /// Reconciles that ended in an error, per kind and reason.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration, per kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Array calls, per vendor, API and outcome.
    pub array_calls: Family<CallLabels, Counter>,
    /// Seconds the last finished sync of a replication plan took.
    pub replication_last_sync_duration:
        Family<PlanLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Schedule due times of a replication plan that started no sync.
    pub replication_missed_intervals: Family<PlanLabels, Counter>,
    /// 1 when an object's `Ready` condition is True for its current
    /// generation, else 0; one series per object the leader watches.
    pub object_ready: Family<ObjectLabels, Gauge>,
    /// Events published, per kind and reason.
    pub events: Family<EventLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("array_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let array_calls = Family::<CallLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            reconcile_duration.clone(),
        );
        registry.register("array_calls", "Calls to arrays", array_calls.clone());
        let replication_last_sync_duration =
            Family::<PlanLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let replication_missed_intervals = Family::<PlanLabels, Counter>::default();
        registry.register(
            "replication_last_sync_duration_seconds",
            "Seconds the last finished sync of a replication plan took",
            replication_last_sync_duration.clone(),
        );
        registry.register(
            "replication_missed_intervals",
            "Schedule due times of a replication plan that started no sync",
            replication_missed_intervals.clone(),
        );
        let object_ready = Family::<ObjectLabels, Gauge>::default();
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "object_ready",
            "1 when the object's Ready condition is True for its current generation, else 0",
            object_ready.clone(),
        );
        registry.register("events", "Events published", events.clone());
        Metrics {
            object_ready,
            events,
            replication_last_sync_duration,
            replication_missed_intervals,
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            array_calls,
        }
    }

    /// Counts one reconcile of `kind` that took `took`.
    pub fn reconciled(&self, kind: &str, took: Duration) {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts one failed reconcile.
    pub fn reconcile_failed(&self, kind: &str, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one array call.
    pub fn array_call(&self, vendor: &str, api: &str, outcome: &str) {
        self.array_calls
            .get_or_create(&CallLabels {
                vendor: vendor.to_string(),
                api: api.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Records the last finished sync of plan `namespace/name`.
    pub fn replication_synced(&self, namespace: &str, name: &str, seconds: f64) {
        self.replication_last_sync_duration
            .get_or_create(&plan_labels(namespace, name))
            .set(seconds);
    }

    /// Counts `missed` due times of plan `namespace/name` that started no
    /// sync.
    pub fn replication_missed(&self, namespace: &str, name: &str, missed: u64) {
        self.replication_missed_intervals
            .get_or_create(&plan_labels(namespace, name))
            .inc_by(missed);
    }

    /// Records whether object `kind` `namespace/name` is Ready, with the
    /// `Ready` reason it shows.
    pub fn set_object_ready(&self, object: &ObjectLabels, ready: bool) {
        self.object_ready
            .get_or_create(object)
            .set(i64::from(ready));
    }

    /// Drops the readiness series of an object that is gone (or whose
    /// `Ready` reason changed), so no alert fires for it.
    pub fn forget_object_ready(&self, object: &ObjectLabels) {
        self.object_ready.remove(object);
    }

    /// Counts one published Event.
    pub fn event_published(&self, kind: &str, reason: &str) {
        self.events
            .get_or_create(&EventLabels {
                kind: kind.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn plan_labels(namespace: &str, name: &str) -> PlanLabels {
    PlanLabels {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_with_its_labels() {
        let m = Metrics::new();
        m.reconciled("Lun", Duration::from_millis(12));
        m.reconcile_failed("Lun", "ArrayUnreachable");
        m.array_call("Synology", "list_luns", "ok");
        let text = m.render();
        assert!(
            text.contains("array_operator_reconciles_total{kind=\"Lun\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "array_operator_reconcile_errors_total{kind=\"Lun\",reason=\"ArrayUnreachable\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("array_operator_array_calls_total{vendor=\"Synology\",api=\"list_luns\",outcome=\"ok\"} 1"), "{text}");
        assert!(
            text.contains("array_operator_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn readiness_is_one_series_per_object_and_a_forgotten_object_has_none() {
        let m = Metrics::new();
        let lun = |reason: &str| ObjectLabels {
            kind: "Lun".into(),
            namespace: "apps".into(),
            name: "db-data".into(),
            reason: reason.into(),
        };
        m.set_object_ready(&lun("Creating"), false);
        let series = "array_operator_object_ready{kind=\"Lun\",namespace=\"apps\",name=\"db-data\",reason=\"Creating\"} 0";
        assert!(m.render().contains(series), "{}", m.render());
        m.forget_object_ready(&lun("Creating"));
        m.set_object_ready(&lun("Available"), true);
        let text = m.render();
        assert!(!text.contains(series), "{text}");
        assert!(
            text.contains("array_operator_object_ready{kind=\"Lun\",namespace=\"apps\",name=\"db-data\",reason=\"Available\"} 1"),
            "{text}"
        );
        m.event_published("Lun", "DriftCorrected");
        m.event_published("Lun", "DriftCorrected");
        assert!(
            m.render()
                .contains("array_operator_events_total{kind=\"Lun\",reason=\"DriftCorrected\"} 2"),
            "{}",
            m.render()
        );
    }
}
