//! Replication plans, vendor-neutral: what ReplicationPlan needs from an
//! array. Only DSM has them (Snapshot Replication, `dsm/replication.rs`);
//! an NGXStorage array answers `Unsupported` without any call.

use super::{Backend, BackendError, dsm};

/// One site of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanSiteInfo {
    /// Host name.
    pub hostname: Option<String>,
    /// Status as the array reports it.
    pub status: Option<String>,
}

/// One sync run of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncRun {
    /// Unix seconds it started.
    pub begin: Option<i64>,
    /// Unix seconds it finished.
    pub finish: Option<i64>,
    /// Seconds it took.
    pub elapsed: Option<i64>,
    /// Bytes sent.
    pub bytes: Option<u64>,
    /// Finished.
    pub done: bool,
    /// Succeeded.
    pub success: bool,
    /// Percent done (a running sync).
    pub progress: Option<i32>,
}

/// A replication plan as the array lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedPlan {
    /// Plan id.
    pub id: String,
    /// This site's role (`mainsite`, `drsite`).
    pub role: Option<String>,
    /// The main site.
    pub main_site: Option<PlanSiteInfo>,
    /// The DR site.
    pub dr_site: Option<PlanSiteInfo>,
    /// The array allows a sync now (its `can_do.can_sync`; true when the
    /// array does not say).
    pub can_sync: bool,
    /// The sync running now.
    pub syncing: Option<SyncRun>,
    /// Recent finished runs, oldest first.
    pub recent: Vec<SyncRun>,
    /// Successful syncs so far.
    pub success_count: i64,
    /// Failed syncs so far.
    pub failure_count: i64,
    /// The error code of the last operation, when it failed.
    pub last_error_code: Option<i64>,
    /// Unix seconds of the plan's own next scheduled sync.
    pub next_trigger: Option<i64>,
    /// The plan sends data encrypted (a sync call must repeat it).
    pub send_encrypted: Option<bool>,
}

impl ObservedPlan {
    /// Syncs the plan has started: finished ones plus a running one. Never
    /// decreases (DSM trims `recent_records`, not its counts), so a value
    /// above one read earlier proves a sync started since.
    pub fn started(&self) -> i64 {
        self.success_count + self.failure_count + i64::from(self.syncing.is_some())
    }

    /// The latest finished run.
    pub fn last_finished(&self) -> Option<&SyncRun> {
        self.recent
            .iter()
            .filter(|r| r.done)
            .max_by_key(|r| r.finish.or(r.begin))
    }
}

/// The options of one sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// Description of the snapshot the sync takes.
    pub description: String,
    /// Lock that snapshot against rotation.
    pub lock_snapshot: bool,
}

impl Backend {
    /// Every replication plan of the array, in one call.
    pub async fn list_plans(&self) -> Result<Vec<ObservedPlan>, BackendError> {
        match self {
            Backend::Synology(b) => dsm::replication::list(b).await,
            Backend::Ngx(_) => Err(no_plans()),
        }
    }

    /// Starts a sync of `plan` without waiting for it. Never resent after
    /// an ambiguous failure: the caller re-lists and compares
    /// [`ObservedPlan::started`].
    pub async fn sync_plan(
        &self,
        plan: &ObservedPlan,
        request: &SyncRequest,
    ) -> Result<(), BackendError> {
        match self {
            Backend::Synology(b) => dsm::replication::sync(b, plan, request).await,
            Backend::Ngx(_) => Err(no_plans()),
        }
    }

    /// True when the vendor has replication plans the operator can drive.
    pub fn has_replication_plans(&self) -> bool {
        matches!(self, Backend::Synology(_))
    }
}

/// NGXStorage has no replication plan API the operator drives.
pub fn no_plans() -> BackendError {
    BackendError::unsupported(
        "replication plans",
        "NGXStorage arrays have no Snapshot Replication plans; ReplicationPlan works with Synology DSM arrays only",
    )
}
