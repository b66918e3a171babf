//! The `array_operator_object_ready` gauge, fed by the watches: one series
//! per object, 1 when its `Ready` condition is True for its current
//! generation. The watch sees every status write (the operator's own
//! included), so the gauge follows what `kubectl get` shows; an object that
//! is deleted, or that vanished while the watch was down (a relist that no
//! longer has it), loses its series, so no alert fires for what is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::Resource;
use kube::ResourceExt;
use kube::runtime::watcher;
use serde::Serialize;

use crate::crd::shared::CONDITION_READY;
use crate::metrics::{Metrics, ObjectLabels};

/// The `Ready` reason an object without one (no status yet) is shown with.
pub const NO_STATUS: &str = "NoStatus";

/// Whether an object is Ready for its current generation, and the `Ready`
/// reason it shows. kstatus' rule: a `Ready=True` written for an older
/// generation is not Ready yet.
pub fn readiness(object: &serde_json::Value) -> (bool, String) {
    let generation = object["metadata"]["generation"].as_i64();
    let status = &object["status"];
    let Some(ready) = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == CONDITION_READY))
    else {
        return (false, NO_STATUS.to_string());
    };
    let observed = ready["observedGeneration"]
        .as_i64()
        .or_else(|| status["observedGeneration"].as_i64());
    let current = match (generation, observed) {
        (Some(generation), Some(observed)) => observed >= generation,
        _ => true,
    };
    let reason = ready["reason"].as_str().unwrap_or(NO_STATUS).to_string();
    (ready["status"] == "True" && current, reason)
}

/// Namespace and name of a watched object.
type Key = (String, String);

#[derive(Default)]
struct Tracked {
    /// The `Ready` reason each object's series carries.
    reasons: HashMap<Key, String>,
    /// While the watch relists: the objects listed so far.
    relisted: Option<HashSet<Key>>,
}

/// Feeds the gauge from one kind's watch events.
pub struct ReadinessTracker {
    kind: &'static str,
    metrics: &'static Metrics,
    tracked: Mutex<Tracked>,
}

impl ReadinessTracker {
    /// A tracker of kind `kind` writing into `metrics`.
    pub fn new(kind: &'static str, metrics: &'static Metrics) -> Self {
        ReadinessTracker {
            kind,
            metrics,
            tracked: Mutex::new(Tracked::default()),
        }
    }

    fn labels(&self, (namespace, name): &Key, reason: &str) -> ObjectLabels {
        ObjectLabels {
            kind: self.kind.to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            reason: reason.to_string(),
        }
    }

    fn set(&self, tracked: &mut Tracked, key: Key, ready: bool, reason: String) {
        if let Some(old) = tracked.reasons.get(&key)
            && *old != reason
        {
            self.metrics.forget_object_ready(&self.labels(&key, old));
        }
        self.metrics
            .set_object_ready(&self.labels(&key, &reason), ready);
        tracked.reasons.insert(key, reason);
    }

    fn forget(&self, tracked: &mut Tracked, key: &Key) {
        if let Some(old) = tracked.reasons.remove(key) {
            self.metrics.forget_object_ready(&self.labels(key, &old));
        }
    }

    /// Applies one watch event (for `.inspect` on the watch stream).
    pub fn on_event<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>)
    where
        K: Resource + Serialize,
    {
        let Ok(event) = event else { return };
        let key_of = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Init => tracked.relisted = Some(HashSet::new()),
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                let key = key_of(o);
                let (ready, reason) = serde_json::to_value(o)
                    .map(|v| readiness(&v))
                    .unwrap_or_else(|_| (false, NO_STATUS.to_string()));
                if let (watcher::Event::InitApply(_), Some(listed)) =
                    (event, tracked.relisted.as_mut())
                {
                    listed.insert(key.clone());
                }
                self.set(&mut tracked, key, ready, reason);
            }
            watcher::Event::Delete(o) => {
                let key = key_of(o);
                self.forget(&mut tracked, &key);
            }
            watcher::Event::InitDone => {
                if let Some(listed) = tracked.relisted.take() {
                    let gone: Vec<Key> = tracked
                        .reasons
                        .keys()
                        .filter(|k| !listed.contains(*k))
                        .cloned()
                        .collect();
                    for key in gone {
                        self.forget(&mut tracked, &key);
                    }
                }
            }
        }
    }
}

