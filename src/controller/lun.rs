//! The Lun controller.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::{Controller, reflector};

use crate::crd::Lun;

use super::context::Context;
use super::managed::{error_policy, reconcile, trigger_stream};

/// Runs the Lun controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (reader, writer) = reflector::store::<Lun>();
    ctx.cluster.set_store(reader.clone());
    Controller::for_stream(trigger_stream(ctx.api::<Lun>(), writer), reader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<Lun>, error_policy::<Lun>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "Lun reconcile");
            }
        })
        .await;
}
