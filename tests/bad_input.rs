//! Issue 14: bad input never reaches an array. The table
//! (`tests/bad_input/cases.yaml`, read by `support::bad_input::cases`) holds
//! invalid manifests of all six kinds; each is either refused by the
//! generated CRD schema (OpenAPI and CEL, as the apiserver checks it) with
//! its message, or accepted by the schema and brought to `Synced=False`
//! (`InvalidSpec` or `Unsupported`) by the engine, with its message, against
//! the DSM and NGXStorage simulators over HTTPS on loopback, without one
//! mutating array call. `array-operator plan` (the library's `plan::run`,
//! against the same simulators) reports every case refused with the same
//! message. tests/e2e.rs runs the same table against a real apiserver.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::transport::TransportConfig;
use array_operator::crd::shared::CONDITION_SYNCED;
use array_operator::crd::storage_array::ResizeMode;
use array_operator::crd::{
    IscsiTarget, Lun, ReplicationPlan, SnapshotSchedule, Vendor, VirtualMachine,
};
use array_operator::engine::clock::ManualClock;
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::{self, ArrayHandle, Cleanup, ObservationCache, Progress, SecretData};
use array_operator::model::SecretString;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};
use array_operator::sim::faults::RecordedCall;
use array_operator::sim::ngx::{NgxSim, SimConfig};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::{Value, json};
use support::bad_input::{
    Case, Refusal, array_manifests, cases, is_mutating, refused_with, schema_failures,
};

const NS: &str = "default";
const NGX_TOKEN: &str = "bad-input-token-1234";
const KINDS: [&str; 6] = [
    "StorageArray",
    "Lun",
    "IscsiTarget",
    "SnapshotSchedule",
    "ReplicationPlan",
    "VirtualMachine",
];

#[test]
fn the_table_holds_at_least_50_cases_over_all_six_kinds() {
    let all = cases();
    assert!(all.len() >= 50, "{} cases", all.len());
    let names: BTreeSet<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "case names repeat");
    // The e2e suite applies every case in one namespace.
    let objects: BTreeSet<(&str, &str)> = all.iter().map(|c| (c.kind(), c.object_name())).collect();
    assert_eq!(
        objects.len(),
        all.len(),
        "object names repeat within a kind"
    );
    for kind in KINDS {
        let schema = all
            .iter()
            .filter(|c| c.kind() == kind && matches!(c.refusal, Refusal::Schema { .. }))
            .count();
        let engine = all
            .iter()
            .filter(|c| c.kind() == kind && matches!(c.refusal, Refusal::Engine { .. }))
            .count();
        println!("{kind}: {schema} refused by the schema, {engine} by the engine");
        assert!(schema > 0, "no schema case for {kind}");
        // A StorageArray has no engine of the kind here: its controller
        // checks connections, not specs the schema accepted.
        if kind != "StorageArray" {
            assert!(engine > 0, "no engine case for {kind}");
        }
    }
    for case in &all {
        assert_eq!(
            case.manifest["apiVersion"], "array-operator.io/v1alpha1",
            "{}",
            case.name
        );
        assert!(KINDS.contains(&case.kind()), "{}: kind", case.name);
    }
}

#[test]
fn every_schema_case_is_refused_by_the_generated_schema_with_its_message() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for case in cases() {
        let Refusal::Schema { field, message } = &case.refusal else {
            continue;
        };
        checked += 1;
        let failures = schema_failures(&case.manifest);
        if !refused_with(&failures, field, message) {
            wrong.push(format!(
                "{}: expected {field:?} / {message:?}, got {failures:#?}",
                case.name
            ));
        }
        // The manifest breaks the one rule it is about: every failure is
        // on that field (a pattern failure may bring that field's CEL
        // rules along, as on the apiserver).
        if let Some(other) = failures.iter().find(|f| !f.contains(field.as_str())) {
            wrong.push(format!("{}: another failure: {other}", case.name));
        }
    }
    println!("{checked} schema cases refused with their messages");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// An engine case the schema refused would prove nothing about the engine.
#[test]
fn every_engine_case_and_what_it_needs_passes_the_schema() {
    for case in cases() {
        if let Refusal::Engine {
            message, reason, ..
        } = &case.refusal
        {
            let failures = schema_failures(&case.manifest);
            assert!(failures.is_empty(), "{}: {failures:#?}", case.name);
            for other in case.with.iter().filter(|w| w["kind"] != "Secret") {
                let failures = schema_failures(other);
                assert!(failures.is_empty(), "{} (with): {failures:#?}", case.name);
            }
            if reason == "InvalidSpec" {
                assert!(
                    message.contains("spec."),
                    "{}: an InvalidSpec message names its field: {message:?}",
                    case.name
                );
            }
        }
    }
}

