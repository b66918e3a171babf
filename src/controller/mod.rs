//! The Kubernetes controllers: one per kind, plus what they share (the
//! context, the array registry, the cluster view the engine uses, and the
//! error policy). Each controller is a thin wrapper: the decisions are the
//! engine's ([`crate::engine`]).

pub mod arrays;
pub mod backoff;
pub mod cluster;
pub mod context;
pub mod holds;
pub mod iscsi_target;
pub mod listed;
pub mod lun;
pub mod managed;
pub mod rbac;
pub mod readiness;
pub mod replication_plan;
pub mod secrets;
pub mod shard;
pub mod snapshot_schedule;
pub mod storage_array;
pub mod virtual_machine;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::Shared;

pub use context::Context;

/// Runs every controller until `shutdown` resolves, then logs out of every
/// array.
pub async fn run_all<F>(ctx: Arc<Context>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::join!(
        storage_array::run(ctx.clone(), shutdown.clone().map(|_| ())),
        lun::run(ctx.clone(), shutdown.clone().map(|_| ())),
        iscsi_target::run(ctx.clone(), shutdown.clone().map(|_| ())),
        snapshot_schedule::run(ctx.clone(), shutdown.clone().map(|_| ())),
        replication_plan::run(ctx.clone(), shutdown.clone().map(|_| ())),
        virtual_machine::run(ctx.clone(), shutdown.clone().map(|_| ())),
    );
    ctx.arrays.close_all().await;
}
