//! The ReplicationPlan controller: the SnapshotSchedule controller's shape
//! (finalizer, wake predicate, Events, status by server-side apply,
//! per-object backoff, `--array-selector` shards) around
//! [`crate::engine::replication_plan`]. It requeues each plan for its next
//! due time, for a running sync's progress, and at once after recording a
//! manual request (the sync call follows that status write).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::crd::shared::FINALIZER;
use crate::crd::{ReplicationPlan, ReplicationPlanStatus};
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::replication_plan::{self, KIND};
use crate::engine::{Cleanup, Progress};

use super::context::{Context, FIELD_MANAGER};
use super::managed::{
    ArrayUnavailable, ControllerError, SHARD_UNKNOWN_REQUEUE, array_wakes, publish, wake_hash,
};

/// What the plan controller shares.
struct PlanContext {
    ctx: Arc<Context>,
    clock: SystemClock,
}

fn key_of(p: &ReplicationPlan) -> String {
    format!(
        "{KIND}/{}/{}",
        p.namespace().unwrap_or_default(),
        p.name_any()
    )
}

async fn patch_status(
    api: &Api<ReplicationPlan>,
    p: &ReplicationPlan,
    status: &ReplicationPlanStatus,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": ReplicationPlan::api_version(&()),
        "kind": KIND,
        "status": status,
    });
    api.patch_status(
        &p.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

async fn apply(
    p: Arc<ReplicationPlan>,
    pc: &PlanContext,
    api: &Api<ReplicationPlan>,
) -> Result<Action, ControllerError> {
    let ctx = &pc.ctx;
    let key = key_of(&p);
    let ns = p.namespace().unwrap_or_default();
    let handle = match ctx.arrays.handle(&ns, &p.spec.array_ref.name).await {
        Ok(h) => h,
        Err(e) => {
            let down = ArrayUnavailable::of(
                &e,
                p.status.as_ref().map(|st| &st.common),
                p.metadata.generation,
            );
            let mut status = p.status.clone().unwrap_or_default();
            status.common = down.common.clone();
            patch_status(api, &p, &status).await?;
            return Ok(down.report(ctx, p.as_ref(), KIND, &key).await);
        }
    };
    let out = replication_plan::reconcile(&p, &handle, &pc.clock).await;
    patch_status(api, &p, &out.outcome.status).await?;
    publish(ctx, p.as_ref(), &out.outcome.events).await;
    Ok(match out.outcome.progress {
        Progress::Converged | Progress::Waiting => {
            ctx.backoff.succeeded(&key);
            Action::requeue(requeue_after(handle.resync, out.wake_at, pc.clock.now()))
        }
        Progress::Failed | Progress::Stalled => {
            ctx.metrics.reconcile_failed(KIND, "Failed");
            Action::requeue(ctx.backoff.failed(&key))
        }
    })
}

/// When to come back: at `wake_at` (a second after a due time, so it is in
/// the past; at once for a time already reached), or after `base`,
/// whichever is first.
fn requeue_after(base: Duration, wake_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    let due = wake_at.map(|t| match (t - now).to_std() {
        Ok(d) if !d.is_zero() => d.saturating_add(Duration::from_secs(1)),
        _ => Duration::ZERO,
    });
    due.map_or(base, |d| d.min(base))
}

async fn reconcile(
    p: Arc<ReplicationPlan>,
    pc: Arc<PlanContext>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let ns = p.namespace().unwrap_or_default();
    // `--array-selector`: a plan on another deployment's array is left
    // alone; when its array joins, the StorageArray watch wakes it.
    match pc.ctx.serves(&ns, &p.spec.array_ref.name).await {
        Some(true) => {}
        Some(false) => return Ok(Action::await_change()),
        None => return Ok(Action::requeue(SHARD_UNKNOWN_REQUEUE)),
    }
    let api: Api<ReplicationPlan> = Api::namespaced(pc.ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, p, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply(o, &pc, &api).await,
            FinalizerEvent::Cleanup(o) => {
                // Never deletes the DSM plan (no such call): only stops
                // driving it.
                if let Cleanup::Done { events } = replication_plan::cleanup(&o) {
                    publish(&pc.ctx, o.as_ref(), &events).await;
                }
                Ok(Action::await_change())
            }
        }
    })
    .await;
    pc.ctx.metrics.reconciled(KIND, started.elapsed());
    result.map_err(|e| ControllerError::Finalizer(e.to_string()))
}

fn error_policy(p: Arc<ReplicationPlan>, error: &ControllerError, pc: Arc<PlanContext>) -> Action {
    let key = key_of(&p);
    tracing::warn!(object = %key, error = %error, "reconcile failed");
    Action::requeue(pc.ctx.backoff.failed(&key))
}

/// Runs the ReplicationPlan controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (plans, plan_writer) = reflector::store::<ReplicationPlan>();
    let triggers = watcher(
        ctx.api::<ReplicationPlan>(),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(plan_writer)
    .applied_objects()
    .predicate_filter(wake_hash::<ReplicationPlan>, PredicateConfig::default());
    let by_array = plans.clone();
    let array_events = array_wakes(&ctx);
    let pc = Arc::new(PlanContext {
        ctx,
        clock: SystemClock,
    });
    Controller::for_stream(triggers, plans)
        // A StorageArray that appeared or joined this deployment's shard
        // wakes its plans.
        .watches_stream(array_events, move |sa: crate::crd::StorageArray| {
            let ns = sa.namespace();
            let name = sa.name_any();
            by_array
                .state()
                .iter()
                .filter(|p| p.namespace() == ns && p.spec.array_ref.name == name)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, pc)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "ReplicationPlan reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn requeues_for_a_due_time_at_once_for_now_or_after_the_resync() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
            .single()
            .expect("time");
        let resync = Duration::from_secs(300);
        let soon = now + chrono::Duration::seconds(15);
        assert_eq!(
            requeue_after(resync, Some(soon), now),
            Duration::from_secs(16)
        );
        // A manual request was just recorded: the sync call follows now.
        assert_eq!(requeue_after(resync, Some(now), now), Duration::ZERO);
        let far = now + chrono::Duration::seconds(3600);
        assert_eq!(requeue_after(resync, Some(far), now), resync);
        assert_eq!(requeue_after(resync, None, now), resync);
    }
}