/// The table's manifests mean the same to kubectl (YAML 1.1) as to the
/// Rust tests (YAML 1.2), so the e2e suite applies what this suite checks.
#[test]
fn the_manifests_read_the_same_in_yaml_11() {
    let Some(python) = support::yaml11::python() else {
        assert!(
            !support::yaml11::required(),
            "ARRAY_OPERATOR_PYTHON is required here"
        );
        println!("note: no Python with PyYAML; skipping the YAML 1.1 reading");
        return;
    };
    let all = cases();
    let texts: Vec<String> = all
        .iter()
        .flat_map(|c| std::iter::once(c.manifest_yaml.clone()).chain(c.with_yaml.clone()))
        .collect();
    let mut read = support::yaml11::load_all(&python, &texts).into_iter();
    for case in &all {
        for yaml12 in std::iter::once(&case.manifest).chain(&case.with) {
            let yaml11 = read.next().expect("one reading per text").remove(0);
            assert_eq!(
                support::yaml11::first_difference(yaml12, &yaml11, ""),
                None,
                "{}: YAML 1.1 reads it differently",
                case.name
            );
        }
    }
}

// ---- The engines against the simulators ----

struct Arrays {
    dsm: DsmSim,
    ngx: NgxSim,
    dsm_backend: Backend,
    ngx_backend: Backend,
}

fn transport(ca: Option<String>) -> TransportConfig {
    TransportConfig {
        ca_bundle_pem: ca,
        insecure_skip_verify: false,
        request_timeout: Duration::from_secs(10),
        max_concurrent_requests: 4,
    }
}

impl Arrays {
    async fn start() -> Arrays {
        let dsm = array_operator::sim::dsm::start(DsmSimConfig::default())
            .await
            .expect("DSM simulator");
        let ngx = NgxSim::start(SimConfig {
            token: NGX_TOKEN.into(),
            ..SimConfig::default()
        })
        .await
        .expect("NGX simulator");
        let dsm_backend = Backend::connect(BackendConfig {
            vendor: Vendor::Synology,
            endpoint: dsm.base_url(),
            secondary_endpoint: None,
            credentials: Credentials::UserPassword {
                username: DEFAULT_USERNAME.into(),
                password: SecretString::new(DEFAULT_PASSWORD),
            },
            transport: transport(dsm.ca_pem().map(str::to_string)),
            ngx_owner: None,
            resize_mode: ResizeMode::Absolute,
            session_name: "bad-input".into(),
        })
        .await
        .expect("DSM backend connects");
        let ngx_backend = Backend::connect(BackendConfig {
            vendor: Vendor::NgxStorage,
            endpoint: ngx.base_url(),
            secondary_endpoint: None,
            credentials: Credentials::Token(SecretString::new(NGX_TOKEN)),
            transport: transport(ngx.ca_pem()),
            ngx_owner: Some(ngx.owners()[0].clone()),
            resize_mode: ResizeMode::Absolute,
            session_name: "bad-input".into(),
        })
        .await
        .expect("NGX backend connects");
        Arrays {
            dsm,
            ngx,
            dsm_backend,
            ngx_backend,
        }
    }

    /// A handle with a fresh (empty) observation, so every case starts
    /// from what it alone asks of the array.
    fn handle(&self, vendor: Vendor) -> ArrayHandle {
        let (key, backend) = match vendor {
            Vendor::Synology => ("default/dsm", self.dsm_backend.clone()),
            Vendor::NgxStorage => ("default/ngx", self.ngx_backend.clone()),
        };
        ArrayHandle {
            key: key.into(),
            backend,
            cache: ObservationCache::default(),
            resync: Duration::from_secs(3600),
            dry_run: None,
        }
    }

    fn calls(&self, vendor: Vendor) -> Vec<RecordedCall> {
        match vendor {
            Vendor::Synology => self.dsm.calls().calls(),
            Vendor::NgxStorage => self.ngx.calls().calls(),
        }
    }

    fn clear_calls(&self) {
        self.dsm.calls().clear();
        self.ngx.calls().clear();
    }
}

