//! The documented starting state (see the module docs of [`crate::sim::dsm`]).

use serde::Deserialize;

use super::state::{
    DsmState, Limits, SimHost, SimImage, SimNetwork, SimPlan, SimStorage, SimSyncRecord, SimSystem,
    Volume,
};

/// The replication plan fixture, in the shape the Snapshot Replication docs
/// show.
const DR_PLAN_FIXTURE: &str = include_str!("fixtures/dr_plan.json");

/// Capacity of the seeded `/volume1`: 1 TiB.
pub const VOLUME1_BYTES: u64 = 1 << 40;
/// Id of the seeded VMM host.
pub const HOST_ID: &str = "c7d8e9f0-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
/// Id of the seeded VMM storage (named `default`).
pub const STORAGE_ID: &str = "0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e";
/// Id of the seeded VMM network (named `default`).
pub const NETWORK_ID: &str = "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f7a";
/// Id of the seeded disk image (named `ubuntu-22.04-disk`).
pub const IMAGE_ID: &str = "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b";

#[derive(Deserialize)]
struct PlanFixture {
    plan_id: String,
    role: String,
    target_id: String,
    target_type: String,
    is_send_encrypted: bool,
    next_trigger_time: i64,
    records: Vec<RecordFixture>,
    additional: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RecordFixture {
    begin_time: i64,
    finish_time: i64,
    size_bytes: u64,
    description: String,
    success: bool,
}

fn seeded_plan() -> Vec<SimPlan> {
    // The fixture is compiled in and covered by a test, so a parse failure
    // can only be a build of broken sources; serve no plan rather than panic.
    let Ok(f) = serde_json::from_str::<PlanFixture>(DR_PLAN_FIXTURE) else {
        return Vec::new();
    };
    let last = f.records.last().map_or(0, |r| r.finish_time);
    vec![SimPlan {
        plan_id: f.plan_id,
        role: f.role,
        target_id: f.target_id,
        target_type: f.target_type,
        is_send_encrypted: f.is_send_encrypted,
        next_trigger_time: f.next_trigger_time,
        records: f
            .records
            .into_iter()
            .map(|r| SimSyncRecord {
                begin_time: r.begin_time,
                finish_time: r.finish_time,
                size_bytes: r.size_bytes,
                description: r.description,
                success: r.success,
            })
            .collect(),
        fail_sync_count: 0,
        last_op_time: last,
        other_additional: f.additional,
        syncing: None,
        sync_seconds: 60,
        fail_next_sync: None,
        last_err_code: 0,
        refuse_sync: false,
    }]
}

/// The seeded model (`SYNO.DSM.Info` `model`).
pub const MODEL: &str = "RS3621xs+";
/// The seeded serial number.
pub const SERIAL: &str = "2150SIM0001";
/// The seeded build number (`SYNO.DSM.Info` `version`).
pub const BUILD: &str = "69057";
/// The seeded version (`SYNO.DSM.Info` `version_string`).
pub const VERSION_STRING: &str = "DSM 7.2.1-69057 Update 5";

/// The seed: `/volume1`, one DR plan, one VMM host, storage, network and
/// disk image; no LUNs, targets or guests.
pub fn seed() -> DsmState {
    DsmState {
        hostname: "nas01".into(),
        system: SimSystem {
            model: MODEL.into(),
            serial: SERIAL.into(),
            build: BUILD.into(),
            version_string: VERSION_STRING.into(),
            ram_mb: 16384,
        },
        volumes: vec![Volume {
            path: "/volume1".into(),
            total_bytes: VOLUME1_BYTES,
        }],
        plans: seeded_plan(),
        storages: vec![SimStorage {
            storage_id: STORAGE_ID.into(),
            storage_name: "default".into(),
            volume_path: "/volume1".into(),
            size: VOLUME1_BYTES,
            used: 0,
        }],
        networks: vec![SimNetwork {
            network_id: NETWORK_ID.into(),
            network_name: "default".into(),
        }],
        hosts: vec![SimHost {
            host_id: HOST_ID.into(),
            host_name: "nas01".into(),
            total_cpu_core: 4,
            total_ram_size: 16384,
        }],
        images: vec![SimImage {
            image_id: IMAGE_ID.into(),
            image_name: "ubuntu-22.04-disk".into(),
            kind: "disk".into(),
            size_mb: 10240,
        }],
        limits: Limits::default(),
        task_step: 50,
        next_lun_id: 1,
        next_target_id: 1,
        ..DsmState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_parses_into_one_plan() {
        let s = seed();
        assert_eq!(s.plans.len(), 1);
        assert_eq!(s.plans[0].records.len(), 1);
        assert!(s.plans[0].other_additional.contains_key("can_do"));
    }
}