/// A tracker of kind `kind` as the function `.inspect` takes.
pub fn gauge<K>(
    kind: &'static str,
    metrics: &'static Metrics,
) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send + Sync + 'static
where
    K: Resource + Serialize,
{
    let tracker = ReadinessTracker::new(kind, metrics);
    move |event| tracker.on_event(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Lun;
    use serde_json::json;

    fn lun(name: &str, generation: i64, ready: Option<(&str, &str, i64)>) -> Lun {
        let mut v = json!({
            "apiVersion": "array-operator.io/v1alpha1",
            "kind": "Lun",
            "metadata": {"name": name, "namespace": "apps", "generation": generation},
            "spec": {"arrayRef": {"name": "dsm1"}, "size": "1Gi"},
        });
        if let Some((status, reason, observed)) = ready {
            v["status"] = json!({"conditions": [{
                "type": "Ready", "status": status, "reason": reason, "message": "",
                "observedGeneration": observed,
                "lastTransitionTime": "2026-11-30T10:00:00Z",
            }]});
        }
        serde_json::from_value(v).expect("a Lun")
    }

    fn series(m: &Metrics, name: &str) -> Vec<String> {
        m.render()
            .lines()
            .filter(|l| l.starts_with("array_operator_object_ready{") && l.contains(name))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn readiness_needs_ready_true_for_the_current_generation() {
        let ready = |l: &Lun| readiness(&serde_json::to_value(l).expect("json"));
        assert_eq!(ready(&lun("a", 2, None)), (false, NO_STATUS.into()));
        assert_eq!(
            ready(&lun("a", 2, Some(("True", "Available", 2)))),
            (true, "Available".into())
        );
        // Ready for generation 1, but the spec moved on.
        assert_eq!(
            ready(&lun("a", 2, Some(("True", "Available", 1)))),
            (false, "Available".into())
        );
        assert_eq!(
            ready(&lun("a", 2, Some(("False", "Drifted", 2)))),
            (false, "Drifted".into())
        );
    }

    #[test]
    fn the_gauge_follows_the_watch_and_forgets_deleted_and_relisted_away_objects() {
        // A leaked registry per test: the gauge is process-wide in the
        // operator, and tests must not see each other's series.
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let t = ReadinessTracker::new("Lun", metrics);
        let ok = |e: watcher::Event<Lun>| Ok::<_, watcher::Error>(e);
        t.on_event(&ok(watcher::Event::Init));
        t.on_event(&ok(watcher::Event::InitApply(lun("a", 1, None))));
        t.on_event(&ok(watcher::Event::InitApply(lun("b", 1, None))));
        t.on_event(&ok(watcher::Event::InitDone));
        assert_eq!(
            series(metrics, "\"a\""),
            [
                "array_operator_object_ready{kind=\"Lun\",namespace=\"apps\",name=\"a\",reason=\"NoStatus\"} 0"
            ]
        );
        // The reason changes: one series, the new one.
        t.on_event(&ok(watcher::Event::Apply(lun(
            "a",
            1,
            Some(("True", "Available", 1)),
        ))));
        assert_eq!(
            series(metrics, "\"a\""),
            [
                "array_operator_object_ready{kind=\"Lun\",namespace=\"apps\",name=\"a\",reason=\"Available\"} 1"
            ]
        );
        t.on_event(&ok(watcher::Event::Delete(lun("a", 1, None))));
        assert!(series(metrics, "\"a\"").is_empty());
        // "b" was deleted while the watch was down: the relist drops it.
        t.on_event(&ok(watcher::Event::Init));
        t.on_event(&ok(watcher::Event::InitApply(lun("c", 1, None))));
        t.on_event(&ok(watcher::Event::InitDone));
        assert!(series(metrics, "\"b\"").is_empty());
        assert_eq!(series(metrics, "\"c\"").len(), 1);
    }
}
