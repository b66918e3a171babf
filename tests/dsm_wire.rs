//! The requests the Rust client sends match what real clients put on the
//! wire: for each capture in `shared/dsm-wire/` (synology-api 0.9.4), the
//! client performs the same operation against the simulator, and the call
//! the simulator recorded must have the same API, method and version, the
//! same parameter names, and the same encoding of every value (JSON-quoted
//! string, raw string, bare number, lowercase boolean, JSON array/object of
//! the same shape).
//!
//! One documented addition: `Task.Info get` also sends `task_id`, the name
//! the VMM guide gives, next to synology-api's `taskid` (the dsm-wire README
//! notes that neither name was confirmed on a DSM).
//!
//! Not compared: the login/logout/UIConfig/Encryption captures (this client
//! logs in with `format=sid` as the issue asks, not synology-api's browser
//! login), `Guest.get.additional_list` (a repeated-key quirk of the library
//! this client does not reproduce) and `Guest.set.with_vcpu_num_NOT_SENT`
//! (the library never sent it). The HTTP method is not compared: this client
//! POSTs every call so that sids and CHAP secrets stay out of URLs; the
//! simulator accepts both, as a DSM does.

mod dsm_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use array_operator::array::synology::lun::LunType;
use array_operator::array::synology::vmm::{Autorun, NewVdisk, NewVnic};
use array_operator::array::synology::{
    Chap, CreateGuest, CreateLun, CreateTarget, DevAttribs, GuestCreate, SetGuest, SetLun,
    SetTarget, SyncOptions, TakeSnapshot, TargetAuth,
};
use array_operator::sim::dsm::DsmSim;
use serde_json::Value;

const NOT_COMPARED: [&str; 10] = [
    "SYNO.API.Auth.UIConfig.get.json",
    "SYNO.API.Auth.UIConfig.get.secure.json",
    "SYNO.API.Auth.login.json",
    "SYNO.API.Auth.login.secure.json",
    "SYNO.API.Auth.logout.json",
    "SYNO.API.Auth.logout.secure.json",
    "SYNO.API.Encryption.getinfo.json",
    "SYNO.API.Info.query.secure.json",
    "SYNO.Virtualization.API.Guest.get.additional_list.json",
    "SYNO.Virtualization.API.Guest.set.with_vcpu_num_NOT_SENT.json",
];

/// Parameters this client sends on top of a capture, each with its reason
/// in the module docs.
const DOCUMENTED_EXTRA: [(&str, &str); 1] = [("SYNO.Virtualization.API.Task.Info.get", "task_id")];

fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/dsm-wire")
}

/// The encoding class of one parameter value, with the shape of JSON
/// values (so `[3]` differs from `["3"]`, and `[{"a": 1}]` from `[{"b": 1}]`).
fn shape(raw: &str) -> String {
    fn of(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::Bool(_) => "bool".into(),
            Value::Number(_) => "number".into(),
            Value::String(_) => "quoted-string".into(),
            Value::Array(items) => {
                let kinds: BTreeSet<String> = items.iter().map(of).collect();
                format!("[{}]", kinds.into_iter().collect::<Vec<_>>().join("|"))
            }
            Value::Object(map) => {
                let fields: Vec<String> =
                    map.iter().map(|(k, v)| format!("{k}:{}", of(v))).collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => of(&v),
        Err(_) => "raw-string".into(),
    }
}

/// Compares the last recorded call of the capture's operation with it.
fn compare(sim: &DsmSim, file: &str) -> Result<(), String> {
    let text =
        std::fs::read_to_string(wire_dir().join(file)).map_err(|e| format!("{file}: {e}"))?;
    let capture: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let api = capture["api"].as_str().ok_or(format!("{file}: no api"))?;
    let method = capture["method"]
        .as_str()
        .ok_or(format!("{file}: no method"))?;
    let version = capture["version"]
        .as_str()
        .ok_or(format!("{file}: no version"))?;
    let params = capture["params"]
        .as_object()
        .ok_or(format!("{file}: no params"))?;
    let op = format!("{api}.{method}");
    let call = sim
        .calls()
        .calls()
        .into_iter()
        .rev()
        .find(|c| c.operation == op)
        .ok_or(format!("{file}: the client never sent {op}"))?;
    let skip = ["api", "method", "version", "_sid"];
    let sent_version = call.params.get("version").cloned().unwrap_or_default();
    if sent_version != version {
        return Err(format!("{file}: version {sent_version} != {version}"));
    }
    let want: BTreeMap<&str, String> = params
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), shape(v.as_str().unwrap_or_default())))
        .collect();
    let got: BTreeMap<&str, String> = call
        .params
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .filter(|(k, _)| !DOCUMENTED_EXTRA.contains(&(op.as_str(), k.as_str())))
        .map(|(k, v)| (k.as_str(), shape(v)))
        .collect();
    if want != got {
        return Err(format!(
            "{file}: parameters differ\n  capture: {want:?}\n  client:  {got:?}"
        ));
    }
    Ok(())
}

