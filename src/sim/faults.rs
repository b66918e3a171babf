//! Fault injection and call recording, shared by both simulators.
//!
//! A simulator names each call by an operation key (DSM: `API.method`, for
//! example `SYNO.Core.ISCSI.LUN.create`; NGX: `METHOD path-template`, for
//! example `POST /lun/create`). Tests, and the `simulate` command's flags, arm
//! rules against those keys; the simulator asks [`Faults::decide`] before it
//! handles each call and acts on the answer.
//!
//! Besides counted rules, a seeded [`RandomFaults`] plan faults a share of the
//! calls at random, reproducibly for a seed and a call order; the chaos test
//! uses it. [`Faults::fired`] lists every fault that fired, for its report.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    /// Act, then answer with the vendor's own error envelope and this code:
    /// the array changed although the client was told it failed.
    ErrorCodeAfterApply(i64),
    /// Act, then answer with this HTTP status and an empty body.
    HttpStatusAfterApply(u16),
}

impl FaultAction {
    /// True when the simulator acts on the call before the fault shows.
    pub fn applies_first(&self) -> bool {
        matches!(
            self,
            FaultAction::DropAfterApply
                | FaultAction::ErrorCodeAfterApply(_)
                | FaultAction::HttpStatusAfterApply(_)
        )
    }
}

/// A seeded plan that faults a share of the calls at random.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    /// Seed of the random sequence: the same seed and the same call order
    /// fault the same calls the same way.
    pub seed: u64,
    /// Chance, in thousandths, that a matching call is faulted.
    pub per_mille: u32,
    /// Operation keys it applies to; empty applies to every operation.
    pub operations: Vec<String>,
    /// The faults to choose from, uniformly.
    pub actions: Vec<FaultAction>,
}

/// A fault that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredFault {
    /// The operation key of the call.
    pub operation: String,
    /// What was done to it.
    pub action: FaultAction,
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
    random: Option<(RandomFaults, StdRng)>,
    fired: Vec<FiredFault>,
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

    /// Arms a seeded random plan, replacing any earlier one. Counted rules
    /// fire first; the plan is only asked about calls no rule faulted.
    pub fn arm_random(&self, plan: RandomFaults) {
        let rng = StdRng::seed_from_u64(plan.seed);
        lock(&self.state).random = Some((plan, rng));
    }

    /// Disarms every rule and the random plan and removes all latency. The
    /// list of faults that fired is kept.
    pub fn clear(&self) {
        let mut state = lock(&self.state);
        let fired = std::mem::take(&mut state.fired);
        *state = FaultState {
            fired,
            ..FaultState::default()
        };
    }

    /// Every fault that fired since the plan was made, in order.
    pub fn fired(&self) -> Vec<FiredFault> {
        lock(&self.state).fired.clone()
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
        if action.is_none()
            && let Some((plan, rng)) = state.random.as_mut()
            && !plan.actions.is_empty()
            && (plan.operations.is_empty() || plan.operations.iter().any(|o| o == operation))
            && rng.random_range(0..1000) < plan.per_mille
        {
            let pick = rng.random_range(0..plan.actions.len());
            action = plan.actions.get(pick).cloned();
        }
        if let Some(a) = &action {
            state.fired.push(FiredFault {
                operation: operation.to_string(),
                action: a.clone(),
            });
        }
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
    fn a_random_plan_is_reproducible_for_a_seed_and_stops_when_cleared() {
        let run = |seed| {
            let f = Faults::default();
            f.arm_random(RandomFaults {
                seed,
                per_mille: 300,
                operations: vec!["w".into()],
                actions: vec![
                    FaultAction::ErrorCodeAfterApply(9),
                    FaultAction::HttpStatus(503),
                ],
            });
            let got: Vec<Option<FaultAction>> = (0..64)
                .map(|i| f.decide(if i % 4 == 0 { "r" } else { "w" }).action)
                .collect();
            (f, got)
        };
        let (f, first) = run(7);
        let (_, again) = run(7);
        assert_eq!(first, again);
        let faulted = first.iter().flatten().count();
        assert!((3..40).contains(&faulted), "{faulted} of 48 calls faulted");
        // Only the listed operation is faulted.
        assert!(first.iter().step_by(4).all(Option::is_none));
        assert_eq!(f.fired().len(), faulted);
        f.clear();
        assert!((0..64).all(|_| f.decide("w").action.is_none()));
        assert_eq!(f.fired().len(), faulted, "the record of what fired is kept");
        assert!(FaultAction::ErrorCodeAfterApply(1).applies_first());
        assert!(!FaultAction::HttpStatus(500).applies_first());
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
