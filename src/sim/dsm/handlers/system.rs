//! `SYNO.DSM.Info` `getinfo` and `SYNO.Core.System` `info`: what the DSM
//! says about itself. The fields are those the published clients read
//! (synology-api's `dsm_info` / `get_system_info`, python-synology's
//! `SynoDSMInformation`): model, serial, RAM, temperature, uptime, and the
//! version as a build number (`version`) and as DSM shows it
//! (`version_string`, `firmware_ver`).

use serde_json::json;

use super::{Ctx, HandlerResult, Reply, now};
use crate::sim::dsm::state::lock;

/// `SYNO.DSM.Info.getinfo`.
pub fn dsm_info(ctx: &Ctx<'_>) -> HandlerResult {
    let state = lock(&ctx.shared.state);
    let s = &state.system;
    Ok(Reply::data(json!({
        "codepage": "enu",
        "model": s.model,
        "ram": s.ram_mb,
        "serial": s.serial,
        "temperature": 40,
        "temperature_warn": false,
        "time": chrono::Utc::now().format("%a %b %e %H:%M:%S %Y").to_string(),
        "uptime": now() % 1_000_000,
        "version": s.build,
        "version_string": s.version_string,
    })))
}

/// `SYNO.Core.System.info` (type `system`, the default).
pub fn core_system_info(ctx: &Ctx<'_>) -> HandlerResult {
    let state = lock(&ctx.shared.state);
    let s = &state.system;
    Ok(Reply::data(json!({
        "model": s.model,
        "serial": s.serial,
        "firmware_ver": s.version_string,
        "firmware_date": "2024/03/19",
        "ram_size": s.ram_mb,
        "cpu_cores": "4",
        "sys_temp": 40,
        "sys_tempwarn": false,
        "time": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        "up_time": "1:00:00",
    })))
}
