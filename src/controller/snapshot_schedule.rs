//! The SnapshotSchedule controller. A schedule owns no single array object
//! (see [`crate::engine::snapshot_schedule`]), so this is not the generic
//! [`super::managed`] reconcile, but it reuses its pieces: the finalizer
//! helper, the wake predicate, Events, status by server-side apply and the
//! per-object backoff. It also watches Luns, so a Lun that gains or loses
//! a label (or gets its array id) wakes the schedules of its namespace, and
//! it requeues each schedule for its next due time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::crd::shared::FINALIZER;
use crate::crd::{Lun, SnapshotSchedule};
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::snapshot_schedule::{self, KIND};
use crate::engine::{Cleanup, Progress};

use super::backoff::requeue_after;
use super::context::Context;
use super::managed::{
    ArrayUnavailable, ControllerError, SHARD_UNKNOWN_REQUEUE, WAITING_REQUEUE, array_wakes,
    backoff_after_error, object_key, patch_status, publish, wake_hash,
};

/// How long a reconcile waits for the Lun store's first list.
const STORE_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the schedule controller shares.
struct ScheduleContext {
    ctx: Arc<Context>,
    luns: Store<Lun>,
    /// True once the Lun store has listed. A watch channel, because
    /// `Store::wait_until_ready` wakes only one of several waiters.
    luns_ready: tokio::sync::watch::Receiver<bool>,
    clock: SystemClock,
}

fn luns_of(store: &Store<Lun>, ns: &str) -> Vec<Lun> {
    store
        .state()
        .iter()
        .filter(|l| l.namespace().as_deref() == Some(ns))
        .map(|l| l.as_ref().clone())
        .collect()
}

async fn apply(
    s: Arc<SnapshotSchedule>,
    sc: &ScheduleContext,
    api: &Api<SnapshotSchedule>,
) -> Result<Action, ControllerError> {
    let ctx = &sc.ctx;
    let key = object_key(s.as_ref());
    let ns = s.namespace().unwrap_or_default();
    let handle = match ctx.arrays.handle(&ns, &s.spec.array_ref.name).await {
        Ok(h) => h,
        Err(e) => {
            let down = ArrayUnavailable::of(
                &e,
                s.status.as_ref().map(|st| &st.common),
                s.metadata.generation,
            );
            let mut status = s.status.clone().unwrap_or_default();
            status.common = down.common.clone();
            patch_status(api, &s, &status).await?;
            return Ok(down.report(ctx, s.as_ref(), KIND, &key).await);
        }
    };
    // Before the Lun watch has listed once, every selection would look
    // empty and the due run would be skipped.
    let mut ready = sc.luns_ready.clone();
    let listed = matches!(
        tokio::time::timeout(STORE_READY_TIMEOUT, ready.wait_for(|r| *r)).await,
        Ok(Ok(_))
    );
    if !listed {
        return Ok(Action::requeue(WAITING_REQUEUE));
    }
    let luns = luns_of(&sc.luns, &ns);
    let out = snapshot_schedule::reconcile(&s, &handle, &luns, &sc.clock).await;
    patch_status(api, &s, &out.outcome.status).await?;
    publish(ctx, s.as_ref(), &out.outcome.events).await;
    Ok(match out.outcome.progress {
        Progress::Converged | Progress::Waiting => {
            ctx.backoff.succeeded(&key);
            let base = if out.outcome.progress == Progress::Waiting {
                WAITING_REQUEUE
            } else {
                handle.resync
            };
            Action::requeue(requeue_after(base, out.wake_at, sc.clock.now()))
        }
        Progress::Failed | Progress::Stalled => {
            ctx.metrics.reconcile_failed(KIND, "Failed");
            Action::requeue(ctx.backoff.failed(&key))
        }
    })
}