/// A manifest as the apiserver would hand it to the operator: namespaced,
/// with a UID and generation 1.
fn stored<K: serde::de::DeserializeOwned>(manifest: &Value, case: &str) -> K {
    let mut m = manifest.clone();
    m["metadata"]["namespace"] = json!(NS);
    m["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    m["metadata"]["generation"] = json!(1);
    serde_json::from_value(m)
        .unwrap_or_else(|e| panic!("{case}: the Rust type cannot read it: {e}"))
}

/// The Secret's `stringData` as the engine reads Secrets.
fn secret_data(manifest: &Value) -> SecretData {
    let data: BTreeMap<String, SecretString> = manifest["stringData"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), SecretString::new(v.as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default();
    SecretData {
        data,
        resource_version: "1".into(),
    }
}

/// What one reconcile and then a deletion of a case's object did.
struct Ran {
    conditions: Vec<Condition>,
    progress: Progress,
    /// The deletion released the object at once (its finalizer removed).
    released: bool,
}

fn released<S>(c: Cleanup<S>) -> bool {
    matches!(c, Cleanup::Done { .. })
}

/// Runs the engine of the case's kind once, writes the status it decided,
/// then runs the deletion of the object.
async fn run_engine(case: &Case, array: &ArrayHandle) -> Ran {
    let cluster = MemoryCluster::default();
    let mut luns = Vec::new();
    for other in &case.with {
        match other["kind"].as_str() {
            Some("Secret") => {
                let name = other["metadata"]["name"].as_str().expect("Secret name");
                cluster.put_secret(NS, name, secret_data(other));
            }
            Some("Lun") => {
                let lun: Lun = stored(other, &case.name);
                cluster.put_lun(lun.clone());
                luns.push(lun);
            }
            other => panic!("{}: cannot stage a {other:?}", case.name),
        }
    }
    let clock = ManualClock::new(chrono::Utc::now());
    match case.kind() {
        "Lun" => {
            let mut lun: Lun = stored(&case.manifest, &case.name);
            cluster.put_lun(lun.clone());
            let out = engine::lifecycle::reconcile(&lun, array, &cluster).await;
            lun.status = Some(out.status.clone());
            let cleanup = engine::lifecycle::cleanup(&lun, Some(array), &cluster).await;
            Ran {
                conditions: out.status.common.conditions,
                progress: out.progress,
                released: released(cleanup),
            }
        }
        "IscsiTarget" => {
            let mut t: IscsiTarget = stored(&case.manifest, &case.name);
            cluster.put_target(t.clone());
            let out = engine::lifecycle::reconcile(&t, array, &cluster).await;
            t.status = Some(out.status.clone());
            let cleanup = engine::lifecycle::cleanup(&t, Some(array), &cluster).await;
            Ran {
                conditions: out.status.common.conditions,
                progress: out.progress,
                released: released(cleanup),
            }
        }
        "VirtualMachine" => {
            let mut vm: VirtualMachine = stored(&case.manifest, &case.name);
            cluster.put_vm(vm.clone());
            let out = engine::lifecycle::reconcile(&vm, array, &cluster).await;
            vm.status = Some(out.status.clone());
            let cleanup = engine::lifecycle::cleanup(&vm, Some(array), &cluster).await;
            Ran {
                conditions: out.status.common.conditions,
                progress: out.progress,
                released: released(cleanup),
            }
        }
        "SnapshotSchedule" => {
            let mut s: SnapshotSchedule = stored(&case.manifest, &case.name);
            let out = engine::snapshot_schedule::reconcile(&s, array, &luns, &clock).await;
            s.status = Some(out.outcome.status.clone());
            let cleanup = engine::snapshot_schedule::cleanup(&s, Some(array)).await;
            Ran {
                conditions: out.outcome.status.common.conditions,
                progress: out.outcome.progress,
                released: released(cleanup),
            }
        }
        "ReplicationPlan" => {
            let mut p: ReplicationPlan = stored(&case.manifest, &case.name);
            let out = engine::replication_plan::reconcile(&p, array, &clock).await;
            p.status = Some(out.outcome.status.clone());
            let cleanup = engine::replication_plan::cleanup(&p);
            Ran {
                conditions: out.outcome.status.common.conditions,
                progress: out.outcome.progress,
                released: released(cleanup),
            }
        }
        other => panic!("{}: no engine for {other}", case.name),
    }
}

/// Every engine case, against a connected backend (the login is before the
/// call log is cleared): `Synced=False` with the case's reason and message,
/// the object `Stalled` (a person must act), its deletion released at once,
/// and no mutating call on either array through the reconcile and the
/// deletion. Reads are allowed only where the rule needs the array's own
/// lists (VMM storages, networks, images and hosts; DSM replication
/// plans); every other case makes no call at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_case_is_refused_before_any_mutating_array_call() {
    let arrays = Arrays::start().await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut reads_total = 0;
    for case in cases() {
        let Refusal::Engine {
            reason,
            message,
            vendor,
        } = &case.refusal
        else {
            continue;
        };
        checked += 1;
        arrays.clear_calls();
        let handle = arrays.handle(*vendor);
        let Ran {
            conditions,
            progress,
            released,
        } = run_engine(&case, &handle).await;
        if !released {
            wrong.push(format!("{}: deleting it held the finalizer", case.name));
        }
        let synced = conditions.iter().find(|c| c.type_ == CONDITION_SYNCED);
        match synced {
            Some(c)
                if c.status == "False" && &c.reason == reason && c.message.contains(message) => {}
            other => wrong.push(format!(
                "{}: expected Synced=False {reason} containing {message:?}, got {other:?}",
                case.name
            )),
        }
        if progress != Progress::Stalled {
            wrong.push(format!("{}: progress {progress:?}, not Stalled", case.name));
        }
        let calls = arrays.calls(*vendor);
        let other_vendor = match vendor {
            Vendor::Synology => Vendor::NgxStorage,
            Vendor::NgxStorage => Vendor::Synology,
        };
        let stray = arrays.calls(other_vendor);
        if !stray.is_empty() {
            wrong.push(format!(
                "{}: the other array was called: {stray:?}",
                case.name
            ));
        }
        let mutating: Vec<&str> = calls
            .iter()
            .filter(|c| is_mutating(*vendor, c))
            .map(|c| c.operation.as_str())
            .collect();
        if !mutating.is_empty() {
            wrong.push(format!("{}: mutating calls {mutating:?}", case.name));
        }
        let reads_allowed = matches!(case.kind(), "VirtualMachine" | "ReplicationPlan")
            && *vendor == Vendor::Synology;
        if !reads_allowed && !calls.is_empty() {
            let ops: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
            wrong.push(format!("{}: expected no call, got {ops:?}", case.name));
        }
        reads_total += calls.len();
        println!(
            "{}: {} {reason}, {} read-only call(s)",
            case.name,
            case.kind(),
            calls.len()
        );
    }
    println!("{checked} engine cases, {reads_total} read-only calls in all, no mutating call");
    assert!(checked >= 20, "{checked} engine cases");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The e2e suite judges a whole operator run by `is_mutating`, so check it
/// both ways here: a connection, the array's own information and an
/// observation are reads, and a valid Lun's create is the one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_classifier_tells_a_connection_and_its_reads_from_a_create() {
    let arrays = Arrays::start().await;
    for (vendor, lun, create) in [
        (
            Vendor::Synology,
            json!({"arrayRef": {"name": "dsm"}, "size": "1Gi", "location": "/volume1"}),
            "SYNO.Core.ISCSI.LUN.create".to_string(),
        ),
        (
            Vendor::NgxStorage,
            json!({"arrayRef": {"name": "ngx"}, "size": "1Gi", "pool": "pool1"}),
            arrays
                .ngx
                .op(array_operator::array::ngxstorage::Endpoint::LunCreate),
        ),
    ] {
        let handle = arrays.handle(vendor);
        handle.backend.info().await.expect("array information");
        let reads = arrays.calls(vendor);
        let written: Vec<&str> = reads
            .iter()
            .filter(|c| is_mutating(vendor, c))
            .map(|c| c.operation.as_str())
            .collect();
        assert!(reads.len() >= 2, "{vendor:?}: {reads:?}");
        assert!(
            written.is_empty(),
            "{vendor:?}: reads taken for writes: {written:?}"
        );

        arrays.clear_calls();
        let manifest = json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": {"name": "classifier"}, "spec": lun,
        });
        let lun: Lun = stored(&manifest, "classifier");
        let cluster = MemoryCluster::default();
        cluster.put_lun(lun.clone());
        let out = engine::lifecycle::reconcile(&lun, &handle, &cluster).await;
        assert_eq!(out.progress, Progress::Converged, "{:?}", out.status);
        let calls = arrays.calls(vendor);
        let written: Vec<&str> = calls
            .iter()
            .filter(|c| is_mutating(vendor, c))
            .map(|c| c.operation.as_str())
            .collect();
        assert_eq!(written, [create.as_str()], "{vendor:?}: {calls:?}");
        assert!(
            calls.len() > written.len(),
            "{vendor:?}: the create listed first"
        );
    }
}

