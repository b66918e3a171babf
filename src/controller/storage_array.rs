//! The StorageArray controller: connects, authenticates, and reports what
//! the array says about itself; when it cannot, `Ready=False` carries the
//! array's own error.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::array::backend::ArrayInfo;
use crate::crd::shared::{CONDITION_READY, CommonStatus, ready_reason};
use crate::crd::storage_array::{
    PoolCapacity, StorageArray, StorageArrayObserved, StorageArrayStatus,
};
use crate::engine::conditions::{ConditionState, set_condition};
use crate::engine::{self};

use super::context::{Context, FIELD_MANAGER};
use super::managed::ControllerError;

/// The status for a successful observation.
pub fn observed(info: &ArrayInfo) -> StorageArrayObserved {
    StorageArrayObserved {
        model: info.model.clone(),
        version: info.version.clone(),
        serial: info.serial.clone(),
        dialect: info.dialect.clone(),
        active_endpoint: info.active_endpoint.clone(),
        resize_mode: info.resize_mode.clone(),
        pools: info
            .pools
            .iter()
            .map(|(name, total, free)| PoolCapacity {
                name: name.clone(),
                total_bytes: total.and_then(|b| i64::try_from(b).ok()),
                free_bytes: free.and_then(|b| i64::try_from(b).ok()),
            })
            .collect(),
    }
}

fn status(
    sa: &StorageArray,
    ready: ConditionState,
    at_array: Option<StorageArrayObserved>,
) -> StorageArrayStatus {
    let previous = sa.status.clone().unwrap_or_default();
    let mut conditions = previous.common.conditions.clone();
    set_condition(
        &mut conditions,
        CONDITION_READY,
        &ready,
        sa.metadata.generation,
        &engine::now(),
    );
    StorageArrayStatus {
        common: CommonStatus {
            observed_generation: sa.metadata.generation,
            conditions,
            external_id: None,
        },
        at_array: at_array.or(previous.at_array),
    }
}

/// Reconciles one StorageArray: connect, observe, write `Ready` and `atArray`.
pub async fn reconcile(
    sa: Arc<StorageArray>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let ns = sa.namespace().unwrap_or_default();
    let name = sa.name_any();
    let key = format!("StorageArray/{ns}/{name}");
    let (new_status, action) = match ctx.arrays.handle(&ns, &name).await {
        Err(e) => {
            ctx.metrics
                .reconcile_failed("StorageArray", "ArrayUnreachable");
            (
                status(
                    &sa,
                    ConditionState::no(ready_reason::UNAVAILABLE, e.to_string()),
                    None,
                ),
                Action::requeue(ctx.backoff.failed(&key)),
            )
        }
        Ok(handle) => match handle.backend.info().await {
            Ok(info) => {
                ctx.backoff.succeeded(&key);
                let text = format!(
                    "connected and authenticated{}{}",
                    info.model
                        .as_ref()
                        .map(|m| format!("; model {m}"))
                        .unwrap_or_default(),
                    info.version
                        .as_ref()
                        .map(|v| format!(", version {v}"))
                        .unwrap_or_default()
                );
                (
                    status(
                        &sa,
                        ConditionState::yes(ready_reason::AVAILABLE, text),
                        Some(observed(&info)),
                    ),
                    Action::requeue(handle.resync),
                )
            }
            Err(e) => {
                ctx.arrays.evict(&ns, &name, &e).await;
                ctx.metrics
                    .reconcile_failed("StorageArray", e.class.as_str());
                (
                    status(
                        &sa,
                        ConditionState::no(ready_reason::UNAVAILABLE, e.to_string()),
                        None,
                    ),
                    Action::requeue(ctx.backoff.failed(&key)),
                )
            }
        },
    };
    let api: Api<StorageArray> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "apiVersion": "array-operator.io/v1alpha1",
        "kind": "StorageArray",
        "status": new_status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.reconciled("StorageArray", started.elapsed());
    Ok(action)
}

fn error_policy(sa: Arc<StorageArray>, error: &ControllerError, ctx: Arc<Context>) -> Action {
    let key = format!(
        "StorageArray/{}/{}",
        sa.namespace().unwrap_or_default(),
        sa.name_any()
    );
    tracing::warn!(object = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.backoff.failed(&key))
}

/// Runs the StorageArray controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<StorageArray> = ctx.api();
    Controller::new(api, watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "StorageArray reconcile");
            }
        })
        .await;
}
