//! `SYNO.DR.Plan`: list plans, trigger a sync. Syncs are asynchronous as
//! on DSM: `sync` (always `nowait`) starts one, `list` shows it in
//! `sync_report.syncing_record` and `op_info` with its progress, and once
//! the plan clock ([`DsmState::plan_clock_offset`] ahead of the wall
//! clock) passes its end, as a record in `recent_records`, failed with the
//! code armed by `fail_next_sync` if one was.

use chrono::TimeZone;
use serde_json::{Value, json};

use super::lun::{INVALID, MISSING};
use super::{Ctx, HandlerResult, Reply, now};
use crate::sim::dsm::request::Args;
use crate::sim::dsm::state::{DsmState, SimPlan, SimSyncRecord, SimSyncing, lock};

/// Seconds between scheduled syncs of the seeded plan (daily).
const SYNC_INTERVAL: i64 = 86_400;
/// Bytes a simulated sync sends.
const SYNC_BYTES: u64 = 8192;
/// The answer to a sync DSM will not start (one runs, or `can_sync` is
/// false). The Snapshot Replication docs list no DR error codes, so this
/// is DSM's generic "unknown error".
pub const SYNC_REFUSED: i64 = 100;

/// The plans' clock.
fn plan_now(s: &DsmState) -> i64 {
    now() + s.plan_clock_offset
}

/// Ends the running syncs whose time is up.
fn settle(s: &mut DsmState) {
    let t = plan_now(s);
    for plan in &mut s.plans {
        let ended = plan
            .syncing
            .as_ref()
            .is_some_and(|r| t >= r.begin_time + plan.sync_seconds);
        if !ended {
            continue;
        }
        let Some(run) = plan.syncing.take() else {
            continue;
        };
        let finish = run.begin_time + plan.sync_seconds;
        let success = run.fail_code.is_none();
        plan.records.push(SimSyncRecord {
            begin_time: run.begin_time,
            finish_time: finish,
            size_bytes: if success { run.size_bytes } else { 0 },
            description: run.description,
            success,
        });
        if !success {
            plan.fail_sync_count += 1;
        }
        plan.last_err_code = run.fail_code.unwrap_or(0);
        plan.last_op_time = finish;
        while plan.next_trigger_time <= finish {
            plan.next_trigger_time += SYNC_INTERVAL;
        }
    }
}

/// Percent done of the running sync at `t`.
fn progress(p: &SimPlan, run: &SimSyncing, t: i64) -> i64 {
    let total = p.sync_seconds.max(1);
    ((t - run.begin_time).clamp(0, total) * 100 / total).min(99)
}

/// Dispatches one plan method.
pub fn handle(ctx: &Ctx<'_>) -> HandlerResult {
    let args = Args::new(ctx.req, MISSING, INVALID);
    let mut state = lock(&ctx.shared.state);
    settle(&mut state);
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

fn plan_json(p: &SimPlan, wanted: &crate::sim::dsm::request::Additional, t: i64) -> Value {
    let mut additional = serde_json::Map::new();
    for (k, v) in &p.other_additional {
        if wanted.wants(k) {
            additional.insert(k.clone(), v.clone());
        }
    }
    let percentage = p.syncing.as_ref().map_or(-1, |r| progress(p, r, t));
    if wanted.wants("op_info") {
        additional.insert(
            "op_info".into(),
            json!({"op_progress": {"percentage": percentage}, "op_status": if p.syncing.is_some() { 2 } else { 1 }}),
        );
    }
    if wanted.wants("can_do")
        && let Some(Value::Object(can_do)) = additional.get_mut("can_do")
    {
        can_do.insert(
            "can_sync".into(),
            Value::Bool(p.syncing.is_none() && !p.refuse_sync),
        );
    }
    let syncing_record = p.syncing.as_ref().map(|r| {
        let done = r.size_bytes * percentage.max(0) as u64 / 100;
        json!({
            "begin_time": r.begin_time,
            "current_speed": 1024,
            "data_size_byte": done,
            "sync_size_byte": done,
            "total_size_byte": r.size_bytes,
            "elapsed_time": t - r.begin_time,
            "readable_begin_time": readable(r.begin_time),
            "is_done": false,
            "is_stopped": false,
            "is_success": false,
            "snapshot_version": version_name(r.begin_time),
            "update_time": t,
        })
    });
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
                "syncing_record": syncing_record,
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
            json!({"err_code": p.last_err_code, "is_success": p.last_err_code == 0, "op_status": 16, "update_time": p.last_op_time}),
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
        "op_status": if p.syncing.is_some() { "syncing" } else { "none" },
        "target_id": p.target_id,
        "target_type": p.target_type,
        "is_to_local": false,
        "additional": additional,
    })
}

fn list(s: &DsmState, args: &Args<'_>) -> HandlerResult {
    let wanted = args.additional()?;
    let t = plan_now(s);
    let plans: Vec<Value> = s.plans.iter().map(|p| plan_json(p, &wanted, t)).collect();
    Ok(Reply::data(json!({"total": plans.len(), "plans": plans})))
}

fn sync(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let plan_id = args.non_empty("plan_id")?;
    let _nowait = args.opt_bool("nowait")?;
    let _auto_remove = args.opt_bool("auto_remove")?;
    let locked = args.opt_bool("is_snapshot_locked")?;
    let encrypted = args.opt_bool("is_send_encrypted")?;
    let description = args
        .opt_string("sync_description")?
        .unwrap_or_else(|| "Snapshot taken by [Synology API]".into());
    let t = plan_now(s);
    let plan = s
        .plans
        .iter_mut()
        .find(|p| p.plan_id == plan_id)
        .ok_or(INVALID)?;
    // A sync must repeat the plan's encryption setting when it names one.
    if encrypted.is_some_and(|e| e != plan.is_send_encrypted) {
        return Err(INVALID);
    }
    if plan.syncing.is_some() || plan.refuse_sync {
        return Err(SYNC_REFUSED);
    }
    let begin = t.max(plan.last_op_time + 1);
    let fail_code = plan.fail_next_sync.take();
    plan.syncing = Some(SimSyncing {
        begin_time: begin,
        size_bytes: SYNC_BYTES,
        description,
        locked: locked.unwrap_or(true),
        fail_code,
    });
    plan.last_op_time = begin;
    Ok(Reply::empty())
}
