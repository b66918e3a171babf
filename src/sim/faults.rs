//! Fault injection and call recording, shared by both simulators.
//!
//! A simulator names each call by an operation key (DSM: `API.method`, for
//! example `SYNO.Core.ISCSI.LUN.create`; NGX: `METHOD path-template`, for
//! example `POST /lun/create`). Tests, and the `simulate` command's flags, arm
//! rules against those keys; the simulator asks [`Faults::decide`] before it
//! handles each call and acts on the answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What to do to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with the vendor's own error envelope and this code, without acting.
    ErrorCode(i64),
    /// Answer with this HTTP status and an empty body, without acting.
    HttpStatus(u16),
    /// Close the connection before acting: the client sees a transport error
    /// and the array is unchanged.
    DropBeforeApply,
    /// Act, then close the connection without answering: the array changed but
    /// the client cannot know. This is the "crash between steps" case.
    DropAfterApply,
    /// Treat the caller's session as expired (DSM: 106/119) for this call.
    ExpireSession,
}

/// One armed rule.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// Operation key this rule applies to; `*` matches every operation.
    pub operation: String,
    /// Fire on the Nth call (1-based) of that operation counted from when the
    /// rule was armed; `0` fires on every call.
    pub nth: u64,
    /// How many times it may fire before it disarms; `None` is unlimited.
    pub times: Option<u32>,
    /// What happens.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule that fires once, on the Nth call of `operation`.
    pub fn once(operation: impl Into<String>, nth: u64, action: FaultAction) -> Self {
        FaultRule {
            operation: operation.into(),
            nth,
            times: Some(1),
            action,
        }
    }

    /// A rule that fires on every call of `operation` until cleared.
    pub fn always(operation: impl Into<String>, action: FaultAction) -> Self {
        FaultRule {
            operation: operation.into(),
            nth: 0,
            times: None,
            action,
        }
    }
}

/// The simulator's answer to "what happens to this call".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultDecision {
    /// Delay to add before answering.
    pub latency: Duration,
    /// The fault to apply, if a rule fired.
    pub action: Option<FaultAction>,
}

#[derive(Debug, Default)]
struct ArmedRule {
    rule: Option<FaultRule>,
    seen: u64,
    fired: u32,
}

#[derive(Debug, Default)]
struct FaultState {
    latency: Duration,
    per_operation_latency: HashMap<String, Duration>,
    rules: Vec<ArmedRule>,
}

/// Shared, cloneable fault plan. Cloning shares the plan.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not wedge the simulator.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Faults {
    /// Adds latency to every call.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// Adds latency to one operation only (on top of the global latency).
    pub fn set_operation_latency(&self, operation: impl Into<String>, latency: Duration) {
        lock(&self.state)
            .per_operation_latency
            .insert(operation.into(), latency);
    }

    /// Arms a rule.
    pub fn arm(&self, rule: FaultRule) {
        lock(&self.state).rules.push(ArmedRule {
            rule: Some(rule),
            seen: 0,
            fired: 0,
        });
    }

    /// Disarms every rule and removes all latency.
    pub fn clear(&self) {
        *lock(&self.state) = FaultState::default();
    }

    /// Counts this call against the armed rules and says what to do to it.
    /// The first rule that fires wins.
    pub fn decide(&self, operation: &str) -> FaultDecision {
        let mut state = lock(&self.state);
        let latency = state.latency
            + state
                .per_operation_latency
                .get(operation)
                .copied()
                .unwrap_or_default();
        let mut action = None;
        for armed in state.rules.iter_mut() {
            let Some(rule) = armed.rule.as_ref() else {
                continue;
            };
            if rule.operation != "*" && rule.operation != operation {
                continue;
            }
            armed.seen += 1;
            if action.is_some() {
                continue;
            }
            let due = rule.nth == 0 || armed.seen == rule.nth;
            if !due {
                continue;
            }
            action = Some(rule.action.clone());
            armed.fired += 1;
            let spent = rule.times.is_some_and(|t| armed.fired >= t);
            let past = rule.nth != 0;
            if spent || past {
                armed.rule = None;
            }
        }
        state.rules.retain(|r| r.rule.is_some());
        FaultDecision { latency, action }
    }
}

/// One call as the simulator received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedCall {
    /// The operation key (see the module docs).
    pub operation: String,
    /// The HTTP method.
    pub http_method: String,
    /// Query and form parameters, as received (after URL decoding).
    pub params: BTreeMap<String, String>,
    /// The JSON body, when there was one.
    pub body: Option<serde_json::Value>,
}

/// Every call a simulator received, in order. Cloning shares the log.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<RecordedCall>>>,
}

impl CallLog {
    /// Appends a call.
    pub fn record(&self, call: RecordedCall) {
        lock(&self.calls).push(call);
    }

    /// A copy of every call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.calls).clone()
    }

    /// How many calls of `operation` were received.
    pub fn count(&self, operation: &str) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// How many calls were received whose operation satisfies `pred`.
    pub fn count_where(&self, pred: impl Fn(&RecordedCall) -> bool) -> usize {
        lock(&self.calls).iter().filter(|c| pred(c)).count()
    }

    /// Forgets every recorded call.
    pub fn clear(&self) {
        lock(&self.calls).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_rule_fires_once_on_the_nth_call_only() {
        let f = Faults::default();
        f.arm(FaultRule::once("a", 2, FaultAction::ErrorCode(7)));
        assert_eq!(f.decide("a").action, None);
        assert_eq!(f.decide("b").action, None);
        assert_eq!(f.decide("a").action, Some(FaultAction::ErrorCode(7)));
        assert_eq!(f.decide("a").action, None);
    }

    #[test]
    fn always_rule_fires_until_cleared_and_latency_adds_up() {
        let f = Faults::default();
        f.set_latency(Duration::from_millis(5));
        f.set_operation_latency("a", Duration::from_millis(10));
        f.arm(FaultRule::always("*", FaultAction::HttpStatus(503)));
        let d = f.decide("a");
        assert_eq!(d.latency, Duration::from_millis(15));
        assert_eq!(d.action, Some(FaultAction::HttpStatus(503)));
        assert_eq!(f.decide("b").action, Some(FaultAction::HttpStatus(503)));
        f.clear();
        assert_eq!(f.decide("a"), FaultDecision::default());
    }

    #[test]
    fn limited_every_call_rule_disarms_after_its_count() {
        let f = Faults::default();
        f.arm(FaultRule {
            operation: "x".into(),
            nth: 0,
            times: Some(2),
            action: FaultAction::DropBeforeApply,
        });
        assert!(f.decide("x").action.is_some());
        assert!(f.decide("x").action.is_some());
        assert!(f.decide("x").action.is_none());
    }

    #[test]
    fn call_log_counts_by_operation() {
        let log = CallLog::default();
        for op in ["a", "b", "a"] {
            log.record(RecordedCall {
                operation: op.into(),
                http_method: "GET".into(),
                params: BTreeMap::new(),
                body: None,
            });
        }
        assert_eq!(log.count("a"), 2);
        assert_eq!(log.count_where(|c| c.operation != "a"), 1);
        assert_eq!(log.calls().len(), 3);
    }
}
