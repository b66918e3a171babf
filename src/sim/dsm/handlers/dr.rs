//! `SYNO.DR.Plan`: list plans, trigger a sync.

use chrono::TimeZone;
use serde_json::{Value, json};

use super::lun::{INVALID, MISSING};
use super::{Ctx, HandlerResult, Reply, now};
use crate::sim::dsm::request::Args;
use crate::sim::dsm::state::{DsmState, SimPlan, SimSyncRecord, lock};

/// Seconds between scheduled syncs of the seeded plan (daily).
const SYNC_INTERVAL: i64 = 86_400;

/// Dispatches one plan method.
pub fn handle(ctx: &Ctx<'_>) -> HandlerResult {
    let args = Args::new(ctx.req, MISSING, INVALID);
    let mut state = lock(&ctx.shared.state);
    match ctx.method {
        "list" => list(&state, &args),
        _ => sync(&mut state, &args),
    }
}

fn readable(t: i64) -> String {
    chrono::Utc
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_default()
}

fn version_name(t: i64) -> String {
    chrono::Utc
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("GMT+00-%Y.%m.%d-%H.%M.%S").to_string())
        .unwrap_or_default()
}

fn plan_json(p: &SimPlan, wanted: &crate::sim::dsm::request::Additional) -> Value {
    let mut additional = serde_json::Map::new();
    for (k, v) in &p.other_additional {
        if wanted.wants(k) {
            additional.insert(k.clone(), v.clone());
        }
    }
    if wanted.wants("sync_policy") {
        additional.insert(
            "sync_policy".into(),
            json!({
                "enabled": true,
                "is_app_aware": false,
                "is_send_encrypted": p.is_send_encrypted,
                "mode": "schedule",
                "next_trigger_time": p.next_trigger_time,
                "readable_next_trigger_time": readable(p.next_trigger_time),
            }),
        );
    }
    if wanted.wants("sync_report") {
        let ok: Vec<&SimSyncRecord> = p.records.iter().filter(|r| r.success).collect();
        additional.insert(
            "sync_report".into(),
            json!({
                "fail_sync_count": p.fail_sync_count,
                "success_sync_count": ok.len(),
                "syncing_record": null,
                "total_success_sync_size_byte": ok.iter().map(|r| r.size_bytes).sum::<u64>(),
                "total_success_sync_time_sec":
                    ok.iter().map(|r| r.finish_time - r.begin_time).sum::<i64>(),
                "recent_records": p.records.iter().map(|r| json!({
                    "begin_time": r.begin_time,
                    "finish_time": r.finish_time,
                    "elapsed_time": r.finish_time - r.begin_time,
                    "readable_begin_time": readable(r.begin_time),
                    "readable_finish_time": readable(r.finish_time),
                    "data_size_byte": r.size_bytes,
                    "sync_size_byte": r.size_bytes,
                    "total_size_byte": r.size_bytes,
                    "is_done": true,
                    "is_stopped": false,
                    "is_success": r.success,
                    "snapshot_version": version_name(r.begin_time),
                    "update_time": r.finish_time,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    if wanted.wants("last_op_info") {
        additional.insert(
            "last_op_info".into(),
            json!({"err_code": 0, "is_success": true, "op_status": 16, "update_time": p.last_op_time}),
        );
    }
    if wanted.wants("retention_lock_report") {
        additional.insert(
            "retention_lock_report".into(),
            json!({
                "first_snapshot": p.records.first().map(|r| version_name(r.begin_time)),
                "last_snapshot": p.records.last().map(|r| version_name(r.begin_time)),
                "retain_first": false,
            }),
        );
    }
    json!({
        "plan_id": p.plan_id,
        "role": p.role,
        "role_str": p.role,
        "op_status": "none",
        "target_id": p.target_id,
        "target_type": p.target_type,
        "is_to_local": false,
        "additional": additional,
    })
}

fn list(s: &DsmState, args: &Args<'_>) -> HandlerResult {
    let wanted = args.additional()?;
    let plans: Vec<Value> = s.plans.iter().map(|p| plan_json(p, &wanted)).collect();
    Ok(Reply::data(json!({"total": plans.len(), "plans": plans})))
}

fn sync(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let plan_id = args.non_empty("plan_id")?;
    let _nowait = args.opt_bool("nowait")?;
    let _auto_remove = args.opt_bool("auto_remove")?;
    let _locked = args.opt_bool("is_snapshot_locked")?;
    let encrypted = args.opt_bool("is_send_encrypted")?;
    let description = args
        .opt_string("sync_description")?
        .unwrap_or_else(|| "Snapshot taken by [Synology API]".into());
    let plan = s
        .plans
        .iter_mut()
        .find(|p| p.plan_id == plan_id)
        .ok_or(INVALID)?;
    // A sync must repeat the plan's encryption setting when it names one.
    if encrypted.is_some_and(|e| e != plan.is_send_encrypted) {
        return Err(INVALID);
    }
    let begin = now().max(plan.last_op_time + 1);
    let finish = begin + 3;
    plan.records.push(SimSyncRecord {
        begin_time: begin,
        finish_time: finish,
        size_bytes: 8192,
        description,
        success: true,
    });
    plan.last_op_time = finish;
    while plan.next_trigger_time <= finish {
        plan.next_trigger_time += SYNC_INTERVAL;
    }
    Ok(Reply::empty())
}
