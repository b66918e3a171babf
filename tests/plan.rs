//! `array-operator plan`: golden output over `examples/` on the seeded
//! simulators, an empty plan after the controllers converged the same
//! state, the plan's calls equal to what a controller pass then makes, no
//! mutating call in the simulators' logs, the binary's exit codes,
//! standard input and output formats, and manifests the CRD schema refuses
//! (the whole bad-input table through `plan` is in tests/bad_input.rs).
//!
//! `UPDATE_GOLDEN=1 cargo test --test plan` rewrites the goldens in
//! `tests/golden/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use array_operator::crd::ReplicationPlan;
use array_operator::crd::SnapshotSchedule;
use array_operator::engine::clock::SystemClock;
use array_operator::engine::dry_run::DryRun;
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::{
    ArrayHandle, EngineEvent, EventType, lifecycle, replication_plan, snapshot_schedule,
};
use array_operator::plan::report::{PlanReport, Verdict};
use array_operator::plan::run::{self as planner, ObjectRef};
use array_operator::plan::{Manifests, Source, input, simulate};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> Manifests {
    input::read(&[Source::Path(repo().join("examples"))]).expect("examples read")
}

/// Replaces the array-chosen ids (DSM uuids, NGX 40-hex ids) by `<id1>`,
/// `<id2>`, ... in order of first appearance, so a golden keeps which id
/// is which without the run's random values.
fn normalise(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let hex = |c: char| c.is_ascii_hexdigit();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let mut matched = None;
        if boundary {
            // uuid: 8-4-4-4-12
            let groups = [8, 4, 4, 4, 12];
            let mut j = i;
            let mut ok = true;
            for (g, len) in groups.iter().enumerate() {
                for _ in 0..*len {
                    if j < chars.len() && hex(chars[j]) {
                        j += 1;
                    } else {
                        ok = false;
                    }
                }
                if g < 4 {
                    if ok && j < chars.len() && chars[j] == '-' {
                        j += 1;
                    } else {
                        ok = false;
                    }
                }
                if !ok {
                    break;
                }
            }
            if ok && (j == chars.len() || !chars[j].is_ascii_alphanumeric()) {
                matched = Some(j);
            }
            if matched.is_none() {
                let run = chars[i..].iter().take_while(|c| hex(**c)).count();
                let end = i + run;
                if run == 40 && (end == chars.len() || !chars[end].is_ascii_alphanumeric()) {
                    matched = Some(end);
                }
            }
        }
        match matched {
            Some(end) => {
                let id: String = chars[i..end].iter().collect();
                let n = ids.len() + 1;
                let n = *ids.entry(id).or_insert(n);
                out.push_str(&format!("<id{n}>"));
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

#[test]
fn normalise_replaces_ids_consistently_and_nothing_else() {
    let t = "a 0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e b b42ecdf4c9a0e6677546fb4da04b0ebede0476e5 \
             0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e 100 planned-1 deadbeef";
    assert_eq!(normalise(t), "a <id1> b <id2> <id1> 100 planned-1 deadbeef");
}

fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs from this run (UPDATE_GOLDEN=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_array-operator"))
}

/// Runs the binary, feeding `stdin`; returns (exit code, stdout, stderr).
fn run_binary(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = binary();
    cmd.args(args)
        .current_dir(repo())
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary starts");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("stdin written");
    }
    let out = child.wait_with_output().expect("binary ends");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn golden_text_and_json_over_the_examples_on_seeded_simulators() {
    let (code, text, err) = run_binary(
        &["plan", "-f", "examples/", "--simulate", "--color", "never"],
        None,
    );
    assert_eq!(code, 1, "the seed makes one Lun refuse: {text}\n{err}");
    assert!(!text.contains("\x1b["), "no colour when asked for none");
    golden("plan-examples.txt", &normalise(&text));

    let (code, json, err) = run_binary(
        &["plan", "-f", "examples/", "--simulate", "-o", "json"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON output");
    assert_eq!(v["exitCode"], 1);
    assert_eq!(v["version"], 1);
    golden("plan-examples.json", &normalise(&json));
}

/// Every kind with an engine is planned, and each answers as the seed
/// makes it (computed from the report, not from text).
#[tokio::test]
async fn every_kind_is_planned_and_the_seed_shows_a_resize_a_refusal_and_creates() {
    let report = array_operator::plan::run(
        examples(),
        &array_operator::plan::PlanOptions {
            simulate: true,
            credentials: Vec::new(),
        },
    )
    .await
    .expect("plan");
    let kinds: std::collections::BTreeSet<&str> =
        report.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "IscsiTarget",
            "Lun",
            "ReplicationPlan",
            "SnapshotSchedule",
            "VirtualMachine"
        ]
        .into_iter()
        .collect()
    );
    let lun = report.object("Lun", "default", "db-data").expect("db-data");
    let size = |q: &str| array_operator::crd::shared::size_bytes(q).expect("size");
    assert_eq!(lun.calls.len(), 1, "{lun:?}");
    assert_eq!(lun.calls[0].action, "Resize");
    let change = &lun.changes[0];
    assert_eq!(change.field, "spec.size");
    assert_eq!(change.to, size("100Gi").to_string());
    assert_eq!(change.from, (size("100Gi") / 2).to_string());
    let clone = report
        .object("Lun", "default", "db-data-clone")
        .expect("clone");
    assert_eq!(clone.verdict, Verdict::Refused);
    assert_eq!(clone.reason.as_deref(), Some("AlreadyExists"));
    assert!(clone.calls.is_empty());
    let target = report
        .object("IscsiTarget", "default", "db-target")
        .expect("target");
    let actions: Vec<&str> = target.calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(actions, ["Create", "Map"]);
    // The order the operator makes them: Luns, then targets, then the rest.
    let order: Vec<&str> = report.objects.iter().map(|o| o.kind.as_str()).collect();
    let first_target = order.iter().position(|k| *k == "IscsiTarget").expect("t");
    assert!(
        order[..first_target].iter().all(|k| *k == "Lun"),
        "{order:?}"
    );
    assert_eq!(report.exit_code, 1);
}

/// The objects of `m` whose names are not in `without`.
fn without(mut m: Manifests, lun: &str) -> Manifests {
    m.luns.retain(|l| l.metadata.name.as_deref() != Some(lun));
    m
}

/// One controller pass over every object in the operator's order, as the
/// controllers would run them (statuses written back); returns the Normal
/// Events per object.
async fn controller_pass(
    m: &mut Manifests,
    cluster: &MemoryCluster,
    handles: &BTreeMap<String, ArrayHandle>,
) -> BTreeMap<ObjectRef, Vec<EngineEvent>> {
    let mut events = BTreeMap::new();
    for r in planner::ordered(m) {
        let handle = |array: &str| {
            handles
                .get(&format!("{}/{array}", r.namespace))
                .expect("array handle")
        };
        let got = match r.kind {
            "Lun" => {
                let obj = cluster.lun(&r.namespace, &r.name).expect("lun");
                let out =
                    lifecycle::reconcile(&obj, handle(&obj.spec.array_ref.name), cluster).await;
                let mut stored = cluster.lun(&r.namespace, &r.name).expect("lun");
                stored.status = Some(out.status.clone());
                cluster.put_lun(stored);
                out.events
            }
            "IscsiTarget" => {
                let obj = cluster.target(&r.namespace, &r.name).expect("target");
                let out =
                    lifecycle::reconcile(&obj, handle(&obj.spec.array_ref.name), cluster).await;
                let mut stored = cluster.target(&r.namespace, &r.name).expect("target");
                stored.status = Some(out.status.clone());
                cluster.put_target(stored);
                out.events
            }
            "VirtualMachine" => {
                let obj = cluster.vm(&r.namespace, &r.name).expect("vm");
                let out =
                    lifecycle::reconcile(&obj, handle(&obj.spec.array_ref.name), cluster).await;
                let mut stored = cluster.vm(&r.namespace, &r.name).expect("vm");
                stored.status = Some(out.status.clone());
                cluster.put_vm(stored);
                out.events
            }
            "SnapshotSchedule" => {
                let s: &mut SnapshotSchedule = m
                    .schedules
                    .iter_mut()
                    .find(|s| s.metadata.name.as_deref() == Some(r.name.as_str()))
                    .expect("schedule");
                let out = snapshot_schedule::reconcile(
                    s,
                    handle(&s.spec.array_ref.name.clone()),
                    &cluster.luns(),
                    &SystemClock,
                )
                .await;
                s.status = Some(out.outcome.status);
                out.outcome.events
            }
            _ => {
                let p: &mut ReplicationPlan = m
                    .replication_plans
                    .iter_mut()
                    .find(|p| p.metadata.name.as_deref() == Some(r.name.as_str()))
                    .expect("plan");
                // The controller comes back at once when a pass asks it to
                // (a manual sync is recorded in status, then started).
                let mut all = Vec::new();
                for _ in 0..3 {
                    let out = replication_plan::reconcile(
                        p,
                        handle(&p.spec.array_ref.name.clone()),
                        &SystemClock,
                    )
                    .await;
                    p.status = Some(out.outcome.status);
                    all.extend(out.outcome.events);
                    if out.wake_at.is_none_or(|w| w > chrono::Utc::now()) {
                        break;
                    }
                }
                all
            }
        };
        events.insert(
            r,
            got.into_iter()
                .filter(|e| e.type_ == EventType::Normal)
                .collect(),
        );
    }
    events
}

/// Connects real (not dry-run) handles to the simulators.
async fn handles(sims: &simulate::Simulated) -> BTreeMap<String, ArrayHandle> {
    let mut out = BTreeMap::new();
    for (key, config) in sims.configs() {
        let (config, resync) = config.expect("config");
        let backend = array_operator::array::backend::Backend::connect(config)
            .await
            .expect("connects");
        out.insert(
            key.clone(),
            ArrayHandle {
                key,
                backend,
                cache: Default::default(),
                resync,
                dry_run: None,
            },
        );
    }
    out
}

/// Plans `m` against the running simulators (no new seed).
async fn plan_against(m: &Manifests, sims: &simulate::Simulated) -> PlanReport {
    let dry = DryRun::default();
    let connected = planner::connect(m, sims.configs(), &dry, true).await;
    planner::plan_objects(m, connected, &dry).await
}

/// The input with the cluster's view of the objects (annotations and
/// status, as the controllers left them).
fn from_cluster(mut m: Manifests, cluster: &MemoryCluster) -> Manifests {
    for l in m.luns.iter_mut() {
        *l = cluster
            .lun("default", l.metadata.name.as_deref().unwrap_or_default())
            .expect("lun");
    }
    for t in m.targets.iter_mut() {
        *t = cluster
            .target("default", t.metadata.name.as_deref().unwrap_or_default())
            .expect("target");
    }
    for v in m.vms.iter_mut() {
        *v = cluster
            .vm("default", v.metadata.name.as_deref().unwrap_or_default())
            .expect("vm");
    }
    m
}

/// Drives the controllers' engine over the seeded state until a pass makes
/// no call, then plans: nothing to change, exit 0. `db-data-clone` is left
/// out: the seed gives its name to a foreign LUN, which no pass can
/// resolve (it stays `AlreadyExists` by design).
#[tokio::test]
async fn an_empty_plan_after_the_controllers_converged_the_same_state() {
    let mut m = without(examples(), "db-data-clone");
    let sims = simulate::start(&mut m).await.expect("simulators");
    let handles = handles(&sims).await;
    let cluster = planner::cluster_of(&m);
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes <= 6, "no convergence after 5 passes");
        let events = controller_pass(&mut m, &cluster, &handles).await;
        if events.values().all(Vec::is_empty) {
            break;
        }
    }
    for h in handles.values() {
        h.backend.close().await;
    }
    let m = from_cluster(m, &cluster);
    sims.clear_calls();
    let report = plan_against(&m, &sims).await;
    let busy: Vec<String> = report
        .objects
        .iter()
        .filter(|o| o.verdict != Verdict::InSync)
        .map(|o| format!("{}: {:?} {:?} {:?}", o.key(), o.verdict, o.calls, o.message))
        .collect();
    assert!(busy.is_empty(), "after {passes} passes: {busy:#?}");
    assert_eq!(report.exit_code, 0);
    assert_eq!(
        report.objects.len(),
        m.object_count() - m.storage_arrays.len()
    );
    assert!(
        sims.mutating_calls().is_empty(),
        "{:?}",
        sims.mutating_calls()
    );
    sims.stop().await;
}

/// What a call says without the ids the array or the dry run chose, and
/// without what the lifecycle's create Event adds after the note.
fn comparable(action: &str, note: &str) -> String {
    let note = note.split(" (id ").next().unwrap_or(note);
    format!("{action}: {note}")
}

/// The plan's calls for each object equal the calls one controller pass
/// then makes on the same seeded state (the plan left it untouched: its
/// simulators logged no mutating call). The guest create is the one
/// exception the plan says in a note: what follows it depends on what
/// VMM answers, so the plan's calls are the start of the pass's.
#[tokio::test]
async fn the_plans_calls_are_what_the_controllers_then_make_and_plan_writes_nothing() {
    let mut m = examples();
    let sims = simulate::start(&mut m).await.expect("simulators");
    let report = plan_against(&m, &sims).await;
    let reads = sims.sims.values().map(|s| s.calls().len()).sum::<usize>();
    assert!(reads > 0, "the plan observed the arrays");
    assert_eq!(
        sims.mutating_calls(),
        Vec::<String>::new(),
        "plan is read-only"
    );

    let handles = handles(&sims).await;
    let cluster = planner::cluster_of(&m);
    let events = controller_pass(&mut m, &cluster, &handles).await;
    for h in handles.values() {
        h.backend.close().await;
    }
    assert!(
        !sims.mutating_calls().is_empty(),
        "the controller pass wrote"
    );
    let mut compared = 0;
    for (r, events) in &events {
        let o = report
            .object(r.kind, &r.namespace, &r.name)
            .expect("planned");
        let planned: Vec<String> = o
            .calls
            .iter()
            .map(|c| normalise(&comparable(&c.action, &c.note)))
            .collect();
        let made: Vec<String> = events
            .iter()
            .filter(|e| e.reason != "MissedRun")
            .map(|e| normalise(&comparable(e.action, &e.note)))
            .collect();
        if o.notes.is_empty() {
            assert_eq!(planned, made, "{}", o.key());
        } else {
            assert!(
                made.starts_with(&planned) && !planned.is_empty(),
                "{}: planned {planned:?}, made {made:?}",
                o.key()
            );
        }
        compared += planned.len();
    }
    assert!(compared >= 7, "the comparison covered the plan's calls");
    sims.stop().await;
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).expect("example")
}

