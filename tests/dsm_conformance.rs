//! Conformance with a real DSM client: the published Python `synology-api`
//! (0.9.4) drives the simulator over HTTPS through every operation it
//! implements (tests/conformance/synology_api_conformance.py); the Rust
//! client then checks the state it left.
//!
//! Needs `ARRAY_OPERATOR_PYTHON` (an interpreter with synology-api
//! installed). Without it the test prints a note and passes, unless
//! `ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1` (CI), where it fails.

mod dsm_support;

use std::path::PathBuf;

use serde_json::Value;

fn required() -> bool {
    std::env::var("ARRAY_OPERATOR_REQUIRE_CONFORMANCE").is_ok_and(|v| v == "1")
}

/// The interpreter to use, or `None` (with a note) when conformance cannot
/// run here.
async fn python() -> Option<String> {
    let Ok(python) = std::env::var("ARRAY_OPERATOR_PYTHON") else {
        assert!(
            !required(),
            "ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1 but ARRAY_OPERATOR_PYTHON is not set"
        );
        eprintln!(
            "note: ARRAY_OPERATOR_PYTHON not set; skipping the synology-api conformance test"
        );
        return None;
    };
    let check = tokio::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, synology_api; print(m.version('synology-api'))",
        ])
        .output()
        .await;
    match check {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            eprintln!("synology-api {version} via {python}");
            Some(python)
        }
        other => {
            assert!(
                !required(),
                "ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1 but {python} cannot import synology_api: {other:?}"
            );
            eprintln!("note: {python} has no synology_api; skipping the conformance test");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synology_api_drives_the_simulator_and_the_rust_client_sees_the_result() {
    let Some(python) = python().await else {
        return;
    };
    let sim = dsm_support::sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().expect("tls")).expect("write CA");
    let out_file = dir.path().join("result.json");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance/synology_api_conformance.py");
    let port = sim.addr().expect("running").port().to_string();

    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", &port])
        .arg("--ca")
        .arg(&ca)
        .args([
            "--user",
            array_operator::sim::dsm::DEFAULT_USERNAME,
            "--password",
            array_operator::sim::dsm::DEFAULT_PASSWORD,
        ])
        .arg("--out")
        .arg(&out_file)
        .output()
        .await
        .expect("run python");
    assert!(
        run.status.success(),
        "synology-api script failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value =
        serde_json::from_slice(&std::fs::read(&out_file).expect("result")).expect("json");
    let s = |k: &str| result[k].as_str().expect(k).to_string();
    let (lun1, lun2, lun_tmp, clone) = (s("lun1"), s("lun2"), s("lun_tmp"), s("clone_uuid"));
    let tid = result["target_id"].as_i64().expect("target_id");
    let tid_tmp = result["target_tmp"].as_i64().expect("target_tmp");

    // The library went through HTTPS with certificate verification, the
    // plain login (v6, format=cookie + SynoToken), and sent `_sid`.
    let calls = sim.calls().calls();
    let login = calls
        .iter()
        .find(|c| c.operation == "SYNO.API.Auth.login")
        .expect("login");
    assert_eq!(login.params.get("version").map(String::as_str), Some("6"));
    assert_eq!(
        login.params.get("format").map(String::as_str),
        Some("cookie")
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.operation.starts_with("SYNO.Core.ISCSI."))
            .all(|c| c.params.contains_key("_sid"))
    );

    let client = dsm_support::client(&sim);
    let luns = client.luns().list().await.expect("luns");
    let mut names: Vec<&str> = luns.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["conf-lun-1", "conf-lun-1-clone", "conf-lun-2"]);
    assert!(
        luns.iter().all(|l| l.uuid != lun_tmp),
        "deleted LUN is gone"
    );

    let l1 = client.luns().get(&lun1).await.expect("lun1");
    assert_eq!(l1.size, 4 << 30, "LUN.set grew it");
    assert_eq!(l1.type_str.as_deref(), Some("THIN"));
    assert_eq!(l1.flags().emulate_fua_write, Some(false));
    assert_eq!(l1.flags().can_snapshot, Some(true));
    assert_eq!(l1.is_mapped, Some(true));
    assert_eq!(
        client.luns().get(&lun2).await.expect("lun2").is_mapped,
        Some(true)
    );
    assert_eq!(
        client.luns().get(&clone).await.expect("clone").is_mapped,
        Some(false)
    );

    // Mappings made from both sides show on both sides.
    let t = client.targets().get(tid).await.expect("target");
    assert_eq!(t.name, "conf-tgt-1");
    assert_eq!(t.max_sessions, Some(4));
    assert!(t.has_header_checksum);
    assert!(t.is_enabled);
    assert_eq!(t.auth_type, 1);
    let mapped: Vec<&str> = t.mapped_luns.iter().map(|m| m.lun_uuid.as_str()).collect();
    assert_eq!(mapped, vec![lun1.as_str(), lun2.as_str()]);
    let targets = client.targets().list().await.expect("targets");
    assert!(targets.iter().all(|t| t.target_id != tid_tmp));

    let snaps = client.snapshots().list(&lun1).await.expect("snapshots");
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].uuid, s("snapshot_kept"));
    assert!(snaps[0].is_user_locked);

    // A sync runs asynchronously on DSM (and in the simulator): move the
    // plans' clock past its end before reading its record.
    sim.state().advance_plan_clock(3600);
    let plans = client.replication().list().await.expect("plans");
    assert_eq!(plans[0].plan_id, s("plan_id"));
    assert_eq!(
        plans[0]
            .additional
            .sync_report
            .as_ref()
            .map(|r| r.recent_records.len()),
        Some(2),
        "sync_replication added a record"
    );

    let guests = client.vmm().list().await.expect("guests");
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].guest_id, s("guest_id"));
    assert_eq!(guests[0].guest_name, "conf-vm-b");
    assert_eq!(guests[0].status, "running");
    assert_eq!(guests[0].vram_size, Some(2048));
    assert_eq!(guests[0].autorun, Some(2));
}