// ---- `array-operator plan` over the whole table ----

/// The input `plan` reads for a case, as YAML text: the Secrets and
/// StorageArrays of both simulators (`dsm`, `ngx`), the case's `with`
/// manifests and its manifest, as the table writes them.
fn plan_input(arrays: &Arrays, case: &Case) -> String {
    let mut docs: Vec<String> = array_manifests(
        Vendor::Synology,
        &arrays.dsm.base_url(),
        arrays.dsm.ca_pem().expect("the DSM simulator serves TLS"),
        json!({"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}),
        None,
    )
    .into_iter()
    .chain(array_manifests(
        Vendor::NgxStorage,
        &arrays.ngx.base_url(),
        &arrays.ngx.ca_pem().expect("the NGX simulator serves TLS"),
        json!({"token": NGX_TOKEN}),
        Some(&arrays.ngx.owners()[0]),
    ))
    .map(|doc| serde_yaml::to_string(&doc).expect("YAML"))
    .collect();
    docs.extend(case.with_yaml.iter().cloned());
    docs.push(case.manifest_yaml.clone());
    docs.join("---\n")
}

/// `plan` (against the simulators, not `--simulate`: the arrays are the
/// same DSM and NGXStorage simulators as above, reached with the
/// credentials and CA of the input's Secrets) reports every case of the
/// table refused with the table's message: a schema case with reason
/// `SchemaInvalid` and exactly the apiserver's failures, an engine case
/// with the `Synced` reason and message the controller writes; no
/// simulator receives a mutating call, and the plan exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reports_every_case_refused_with_the_tables_message() {
    use array_operator::plan::{self, PlanOptions, report::SCHEMA_INVALID};

    let arrays = Arrays::start().await;
    let mut wrong = Vec::new();
    let (mut schema_cases, mut engine_cases) = (0, 0);
    for case in cases() {
        arrays.clear_calls();
        let manifests = match plan::input::parse(&plan_input(&arrays, &case)) {
            Ok(m) => m,
            Err(e) => {
                wrong.push(format!("{}: plan cannot read the input: {e}", case.name));
                continue;
            }
        };
        let report = match plan::run(manifests, &PlanOptions::default()).await {
            Ok(report) => report,
            Err(e) => {
                wrong.push(format!("{}: no plan: {e}", case.name));
                continue;
            }
        };
        let unreachable: Vec<&str> = report
            .arrays
            .iter()
            .filter(|a| !a.reachable)
            .map(|a| a.name.as_str())
            .collect();
        if !unreachable.is_empty() {
            wrong.push(format!(
                "{}: arrays unreachable: {unreachable:?}",
                case.name
            ));
        }
        let object = report.object(case.kind(), NS, case.object_name());
        let (reason, text) = match object {
            Some(o) if o.verdict == array_operator::plan::report::Verdict::Refused => (
                o.reason.clone().unwrap_or_default(),
                o.message.clone().unwrap_or_default(),
            ),
            other => {
                wrong.push(format!("{}: not refused: {other:?}", case.name));
                continue;
            }
        };
        match &case.refusal {
            Refusal::Schema { field, message } => {
                schema_cases += 1;
                let failures = schema_failures(&case.manifest);
                if reason != SCHEMA_INVALID
                    || text != failures.join("; ")
                    || !refused_with(std::slice::from_ref(&text), field, message)
                {
                    wrong.push(format!(
                        "{}: expected {SCHEMA_INVALID} naming {field:?} with {message:?}, got {reason} {text:?}",
                        case.name
                    ));
                }
            }
            Refusal::Engine {
                reason: expected,
                message,
                ..
            } => {
                engine_cases += 1;
                if &reason != expected || !text.contains(message.as_str()) {
                    wrong.push(format!(
                        "{}: expected {expected} containing {message:?}, got {reason} {text:?}",
                        case.name
                    ));
                }
            }
        }
        if report.exit_code != 1 {
            wrong.push(format!("{}: exit code {}", case.name, report.exit_code));
        }
        for vendor in [Vendor::Synology, Vendor::NgxStorage] {
            let mutating: Vec<String> = arrays
                .calls(vendor)
                .iter()
                .filter(|c| is_mutating(vendor, c))
                .map(|c| c.operation.clone())
                .collect();
            if !mutating.is_empty() {
                wrong.push(format!(
                    "{}: mutating calls on {vendor:?}: {mutating:?}",
                    case.name
                ));
            }
        }
    }
    let checked = schema_cases + engine_cases;
    println!(
        "plan: {checked} cases checked ({schema_cases} refused by the schema, {engine_cases} by the engine), each with the table's message, no mutating call"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(checked, cases().len());
}