#[test]
fn exit_codes_stdin_json_and_markdown_through_the_binary() {
    // 2: changes, from standard input, with a kind that is not ours.
    let stdin = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: storage}}\n---\n{}---\n{}---\n{}",
        read("examples/ngxstorage/storagearray.yaml"),
        read("examples/ngxstorage/lun.yaml"),
        read("examples/ngxstorage/iscsitarget.yaml")
    );
    let (code, json, err) = run_binary(
        &["plan", "-f", "-", "--simulate", "-o", "json"],
        Some(&stdin),
    );
    assert_eq!(code, 2, "{json}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["exitCode"], 2);
    assert_eq!(v["ignored"], serde_json::json!(["Namespace storage"]));
    assert_eq!(v["objects"].as_array().map(Vec::len), Some(2));

    // 2 again, as Markdown for a pull request.
    let (code, md, _) = run_binary(
        &["plan", "-f", "-", "--simulate", "-o", "markdown"],
        Some(&stdin),
    );
    assert_eq!(code, 2);
    assert!(md.starts_with("### array-operator plan\n"), "{md}");
    assert!(
        md.contains("| `Lun default/vmfs-01` | `ngx1` | ~ Resize |"),
        "{md}"
    );

    // 0: an array and a scheduled replication plan with nothing due.
    let plan = read("examples/synology/replicationplan.yaml");
    let scheduled = plan.split("\n---\n").next().expect("first document");
    let stdin = format!(
        "{}---\n{scheduled}\n",
        read("examples/synology/storagearray.yaml")
    );
    let (code, text, err) = run_binary(&["plan", "-f", "-", "--simulate"], Some(&stdin));
    assert_eq!(code, 0, "{text}\n{err}");
    assert!(text.contains("No changes"), "{text}");

    // 1: a refused object (the seed's foreign LUN).
    let (code, _, _) = run_binary(&["plan", "-f", "examples/synology", "--simulate"], None);
    assert_eq!(code, 1);

    // 1: a usage error (clap's own 2 would read as "changes").
    let (code, _, err) = run_binary(&["plan", "-f", "examples/", "--no-such-flag"], None);
    assert_eq!(code, 1, "{err}");

    // 1: bad input, said on standard error.
    let (code, out, err) = run_binary(&["plan", "-f", "no/such/dir"], None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("no/such/dir"), "{err}");
}