#[tokio::test]
async fn every_request_matches_the_dsm_wire_capture() {
    assert!(
        wire_dir().join("index.json").exists(),
        "the dsm-wire captures must be at {} (shared/ beside the repository)",
        wire_dir().display()
    );
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let mut checked: Vec<&str> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut check = |file: &'static str| {
        if let Err(e) = compare(&sim, file) {
            failures.push(e);
        }
        checked.push(file);
    };

    // iSCSI LUN.
    let lun = client
        .luns()
        .create(&CreateLun {
            name: "pvc-1".into(),
            lun_type: LunType::Thin,
            location: "/volume1".into(),
            size: 10 << 30,
            description: Some("pvc-1 (ns default)".into()),
            dev_attribs: DevAttribs {
                emulate_tpws: Some(true),
                emulate_caw: Some(true),
                emulate_3pc: Some(true),
                emulate_tpu: Some(true),
                emulate_fua_write: Some(false),
                emulate_sync_cache: Some(false),
                can_snapshot: Some(true),
            },
        })
        .await
        .expect("create");
    check("SYNO.API.Info.query.json");
    check("SYNO.Core.ISCSI.LUN.create.json");
    client.luns().list().await.expect("list");
    check("SYNO.Core.ISCSI.LUN.list.json");
    check("SYNO.Core.ISCSI.LUN.list.error_119.json");
    client.luns().get(&lun.uuid).await.expect("get");
    check("SYNO.Core.ISCSI.LUN.get.json");
    client
        .luns()
        .set(
            &lun.uuid,
            &SetLun {
                new_size: Some(20 << 30),
                ..Default::default()
            },
        )
        .await
        .expect("set");
    check("SYNO.Core.ISCSI.LUN.set.json");
    let clone = client
        .luns()
        .clone_lun(&lun.uuid, "pvc-2", "/volume1")
        .await
        .expect("clone");
    check("SYNO.Core.ISCSI.LUN.clone.json");

    // Snapshots.
    let snap = client
        .snapshots()
        .take(
            &lun.uuid,
            &TakeSnapshot {
                description: "pvc-1 snapshot".into(),
                locked: false,
                app_consistent: false,
            },
        )
        .await
        .expect("take");
    check("SYNO.Core.ISCSI.LUN.take_snapshot.json");
    client.snapshots().list(&lun.uuid).await.expect("list");
    check("SYNO.Core.ISCSI.LUN.list_snapshot.json");
    client
        .snapshots()
        .delete(&[&snap.snapshot_uuid])
        .await
        .expect("delete");
    check("SYNO.Core.ISCSI.LUN.delete_snapshot.json");

    // Targets.
    let chap = Chap {
        user: "chapuser".into(),
        password: "chapsecret12".into(),
    };
    let tid = client
        .targets()
        .create(&CreateTarget {
            name: "pvc-1".into(),
            iqn: "iqn.2000-01.com.synology:nas01.pvc-1".into(),
            auth: TargetAuth::Chap(chap.clone()),
            max_sessions: Some(1),
        })
        .await
        .expect("create");
    check("SYNO.Core.ISCSI.Target.create.json");
    let mutual = client
        .targets()
        .create(&CreateTarget {
            name: "pvc-m".into(),
            iqn: "iqn.2000-01.com.synology:nas01.pvc-m".into(),
            auth: TargetAuth::Mutual {
                initiator: chap.clone(),
                target: Chap {
                    user: "tgtuser".into(),
                    password: "tgtsecret123".into(),
                },
            },
            max_sessions: None,
        })
        .await
        .expect("create mutual");
    check("SYNO.Core.ISCSI.Target.create.mutual_chap.json");
    client.targets().list().await.expect("list");
    check("SYNO.Core.ISCSI.Target.list.json");
    client.targets().get(tid).await.expect("get");
    check("SYNO.Core.ISCSI.Target.get.json");
    client
        .targets()
        .set(
            tid,
            &SetTarget {
                max_sessions: Some(0),
                auth: Some(TargetAuth::Chap(chap)),
                has_header_checksum: Some(false),
                has_data_checksum: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("set");
    check("SYNO.Core.ISCSI.Target.set.json");
    client.targets().disable(tid).await.expect("disable");
    check("SYNO.Core.ISCSI.Target.disable.json");
    client.targets().enable(tid).await.expect("enable");
    check("SYNO.Core.ISCSI.Target.enable.json");
    client
        .luns()
        .map_target(&lun.uuid, &[tid])
        .await
        .expect("map_target");
    check("SYNO.Core.ISCSI.LUN.map_target.json");
    client
        .luns()
        .unmap_target(&lun.uuid, &[tid])
        .await
        .expect("unmap_target");
    check("SYNO.Core.ISCSI.LUN.unmap_target.json");
    client
        .targets()
        .map_lun(tid, &[&lun.uuid])
        .await
        .expect("map_lun");
    check("SYNO.Core.ISCSI.Target.map_lun.json");
    client
        .targets()
        .unmap_lun(tid, &[&lun.uuid])
        .await
        .expect("unmap_lun");
    check("SYNO.Core.ISCSI.Target.unmap_lun.json");
    client.targets().delete(mutual).await.expect("delete");
    client.targets().delete(tid).await.expect("delete");
    check("SYNO.Core.ISCSI.Target.delete.json");
    client.luns().delete(&clone.uuid).await.expect("delete");
    client.luns().delete(&lun.uuid).await.expect("delete");
    check("SYNO.Core.ISCSI.LUN.delete.json");

    // Replication.
    let plans = client.replication().list().await.expect("plans");
    check("SYNO.DR.Plan.list.json");
    client
        .replication()
        .sync(
            &plans[0].plan_id,
            &SyncOptions {
                description: "Snapshot taken by [Synology API]".into(),
                lock_snapshot: true,
                send_encrypted: Some(false),
            },
        )
        .await
        .expect("sync");
    check("SYNO.DR.Plan.sync.json");

    // VMM.
    let vmm = client.vmm();
    vmm.storages().await.expect("storages");
    check("SYNO.Virtualization.API.Storage.list.json");
    vmm.networks().await.expect("networks");
    check("SYNO.Virtualization.API.Network.list.json");
    vmm.hosts().await.expect("hosts");
    check("SYNO.Virtualization.API.Host.list.json");
    vmm.images().await.expect("images");
    check("SYNO.Virtualization.API.Guest.Image.list.json");
    let started = vmm
        .create(&CreateGuest {
            guest_name: "vm-pvc-1".into(),
            storage_name: "default".into(),
            vcpu_num: 2,
            vram_size: 4096,
            autorun: Autorun::On,
            description: "operator test vm".into(),
            vnics: vec![NewVnic {
                network_name: "default".into(),
                mac: None,
            }],
            vdisks: vec![NewVdisk {
                create_type: 0,
                vdisk_size: Some(10240),
                image_name: None,
                controller: Some(1),
                unmap: Some(true),
            }],
            iso_images: vec!["unmounted".into(), "unmounted".into()],
            auto_clean_task: true,
        })
        .await
        .expect("create");
    check("SYNO.Virtualization.API.Guest.create.json");
    let GuestCreate::Started { task_id } = started;
    let guest_id = loop {
        let info = vmm.task(&task_id).await.expect("task");
        if let (true, Some(id)) = (info.finish, info.task_info.guest_id) {
            break id;
        }
    };
    check("SYNO.Virtualization.API.Task.Info.get.json");
    vmm.list().await.expect("list");
    check("SYNO.Virtualization.API.Guest.list.json");
    vmm.get(&guest_id).await.expect("get");
    check("SYNO.Virtualization.API.Guest.get.json");
    vmm.set(
        &guest_id,
        &SetGuest {
            new_guest_name: Some("vm-pvc-1b".into()),
            autorun: Some(Autorun::On),
            description: Some("d".into()),
            vcpu_num: None,
            vram_size: Some(8192),
        },
    )
    .await
    .expect("set");
    check("SYNO.Virtualization.API.Guest.set.json");
    vmm.power_on(&guest_id).await.expect("poweron");
    check("SYNO.Virtualization.API.Guest.Action.poweron.json");
    vmm.shutdown(&guest_id).await.expect("shutdown");
    check("SYNO.Virtualization.API.Guest.Action.shutdown.json");
    vmm.power_on(&guest_id).await.expect("poweron");
    vmm.power_off(&guest_id).await.expect("poweroff");
    check("SYNO.Virtualization.API.Guest.Action.poweroff.json");
    vmm.delete(&guest_id).await.expect("delete");
    check("SYNO.Virtualization.API.Guest.delete.json");

    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every capture is either compared or listed as not compared, so a new
    // capture cannot be skipped silently.
    let mut captures: Vec<String> = std::fs::read_dir(wire_dir())
        .expect("dsm-wire")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("SYNO.") && n.ends_with(".json"))
        .collect();
    captures.sort();
    let unaccounted: Vec<&String> = captures
        .iter()
        .filter(|c| !checked.contains(&c.as_str()) && !NOT_COMPARED.contains(&c.as_str()))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "captures not compared: {unaccounted:?}"
    );
    assert_eq!(checked.len() + NOT_COMPARED.len(), captures.len());
}