async fn cleanup(
    s: Arc<SnapshotSchedule>,
    sc: &ScheduleContext,
    api: &Api<SnapshotSchedule>,
) -> Result<Action, ControllerError> {
    let ctx = &sc.ctx;
    let ns = s.namespace().unwrap_or_default();
    let handle = ctx.arrays.handle(&ns, &s.spec.array_ref.name).await.ok();
    match snapshot_schedule::cleanup(&s, handle.as_deref()).await {
        Cleanup::Done { events } => {
            publish(ctx, s.as_ref(), &events).await;
            Ok(Action::await_change())
        }
        Cleanup::Held(outcome) => {
            patch_status(api, &s, &outcome.status).await?;
            publish(ctx, s.as_ref(), &outcome.events).await;
            Err(ControllerError::Held(
                "native snapshot schedules not removed yet".into(),
            ))
        }
    }
}

async fn reconcile(
    s: Arc<SnapshotSchedule>,
    sc: Arc<ScheduleContext>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let ns = s.namespace().unwrap_or_default();
    // `--array-selector`: a schedule of another deployment's array is not
    // touched at all; when its array joins, the StorageArray watch wakes it.
    match sc.ctx.serves(&ns, &s.spec.array_ref.name).await {
        Some(true) => {}
        Some(false) => return Ok(Action::await_change()),
        None => return Ok(Action::requeue(SHARD_UNKNOWN_REQUEUE)),
    }
    let api: Api<SnapshotSchedule> = Api::namespaced(sc.ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, s, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply(o, &sc, &api).await,
            FinalizerEvent::Cleanup(o) => cleanup(o, &sc, &api).await,
        }
    })
    .await;
    sc.ctx.metrics.reconciled(KIND, started.elapsed());
    result.map_err(|e| ControllerError::Finalizer(e.to_string()))
}

fn error_policy(
    s: Arc<SnapshotSchedule>,
    error: &ControllerError,
    sc: Arc<ScheduleContext>,
) -> Action {
    backoff_after_error(&sc.ctx, s.as_ref(), error)
}

fn lun_selection_hash(lun: &Lun) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        lun.labels(),
        crate::engine::lun_external_id(lun),
        &lun.spec.array_ref.name,
        lun.metadata.deletion_timestamp.is_some(),
    )
        .hash(&mut h);
    Some(h.finish())
}

/// Runs the SnapshotSchedule controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (schedules, schedule_writer) = reflector::store::<SnapshotSchedule>();
    let triggers = watcher(
        ctx.api::<SnapshotSchedule>(),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(schedule_writer)
    .applied_objects()
    .predicate_filter(wake_hash::<SnapshotSchedule>, PredicateConfig::default());
    let (luns, lun_writer) = reflector::store::<Lun>();
    let lun_events = watcher(ctx.api::<Lun>(), watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(lun_writer)
        .touched_objects()
        // Only what changes a selection wakes a schedule: labels, the array
        // id, the array, deletion; not every Lun status write.
        .predicate_filter(lun_selection_hash, PredicateConfig::default());
    let by_namespace = schedules.clone();
    let by_array = schedules.clone();
    let array_events = array_wakes(&ctx);
    let (ready_tx, luns_ready) = tokio::sync::watch::channel(false);
    let lun_store = luns.clone();
    tokio::spawn(async move {
        if lun_store.wait_until_ready().await.is_ok() {
            let _ = ready_tx.send(true);
        }
    });
    let sc = Arc::new(ScheduleContext {
        ctx,
        luns,
        luns_ready,
        clock: SystemClock,
    });
    Controller::for_stream(triggers, schedules)
        .watches_stream(lun_events, move |lun: Lun| {
            let ns = lun.namespace();
            by_namespace
                .state()
                .iter()
                .filter(|s| s.namespace() == ns && s.spec.array_ref.name == lun.spec.array_ref.name)
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        // A StorageArray that appeared or joined this deployment's shard
        // wakes its schedules.
        .watches_stream(array_events, move |sa: crate::crd::StorageArray| {
            let ns = sa.namespace();
            let name = sa.name_any();
            by_array
                .state()
                .iter()
                .filter(|s| s.namespace() == ns && s.spec.array_ref.name == name)
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, sc)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "SnapshotSchedule reconcile");
            }
        })
        .await;
}