/// Without `--simulate`: credentials from the command line reach an array
/// that does not answer; the plan says so (exit 1) for the array and every
/// object on it, and never prints the credentials.
#[test]
fn an_unreachable_array_with_command_line_credentials_exits_1_without_the_secret() {
    let dir = tempfile::tempdir().expect("dir");
    let manifest = dir.path().join("a.yaml");
    // Port 1 on loopback: nothing listens, the connect is refused at once.
    let text = read("examples/ngxstorage/storagearray.yaml")
        .replace("https://ngx1-a.storage.example.com", "https://127.0.0.1:1")
        .replace(
            "  secondaryEndpoint: https://ngx1-b.storage.example.com\n",
            "",
        )
        + "---\n"
        + &read("examples/ngxstorage/lun.yaml");
    std::fs::write(&manifest, text).expect("write");
    let token = "cmdline-token-VALUE-42";
    let mut cmd = binary();
    let out = cmd
        .args([
            "plan",
            "-f",
            manifest.to_str().expect("path"),
            "--credentials",
            "ngx1=env:PLAN_TEST_TOKEN",
            "-o",
            "json",
        ])
        .env("PLAN_TEST_TOKEN", token)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["arrays"][0]["reachable"], false);
    assert_eq!(v["objects"][0]["verdict"], "Refused");
    assert_eq!(v["objects"][0]["reason"], "ArrayUnreachable");
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "the token was printed"
    );
    // The Secret in the manifest was not used: the flag took its place.
    assert!(!stdout.contains("paste-the-api-token-here"));
}

