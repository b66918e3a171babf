//! Replication plans on DSM: `SYNO.DR.Plan` `list` (with its additional
//! blocks) and `sync`.

use crate::array::synology::replication::{Plan, SiteInfo, SyncOptions, SyncRecord};

use super::super::BackendError;
use super::super::replication::{ObservedPlan, PlanSiteInfo, SyncRequest, SyncRun};
use super::DsmBackend;

fn site(info: Option<&SiteInfo>, node: Option<&String>) -> Option<PlanSiteInfo> {
    match info {
        Some(i) => Some(PlanSiteInfo {
            hostname: i.hostname.clone().or_else(|| i.node_id.clone()),
            status: i.status.as_ref().map(|s| s.as_text()),
        }),
        None => node.map(|n| PlanSiteInfo {
            hostname: Some(n.clone()),
            status: None,
        }),
    }
}

fn run(r: &SyncRecord, progress: Option<i32>) -> SyncRun {
    // A running record's progress: DSM's own percentage when it gives one,
    // else bytes sent of the total.
    let from_bytes = match (r.sync_size_byte, r.total_size_byte) {
        (Some(done), Some(total)) if total > 0 && !r.is_done => {
            Some(((done.min(total) * 100) / total) as i32)
        }
        _ => None,
    };
    SyncRun {
        begin: r.begin_time,
        finish: r.finish_time,
        elapsed: r.elapsed_time.or(match (r.begin_time, r.finish_time) {
            (Some(b), Some(f)) if f >= b => Some(f - b),
            _ => None,
        }),
        bytes: r.sync_size_byte,
        done: r.is_done,
        success: r.is_success,
        progress: progress.or(from_bytes),
    }
}

fn observed(p: Plan) -> ObservedPlan {
    let role = p.role_text();
    let a = &p.additional;
    let report = a.sync_report.clone().unwrap_or_default();
    let percentage = a
        .op_info
        .as_ref()
        .and_then(|o| o.op_progress.as_ref())
        .and_then(|pr| pr.percentage)
        .filter(|n| (0..=100).contains(n))
        .map(|n| n as i32);
    let syncing = report
        .syncing_record
        .as_ref()
        .filter(|r| !r.is_done)
        .map(|r| run(r, percentage));
    let last_error_code = a
        .last_op_info
        .as_ref()
        .and_then(|l| l.err_code)
        .filter(|c| *c != 0);
    ObservedPlan {
        id: p.plan_id.clone(),
        role,
        main_site: site(a.main_site_info.as_ref(), p.main_site.as_ref()),
        dr_site: site(a.dr_site_info.as_ref(), p.dr_site.as_ref()),
        can_sync: a.can_do.as_ref().and_then(|c| c.can_sync).unwrap_or(true),
        syncing,
        recent: report.recent_records.iter().map(|r| run(r, None)).collect(),
        success_count: report.success_sync_count.unwrap_or(0),
        failure_count: report.fail_sync_count.unwrap_or(0),
        last_error_code,
        next_trigger: a.sync_policy.as_ref().and_then(|s| s.next_trigger_time),
        send_encrypted: a.sync_policy.as_ref().map(|s| s.is_send_encrypted),
    }
}

/// See [`super::super::Backend::list_plans`].
pub async fn list(b: &DsmBackend) -> Result<Vec<ObservedPlan>, BackendError> {
    let plans = b
        .client()
        .replication()
        .list()
        .await
        .map_err(|e| BackendError::from_vendor(&e))?;
    Ok(plans.into_iter().map(observed).collect())
}

/// See [`super::super::Backend::sync_plan`]. The plan's encryption setting
/// is repeated from the listing, as DSM requires.
pub async fn sync(
    b: &DsmBackend,
    plan: &ObservedPlan,
    request: &SyncRequest,
) -> Result<(), BackendError> {
    let opts = SyncOptions {
        description: request.description.clone(),
        lock_snapshot: request.lock_snapshot,
        send_encrypted: plan.send_encrypted,
    };
    b.client()
        .replication()
        .sync(&plan.id, &opts)
        .await
        .map_err(|e| BackendError::from_vendor(&e))
}
