//! The ReplicationPlan controller: the SnapshotSchedule controller's shape
//! (finalizer, wake predicate, Events, status by server-side apply,
//! per-object backoff, `--array-selector` shards) around
//! [`crate::engine::replication_plan`]. It requeues each plan for its next
//! due time, for a running sync's progress, and at once after recording a
//! manual request (the sync call follows that status write).

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::crd::ReplicationPlan;
use crate::crd::shared::FINALIZER;
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::replication_plan::{self, KIND};
use crate::engine::{Cleanup, Progress};

use super::backoff::requeue_after;
use super::context::Context;
use super::managed::{
    ArrayUnavailable, ControllerError, SHARD_UNKNOWN_REQUEUE, array_wakes, backoff_after_error,
    object_key, patch_status, publish, wake_hash,
};

/// What the plan controller shares.
struct PlanContext {
    ctx: Arc<Context>,
    clock: SystemClock,
}

async fn apply(
    p: Arc<ReplicationPlan>,
    pc: &PlanContext,
    api: &Api<ReplicationPlan>,
) -> Result<Action, ControllerError> {
    let ctx = &pc.ctx;
    let key = object_key(p.as_ref());
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
    backoff_after_error(&pc.ctx, p.as_ref(), error)
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
