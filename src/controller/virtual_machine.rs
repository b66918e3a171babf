//! The VirtualMachine controller. A VirtualMachine is reconciled again when
//! its StorageArray appears or changes labels (it may have joined this
//! deployment's shard). Everything else (finalizer, wake hash, backoff,
//! shard check, status by server-side apply) is the shared managed wiring.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::{Controller, reflector};

use crate::crd::VirtualMachine;

use super::context::Context;
use super::managed::{array_wakes, error_policy, reconcile, referencing, trigger_stream};

/// Runs the VirtualMachine controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (reader, writer) = reflector::store::<VirtualMachine>();
    ctx.cluster.set_store(reader.clone());
    let by_array = ctx.clone();
    Controller::for_stream(
        trigger_stream(ctx.api::<VirtualMachine>(), writer, ctx.cluster.clone()),
        reader,
    )
    .watches_stream(array_wakes(&ctx), move |sa| {
        referencing::<VirtualMachine>(&by_array, &sa)
    })
    .graceful_shutdown_on(shutdown)
    .run(
        reconcile::<VirtualMachine>,
        error_policy::<VirtualMachine>,
        ctx,
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "VirtualMachine reconcile");
        }
    })
    .await;
}