#[test]
fn shapes_tell_encodings_apart() {
    assert_eq!(shape("\"3\""), "quoted-string");
    assert_eq!(shape("3"), "number");
    assert_eq!(shape("pvc-1"), "raw-string");
    assert_eq!(shape("true"), "bool");
    assert_eq!(shape("[3]"), "[number]");
    assert_eq!(shape("[\"3\"]"), "[quoted-string]");
    assert_ne!(shape("[{\"a\": 1}]"), shape("[{\"b\": 1}]"));
}

#[tokio::test]
async fn the_comparison_catches_a_raw_id_where_dsm_wants_a_quoted_one() {
    let sim = dsm_support::sim().await;
    let sid = dsm_support::raw_login(&sim).await;
    let created = dsm_support::raw_get(
        &sim,
        &[
            ("api", "SYNO.Core.ISCSI.Target"),
            ("version", "1"),
            ("method", "create"),
            ("name", "t"),
            ("iqn", "iqn.2000-01.com.synology:nas01.t"),
            ("_sid", &sid),
        ],
    )
    .await;
    let id = created["data"]["target_id"]
        .as_i64()
        .expect("id")
        .to_string();
    // The simulator accepts the raw form, as DSM does ...
    let got = dsm_support::raw_get(
        &sim,
        &[
            ("api", "SYNO.Core.ISCSI.Target"),
            ("version", "1"),
            ("method", "get"),
            ("target_id", &id),
            (
                "additional",
                "[\"mapped_lun\", \"acls\", \"connected_sessions\", \"status\"]",
            ),
            ("_sid", &sid),
        ],
    )
    .await;
    assert_eq!(got["success"], true);
    // ... but it is not what real clients send, and the comparison says so.
    let err = compare(&sim, "SYNO.Core.ISCSI.Target.get.json").expect_err("mismatch");
    assert!(err.contains("target_id"), "{err}");
}
