//! The Lun controller.

use std::sync::Arc;

use futures::StreamExt;
use kube::Api;
use kube::runtime::{Controller, watcher};

use crate::crd::Lun;
use crate::crd::lun::LunStatus;
use crate::engine::common::common_with;
use crate::engine::conditions::ConditionState;
use crate::engine::{self, ArrayHandle, Cleanup, Outcome};

use super::cluster::KubeCluster;
use super::context::Context;
use super::managed::{ManagedKind, error_policy, reconcile};

impl ManagedKind for Lun {
    const KIND: &'static str = "Lun";
    type Status = LunStatus;

    fn array_ref(&self) -> &str {
        &self.spec.array_ref.name
    }

    async fn reconcile_engine<'a>(
        &'a self,
        array: &'a ArrayHandle,
        cluster: &'a KubeCluster,
    ) -> Outcome<LunStatus> {
        engine::lun::reconcile(self, array, cluster).await
    }

    async fn cleanup_engine<'a>(
        &'a self,
        array: Option<&'a ArrayHandle>,
        cluster: &'a KubeCluster,
    ) -> Cleanup<LunStatus> {
        engine::lun::cleanup(self, array, cluster).await
    }

    fn status_with(&self, ready: Option<ConditionState>, synced: ConditionState) -> LunStatus {
        let previous = self.status.clone().unwrap_or_default();
        LunStatus {
            common: common_with(
                Some(&previous.common),
                ready.as_ref(),
                &synced,
                self.metadata.generation,
            ),
            ..previous
        }
    }
}

/// Runs the Lun controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Lun> = ctx.api();
    Controller::new(api, watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<Lun>, error_policy::<Lun>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "Lun reconcile");
            }
        })
        .await;
}
