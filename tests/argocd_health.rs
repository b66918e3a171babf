//! The Argo CD health check the chart ships
//! (`charts/array-operator/argocd/health.lua`, and the same script for
//! every kind in `argocd-cm-patch.yaml`) run by a real Lua 5.4 interpreter
//! on sample objects of all six kinds, with the conditions the operator's
//! own code writes (`engine::conditions::set_all`): the status and message
//! Argo CD would show.
//!
//! Needs `lua5.4` on PATH (or `ARRAY_OPERATOR_LUA`); `bash
//! scripts/install-tools.sh` installs it. Without it the tests print a note
//! and pass, unless `ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1` (CI), where they
//! fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use array_operator::engine::Progress;
use array_operator::engine::conditions::{ConditionState, set_all};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};

const KINDS: [&str; 6] = [
    "StorageArray",
    "Lun",
    "IscsiTarget",
    "SnapshotSchedule",
    "ReplicationPlan",
    "VirtualMachine",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lua() -> Option<PathBuf> {
    let candidate = std::env::var_os("ARRAY_OPERATOR_LUA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("lua5.4"));
    let works = Command::new(&candidate)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var("ARRAY_OPERATOR_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
        "no Lua 5.4 interpreter ({}): run scripts/install-tools.sh",
        candidate.display()
    );
    eprintln!("note: no lua5.4 (run scripts/install-tools.sh): Argo CD health checks not run");
    None
}

fn script() -> String {
    std::fs::read_to_string(root().join("charts/array-operator/argocd/health.lua"))
        .expect("health.lua")
}

/// A JSON value as a Lua constructor (null fields left out, as Argo CD's
/// conversion of the object leaves them nil).
fn to_lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(to_lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), to_lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            other => out.push_str(&format!("\\{other:03}")),
        }
    }
    out.push('"');
    out
}

/// Runs the health script on `object` as Argo CD does (global `obj`, the
/// script's returned table) and gives (status, message).
fn health(lua: &Path, object: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal check = function()\n{}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        to_lua(object),
        script()
    );
    let mut child = Command::new(lua)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lua");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(program.as_bytes())
        .expect("write the program");
    let out = child.wait_with_output().expect("lua output");
    assert!(
        out.status.success(),
        "lua failed on {object}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (status, message) = text.split_once('\n').expect("status line");
    (status.to_string(), message.to_string())
}

fn now() -> Time {
    Time("2026-11-30T10:00:00Z".parse().expect("a timestamp"))
}

/// The conditions the operator writes for this outcome, for `generation`.
fn conditions(
    ready: Option<ConditionState>,
    synced: ConditionState,
    progress: Progress,
    generation: i64,
) -> Vec<Condition> {
    let mut out = Vec::new();
    set_all(
        &mut out,
        ready.as_ref(),
        &synced,
        progress,
        Some(generation),
        &now(),
    );
    out
}

fn object(kind: &str, generation: i64, conditions: Option<Vec<Condition>>) -> Value {
    let mut v = json!({
        "apiVersion": "array-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "db", "namespace": "apps", "generation": generation},
        "spec": {"arrayRef": {"name": "dsm1"}},
    });
    if let Some(conditions) = conditions {
        v["status"] = json!({
            "observedGeneration": conditions[0].observed_generation,
            "conditions": conditions,
        });
    }
    v
}

#[test]
fn the_patch_holds_the_script_for_every_kind() {
    let text =
        std::fs::read_to_string(root().join("charts/array-operator/argocd/argocd-cm-patch.yaml"))
            .expect("argocd-cm-patch.yaml");
    let cm: Value = serde_yaml::from_str(&text).expect("YAML");
    let data = cm["data"].as_object().expect("data");
    assert_eq!(data.len(), KINDS.len());
    for kind in KINDS {
        let key = format!("resource.customizations.health.array-operator.io_{kind}");
        assert_eq!(
            data.get(&key).and_then(Value::as_str),
            Some(script().as_str()),
            "{key} differs from health.lua"
        );
    }
}

#[test]
fn argo_cd_sees_healthy_progressing_degraded_and_suspended_as_the_operator_means() {
    let Some(lua) = lua() else { return };
    for kind in KINDS {
        let check = |object: Value, want: &str, says: &str| {
            let (status, message) = health(&lua, &object);
            assert_eq!(status, want, "{kind}: {message} ({object})");
            assert!(
                message.contains(says),
                "{kind}: {status} says {message:?}, not {says:?}"
            );
        };
        let available = || {
            conditions(
                Some(ConditionState::yes("Available", "the array holds the spec")),
                ConditionState::yes("ReconcileSuccess", "in sync"),
                Progress::Converged,
                2,
            )
        };
        // Ready for the current generation.
        check(
            object(kind, 2, Some(available())),
            "Healthy",
            "Available: the array holds the spec",
        );
        // No status yet: the operator has not seen it.
        check(object(kind, 1, None), "Progressing", "first status");
        // Ready, but for generation 2 while the spec is at 3.
        check(
            object(kind, 3, Some(available())),
            "Progressing",
            "not reconciled generation 3",
        );
        // Work under way (a create, a transition).
        check(
            object(
                kind,
                2,
                Some(conditions(
                    Some(ConditionState::no("Creating", "creating the LUN")),
                    ConditionState::yes("ReconcileSuccess", "in sync"),
                    Progress::Waiting,
                    2,
                )),
            ),
            "Progressing",
            "Creating: creating the LUN",
        );
        // A person must act.
        check(
            object(
                kind,
                2,
                Some(conditions(
                    Some(ConditionState::no("Unavailable", "not created")),
                    ConditionState::no("InvalidSpec", "spec.size must be a quantity"),
                    Progress::Stalled,
                    2,
                )),
            ),
            "Degraded",
            "InvalidSpec: spec.size must be a quantity",
        );
        // Retrying after an array error: shown, not hidden as progress.
        check(
            object(
                kind,
                2,
                Some(conditions(
                    Some(ConditionState::no(
                        "Unavailable",
                        "the array cannot be reached",
                    )),
                    ConditionState::no("ArrayUnreachable", "connect: timed out"),
                    Progress::Failed,
                    2,
                )),
            ),
            "Degraded",
            "the array cannot be reached",
        );
        // Drift the operator only observes (managementPolicy: Observe).
        check(
            object(
                kind,
                2,
                Some(conditions(
                    Some(ConditionState::no("Drifted", "size is 10Gi on the array")),
                    ConditionState::yes("ReconcileSuccess", "observed"),
                    Progress::Converged,
                    2,
                )),
            ),
            "Degraded",
            "Drifted: size is 10Gi on the array",
        );
        // Paused by annotation: no array call, whatever the conditions.
        let mut paused = object(kind, 3, Some(available()));
        paused["metadata"]["annotations"] = json!({"array-operator.io/paused": "true"});
        check(paused, "Suspended", "paused");
        // Being deleted: the finalizer works.
        let mut deleting = object(kind, 2, Some(available()));
        deleting["metadata"]["deletionTimestamp"] = json!("2026-11-30T10:05:00Z");
        check(deleting, "Progressing", "deleting");
    }
    // The kinds with spec.suspend.
    for kind in ["SnapshotSchedule", "ReplicationPlan"] {
        let mut suspended = object(kind, 1, None);
        suspended["spec"]["suspend"] = json!(true);
        let (status, message) = health(&lua, &suspended);
        assert_eq!(
            (status.as_str(), message.as_str()),
            ("Suspended", "suspended (spec.suspend)")
        );
    }
}