/// A refusal in the plan is the controller's own condition: for every
/// object the plan refuses, one controller pass on the same state writes
/// `Synced=False` with the same reason and the same message.
#[tokio::test]
async fn a_refusal_carries_the_condition_the_controller_writes() {
    let extra = r#"
apiVersion: v1
kind: Secret
metadata: {name: mutual-chap}
stringData: {username: target-user, password: target-pw-0001}
---
apiVersion: array-operator.io/v1alpha1
kind: IscsiTarget
metadata: {name: mutual}
spec:
  arrayRef: {name: ngx1}
  portalGroup: default
  chap:
    secretRef: {name: esx-chap}
    mutualSecretRef: {name: mutual-chap}
---
apiVersion: array-operator.io/v1alpha1
kind: VirtualMachine
metadata: {name: guest}
spec:
  arrayRef: {name: ngx1}
  storage: s
  cpus: 1
  memory: 1Gi
  disks: [{size: 8Gi}]
  nics: [{network: n}]
---
apiVersion: array-operator.io/v1alpha1
kind: Lun
metadata: {name: nowhere}
spec:
  arrayRef: {name: dsm9}
  size: 1Gi
  location: /volume1
"#;
    let text = format!(
        "{}---\n{}---\n{}---\n{extra}",
        read("examples/ngxstorage/storagearray.yaml"),
        read("examples/ngxstorage/lun.yaml"),
        read("examples/ngxstorage/iscsitarget.yaml"),
    );
    let mut m = input::parse(&text).expect("parses");
    let sims = simulate::start(&mut m).await.expect("simulators");
    let report = plan_against(&m, &sims).await;
    let refused: Vec<_> = report.refusals().collect();
    let names: Vec<&str> = refused.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["nowhere", "mutual", "guest"], "{report:#?}");
    assert_eq!(
        refused[0].message.as_deref(),
        Some("spec.arrayRef: StorageArray default/dsm9 does not exist")
    );
    assert_eq!(report.exit_code, 1);

    let handles = handles(&sims).await;
    let cluster = planner::cluster_of(&m);
    m.luns
        .retain(|l| l.metadata.name.as_deref() != Some("nowhere"));
    controller_pass(&mut m, &cluster, &handles).await;
    for h in handles.values() {
        h.backend.close().await;
    }
    for o in refused.iter().skip(1) {
        let status = match o.kind.as_str() {
            "IscsiTarget" => {
                serde_json::to_value(cluster.target("default", &o.name).and_then(|t| t.status))
            }
            _ => serde_json::to_value(cluster.vm("default", &o.name).and_then(|v| v.status)),
        }
        .expect("status");
        let synced = status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Synced"))
            .cloned()
            .expect("Synced condition");
        assert_eq!(synced["status"], "False", "{}", o.key());
        assert_eq!(
            synced["reason"].as_str(),
            o.reason.as_deref(),
            "{}",
            o.key()
        );
        assert_eq!(
            synced["message"].as_str(),
            o.message.as_deref(),
            "{}",
            o.key()
        );
    }
    sims.stop().await;
}

/// A manifest its CRD schema refuses (the apiserver would answer 422) is
/// refused with reason `SchemaInvalid` and exactly the apiserver's failures
/// in every output format, beside the valid objects, and is never planned:
/// a refused StorageArray is not connected to, and a Lun naming it is
/// refused as naming a StorageArray that does not exist (in a cluster it
/// would not).
#[test]
fn a_manifest_the_schema_refuses_is_refused_with_the_apiservers_words_in_every_format() {
    use array_operator::crd::validate::schema_failures;
    use array_operator::plan::report::SCHEMA_INVALID;

    let bad_lun = "apiVersion: array-operator.io/v1alpha1\nkind: Lun\nmetadata: {name: half-a-gig}\nspec: {arrayRef: {name: ngx1}, size: 1.5Gi, pool: pool1}\n";
    let bad_array = "apiVersion: array-operator.io/v1alpha1\nkind: StorageArray\nmetadata: {name: netapp1}\nspec: {vendor: NetApp, endpoint: https://netapp1.example.com, credentialsSecretRef: {name: c}}\n";
    let on_bad_array = "apiVersion: array-operator.io/v1alpha1\nkind: Lun\nmetadata: {name: on-netapp}\nspec: {arrayRef: {name: netapp1}, size: 1Gi, pool: pool1}\n";
    let stdin = format!(
        "{}---\n{}---\n{bad_lun}---\n{bad_array}---\n{on_bad_array}",
        read("examples/ngxstorage/storagearray.yaml"),
        read("examples/ngxstorage/lun.yaml"),
    );
    let failures = |yaml: &str| {
        let value: serde_json::Value = serde_yaml::from_str(yaml).expect("YAML");
        schema_failures(&value).join("; ")
    };
    let (lun_message, array_message) = (failures(bad_lun), failures(bad_array));
    assert!(lun_message.starts_with("spec.size: "), "{lun_message}");
    assert!(
        array_message.starts_with("spec.vendor: Unsupported value: \"NetApp\""),
        "{array_message}"
    );

    let (code, json, err) = run_binary(
        &["plan", "-f", "-", "--simulate", "-o", "json"],
        Some(&stdin),
    );
    assert_eq!(code, 1, "{json}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let object = |kind: &str, name: &str| {
        v["objects"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["kind"] == kind && o["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {name} in {json}"))
    };
    let lun = object("Lun", "half-a-gig");
    assert_eq!(
        (
            &lun["verdict"],
            &lun["reason"],
            &lun["message"],
            &lun["array"]
        ),
        (
            &serde_json::json!("Refused"),
            &serde_json::json!(SCHEMA_INVALID),
            &serde_json::json!(lun_message),
            &serde_json::json!("ngx1")
        )
    );
    assert_eq!(lun["calls"], serde_json::json!([]));
    let array = object("StorageArray", "netapp1");
    assert_eq!(
        (&array["reason"], &array["message"], &array["array"]),
        (
            &serde_json::json!(SCHEMA_INVALID),
            &serde_json::json!(array_message),
            &serde_json::json!("netapp1")
        )
    );
    let orphan = object("Lun", "on-netapp");
    assert_eq!(orphan["verdict"], "Refused");
    assert!(
        orphan["message"]
            .as_str()
            .is_some_and(|m| m.contains("StorageArray default/netapp1 does not exist")),
        "{orphan}"
    );
    // Only the valid array is connected to, and the valid Lun is planned.
    let arrays: Vec<&str> = v["arrays"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(arrays, ["ngx1"]);
    assert_eq!(object("Lun", "vmfs-01")["verdict"], "Changes");
    assert_eq!(v["summary"]["refused"], 3);
    // Kinds in the order the operator makes them (a refused StorageArray
    // first); within a kind, the schema's refusals after the planned
    // objects.
    let order: Vec<String> = v["objects"]
        .as_array()
        .map(|o| {
            o.iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o["kind"].as_str().unwrap_or_default(),
                        o["name"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        order,
        [
            "StorageArray netapp1",
            "Lun on-netapp",
            "Lun vmfs-01",
            "Lun half-a-gig"
        ]
    );

    let (code, text, _) = run_binary(
        &["plan", "-f", "-", "--simulate", "--color", "never"],
        Some(&stdin),
    );
    assert_eq!(code, 1);
    assert!(
        text.contains(&format!(
            "Lun default/half-a-gig (array ngx1): refused\n  ! {SCHEMA_INVALID}: {lun_message}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "StorageArray default/netapp1 (array netapp1): refused\n  ! {SCHEMA_INVALID}: {array_message}\n"
        )),
        "{text}"
    );

    let (code, md, _) = run_binary(
        &["plan", "-f", "-", "--simulate", "-o", "markdown"],
        Some(&stdin),
    );
    assert_eq!(code, 1);
    assert!(
        md.contains(&format!(
            "- :x: `Lun default/half-a-gig` — **{SCHEMA_INVALID}**: {lun_message}\n"
        )),
        "{md}"
    );

    // Credentials for the refused StorageArray are not taken for a typo:
    // the plan is made, and says why that array is refused.
    let (code, again, err) = run_binary(
        &[
            "plan",
            "-f",
            "-",
            "--simulate",
            "-o",
            "json",
            "--credentials",
            "netapp1=env:ARRAY_OPERATOR_NO_SUCH_VARIABLE",
        ],
        Some(&stdin),
    );
    assert_eq!((code, err.as_str()), (1, ""), "{again}");
    let again: serde_json::Value = serde_json::from_str(&again).expect("JSON");
    assert_eq!(again["summary"], v["summary"]);
}
