//! End-to-end tests against a real Kubernetes API server. They run only when
//! `ARRAY_OPERATOR_E2E_KUBECONFIG` names a kubeconfig (and need
//! `ARRAY_OPERATOR_PYTHON`, a Python with PyYAML); otherwise each test prints
//! a note and passes without touching anything.
//!
//! They do what users do: the CRDs and the examples are read from their YAML
//! files as kubectl reads them (YAML 1.1) and server-side applied. Four
//! tests, each under a 10-minute deadline kept outside its runtime, every
//! wait bounded and named (tests/support/e2e.rs):
//! 1. the YAML-file install, every example applied and read back, and the
//!    apiserver's refusals;
//! 2. two operator replicas against an in-process DSM simulator: a target
//!    listing two Luns is not Ready until the array maps both, then a
//!    SIGTERM-style stop of the leader hands over to the other within 5 s;
//! 3. deleting a whole namespace (Secrets, StorageArray, Luns, target)
//!    leaves the namespace gone and the array empty;
//! 4. a SnapshotSchedule: the apiserver refuses an out-of-range cron
//!    field, an every-minute schedule takes marked snapshots and prunes by
//!    count, and deleting it leaves its snapshots on the array;
//! 5. a ReplicationPlan: the apiserver refuses a trigger with both a
//!    schedule and a token, a manual token starts exactly one sync of the
//!    adopted DSM plan, an unknown plan id says so, and deleting the
//!    object leaves the plan;
//! 6. a VirtualMachine: the apiserver refuses a disk that is both sized and
//!    an image, a guest is created once and runs (Ready), `runStrategy:
//!    Halted` stops it, and deleting the object deletes the guest;
//! 7. the bad-input table (tests/bad_input/cases.yaml): the apiserver
//!    refuses each schema case with its message, and the operator brings
//!    each engine case to `Synced=False` with its reason and message, with
//!    no mutating call on an isolated DSM or NGXStorage simulator;
//! 8. the Helm chart: `helm template` with the default values and with
//!    every option on, and every rendered object accepted by the apiserver
//!    in a server-side dry run.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use array_operator::crd::{IscsiTarget, Lun, StorageArray};
use array_operator::operator::{Health, LeaderOptions, run_with_client};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, StateHandle};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::wait::conditions;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::e2e::{
    IsolatedDsm, Steps, api_for, apply, client, condition, cr, create_namespace, delete_namespace,
    install_crds, is_current, kstatus_current, kubeconfig, read_yaml11, run_with_deadline, secret,
    wait_for, within, yaml11_doc,
};

/// Each test's overall deadline.
const DEADLINE: Duration = Duration::from_secs(10 * 60);

// ---- The deadline itself (runs without a cluster) ----

/// The overall deadline fires, naming the step, even when the test's
/// runtime is wedged by a blocking call (the shape of the reported hang,
/// where no timeout inside the runtime fired).
#[test]
fn the_deadline_fails_a_test_whose_runtime_is_blocked_and_names_the_step() {
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = Arc::new(Mutex::new(blocked));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let blocked = blocked.clone();
        run_with_deadline("blocked", Duration::from_secs(2), move |steps| async move {
            steps.step("a blocking call on a runtime worker");
            // Every worker this task could move to is irrelevant: the task
            // itself never yields, so no timer inside can fire.
            let inner = tokio::time::timeout(Duration::from_millis(100), async {
                let _ = blocked.lock().unwrap_or_else(|p| p.into_inner()).recv();
            });
            let _ = inner.await;
        });
    }));
    let _ = release.send(());
    let message = outcome
        .expect_err("the deadline must fail the test")
        .downcast::<String>()
        .map(|m| *m)
        .unwrap_or_default();
    assert!(
        message.contains("blocked did not finish within 2s")
            && message.contains("a blocking call on a runtime worker"),
        "{message}"
    );
}

/// The simulator the operator tests use serves from its own thread, and
/// stops when its handle is dropped.
#[test]
fn the_isolated_simulator_serves_until_dropped() {
    let sim = IsolatedDsm::start();
    let addr = sim.base_url.trim_start_matches("https://").to_string();
    std::net::TcpStream::connect(&addr).expect("the simulator accepts connections");
    assert!(sim.ca_pem.contains("BEGIN CERTIFICATE"));
    assert!(sim.state.read(|s| s.luns.is_empty()), "a fresh array");
    drop(sim);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the simulator still serves 10s after being dropped"
        );
        std::thread::yield_now();
    }
}

// ---- 1. YAML-file install, examples, refusals ----

#[test]
fn crds_and_examples_install_from_their_yaml_files_and_the_apiserver_refuses_bad_input() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("install-and-refusals", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        install_crds(&client, &steps).await;
        let ns = create_namespace(&client, "aop-e2e-examples").await;
        let outcome = tokio::spawn(examples_and_refusals(client.clone(), ns.clone(), steps)).await;
        delete_namespace(&client, &ns).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

/// True when every field of `written` is in `served` with the same value.
fn contains(written: &Value, served: &Value) -> bool {
    match (written, served) {
        (Value::Object(w), Value::Object(s)) => w
            .iter()
            .all(|(k, v)| s.get(k).is_some_and(|sv| contains(v, sv))),
        _ => written == served,
    }
}

fn typed_read(kind: &str, read: &Value) -> Result<(), serde_json::Error> {
    use array_operator::crd::{ReplicationPlan, SnapshotSchedule, VirtualMachine};
    let read = read.clone();
    match kind {
        "StorageArray" => serde_json::from_value::<StorageArray>(read).map(|_| ()),
        "Lun" => serde_json::from_value::<Lun>(read).map(|_| ()),
        "IscsiTarget" => serde_json::from_value::<IscsiTarget>(read).map(|_| ()),
        "SnapshotSchedule" => serde_json::from_value::<SnapshotSchedule>(read).map(|_| ()),
        "ReplicationPlan" => serde_json::from_value::<ReplicationPlan>(read).map(|_| ()),
        "VirtualMachine" => serde_json::from_value::<VirtualMachine>(read).map(|_| ()),
        other => panic!("unexpected kind {other}"),
    }
}

/// Asserts the apiserver refused with 422 and a message naming `field` and
/// `words`.
fn assert_invalid(result: Result<DynamicObject, kube::Error>, field: &str, words: &str) {
    match result {
        Ok(obj) => panic!(
            "accepted an invalid object ({field}): {:?}",
            obj.metadata.name
        ),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains(field) && status.message.contains(words),
                "refusal does not name {field:?} / {words:?}: {}",
                status.message
            );
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

async fn examples_and_refusals(client: Client, ns: String, steps: Steps) {
    let ns = ns.as_str();
    steps.step("read examples/**/*.yaml as YAML 1.1");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = read_yaml11(support::yaml11::yaml_files(&root.join("examples"))).await;
    assert!(docs.len() >= 15, "{} example documents", docs.len());
    for doc in &docs {
        let kind = doc["kind"].as_str().expect("kind").to_string();
        let name = doc["metadata"]["name"].as_str().expect("name").to_string();
        steps.step(format!("apply example {kind}/{name} and read it back"));
        let served = apply(&client, ns, doc)
            .await
            .unwrap_or_else(|e| panic!("the apiserver refused example {kind}/{name}: {e}"));
        if kind == "Secret" {
            continue;
        }
        let (api, _) = api_for(&client, ns, doc);
        let read = within(30, &format!("read {kind}/{name}"), api.get(&name))
            .await
            .expect("read back");
        let read = serde_json::to_value(&read).expect("json");
        assert!(
            contains(&doc["spec"], &read["spec"]),
            "{kind}/{name}: served spec differs from the manifest: {}",
            read["spec"]
        );
        assert_eq!(
            serde_json::to_value(&served).expect("json")["spec"],
            read["spec"]
        );
        // The served object (defaults included) is what the Rust types read.
        typed_read(&kind, &read).unwrap_or_else(|e| {
            panic!("{kind}/{name}: the Rust type cannot read the served object: {e}")
        });
    }

    steps.step("check the defaults the apiserver applied");
    let luns = Api::<Lun>::namespaced(client.clone(), ns);
    let clone = within(30, "read Lun db-data-clone", luns.get("db-data-clone"))
        .await
        .expect("clone");
    assert!(clone.spec.thin_provisioning);
    assert_eq!(
        clone.spec.management_policy,
        array_operator::crd::shared::ManagementPolicy::Manage
    );
    let vms = Api::<array_operator::crd::VirtualMachine>::namespaced(client.clone(), ns);
    let vm = within(
        30,
        "read VirtualMachine build-runner",
        vms.get("build-runner"),
    )
    .await
    .expect("VM");
    assert_eq!(
        vm.spec.autorun,
        array_operator::crd::virtual_machine::Autorun::LastState
    );

    refusals(&client, ns, &steps).await;
}

async fn refusals(client: &Client, ns: &str, steps: &Steps) {
    steps.step("refusal: autorun: On is a YAML 1.1 boolean");
    // What a user who writes the old value gets: kubectl reads `On` as true.
    let vm = yaml11_doc(
        "apiVersion: array-operator.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: on-is-a-bool\n\
         spec:\n  arrayRef: {name: a}\n  storage: s\n  cpus: 1\n  memory: 1Gi\n  autorun: On\n  disks: [{size: 1Gi}]\n",
    )
    .await;
    assert_eq!(
        vm["spec"]["autorun"],
        json!(true),
        "PyYAML reads On as true"
    );
    // Created as `kubectl create` would (a POST): the type error is then the
    // apiserver's schema validation, answered 422.
    let (api, _) = api_for(client, ns, &vm);
    let object: DynamicObject = serde_json::from_value(vm).expect("object");
    let created = within(30, "create VirtualMachine on-is-a-bool", async {
        api.create(&PostParams::default(), &object).await
    })
    .await;
    assert_invalid(created, "spec.autorun", "string");

    steps.step("refusal: a shrinking Lun");
    let lun = cr(
        "Lun",
        "shrinks",
        json!({"arrayRef": {"name": "a"}, "size": "10Gi", "location": "/volume1"}),
    );
    apply(client, ns, &lun).await.expect("create Lun");
    let mut smaller = lun.clone();
    smaller["spec"]["size"] = json!("5Gi");
    assert_invalid(
        apply(client, ns, &smaller).await,
        "spec.size",
        "may only grow",
    );
    let mut bigger = lun.clone();
    bigger["spec"]["size"] = json!("20Gi");
    apply(client, ns, &bigger)
        .await
        .expect("growing is allowed");

    steps.step("refusal: a changed and a malformed IQN");
    let target = cr(
        "IscsiTarget",
        "fixed-iqn",
        json!({"arrayRef": {"name": "a"}, "iqn": "iqn.2000-01.com.synology:a.t1"}),
    );
    apply(client, ns, &target).await.expect("create target");
    let mut changed = target.clone();
    changed["spec"]["iqn"] = json!("iqn.2000-01.com.synology:a.t2");
    assert_invalid(apply(client, ns, &changed).await, "spec.iqn", "immutable");
    let malformed = cr(
        "IscsiTarget",
        "bad-iqn",
        json!({"arrayRef": {"name": "a"}, "iqn": "iqn.2000-13.com.synology:t"}),
    );
    assert_invalid(
        apply(client, ns, &malformed).await,
        "spec.iqn",
        "should match",
    );

    steps.step("refusal: vendor name limits");
    let ngx_lun = cr(
        "Lun",
        "ngx-dotted",
        json!({"arrayRef": {"name": "a"}, "size": "1Gi", "pool": "pool1", "name": "vmfs.01"}),
    );
    assert_invalid(apply(client, ns, &ngx_lun).await, "spec.name", "1-30");
    let dotted = cr(
        "Lun",
        "ngx.dotted",
        json!({"arrayRef": {"name": "a"}, "size": "1Gi", "pool": "pool1"}),
    );
    assert_invalid(
        apply(client, ns, &dotted).await,
        "metadata.name",
        "set spec.name",
    );

    steps.step("refusal: a bad cron and an out-of-range retention");
    let schedule = cr(
        "SnapshotSchedule",
        "bad-cron",
        json!({"arrayRef": {"name": "a"}, "schedule": "every hour", "luns": ["l"], "retention": {"maxCount": 3}}),
    );
    assert_invalid(
        apply(client, ns, &schedule).await,
        "spec.schedule",
        "should match",
    );
    let many = cr(
        "SnapshotSchedule",
        "too-many",
        json!({"arrayRef": {"name": "a"}, "schedule": "@daily", "luns": ["l"], "retention": {"maxCount": 513}}),
    );
    assert_invalid(
        apply(client, ns, &many).await,
        "spec.retention.maxCount",
        "512",
    );

    steps.step("refusal: an unknown enum value");
    let policy = cr(
        "Lun",
        "bad-policy",
        json!({"arrayRef": {"name": "a"}, "size": "1Gi", "location": "/volume1", "managementPolicy": "Ignore"}),
    );
    assert_invalid(
        apply(client, ns, &policy).await,
        "spec.managementPolicy",
        "Unsupported value",
    );

    steps.step("refusal: exactly-one rules and create-time-only fields");
    let both = cr(
        "ReplicationPlan",
        "both-triggers",
        json!({"arrayRef": {"name": "a"}, "planId": "1", "trigger": {"schedule": "@daily", "manual": "x"}}),
    );
    assert_invalid(
        apply(client, ns, &both).await,
        "spec.trigger",
        "exactly one of schedule or manual",
    );
    let mut with_source = lun.clone();
    with_source["spec"]["size"] = json!("20Gi");
    with_source["spec"]["source"] = json!({"lunRef": {"name": "other"}});
    assert_invalid(
        apply(client, ns, &with_source).await,
        "spec.source",
        "create-time only",
    );
}

// ---- The operator against the cluster, with an in-process simulator ----

/// One in-process operator replica: `run_with_client` on its own client,
/// stopped (as SIGTERM stops `run`) by resolving its stop future.
struct Replica {
    name: &'static str,
    health: Arc<Health>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), array_operator::operator::RunError>>,
}

impl Replica {
    async fn start(
        kubeconfig: &str,
        name: &'static str,
        lease_ns: &str,
        watch_ns: &str,
    ) -> Replica {
        let options = LeaderOptions {
            lease_name: "array-operator-e2e".into(),
            lease_namespace: Some(lease_ns.to_string()),
            lease_duration_secs: 15,
            lease_grace_secs: 5,
            instance: name.into(),
            // Other e2e tests run at the same time in other namespaces: this
            // operator must not touch their objects.
            watch_namespaces: vec![watch_ns.to_string()],
            array_selector: None,
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let health = Arc::new(Health::default());
        let task = tokio::spawn(run_with_client(
            client(kubeconfig).await,
            options,
            health.clone(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        Replica {
            name,
            health,
            stop: Some(stop),
            task,
        }
    }

    /// Waits (at most `secs`) until this replica leads; returns how long it
    /// took.
    async fn wait_leading(&self, secs: u64) -> Duration {
        let started = Instant::now();
        within(secs, &format!("{} leads", self.name), async {
            while !self.health.is_leading() {
                assert!(
                    !self.task.is_finished(),
                    "{} stopped before it led",
                    self.name
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        started.elapsed()
    }

    /// Stops the replica (SIGTERM) and waits (at most 30 s: the controllers'
    /// shutdown grace plus the Lease release) until `run` returns.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let name = self.name;
        within(30, &format!("{name} stops after SIGTERM"), &mut self.task)
            .await
            .unwrap_or_else(|e| panic!("{name} panicked: {e}"))
            .unwrap_or_else(|e| panic!("{name} did not stop cleanly: {e}"));
    }
}

/// The credentials and CA Secrets and a StorageArray `dsm` for `sim` in
/// `ns`.
async fn storage_array(client: &Client, ns: &str, sim: &IsolatedDsm) {
    apply(
        client,
        ns,
        &secret(
            "dsm-credentials",
            json!({"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}),
        ),
    )
    .await
    .expect("credentials");
    apply(client, ns, &secret("dsm-ca", json!({"ca.crt": sim.ca_pem})))
        .await
        .expect("CA");
    apply(
        client,
        ns,
        &cr(
            "StorageArray",
            "dsm",
            json!({
                "vendor": "Synology", "endpoint": sim.base_url,
                "credentialsSecretRef": {"name": "dsm-credentials"},
                "tls": {"caSecretRef": {"name": "dsm-ca"}},
                "resyncInterval": "30s"
            }),
        ),
    )
    .await
    .expect("StorageArray");
}

/// Two Luns and a target listing both, applied together (the target before
/// its Luns have ids on the array).
async fn luns_and_target(client: &Client, ns: &str, prefix: &str) -> (Vec<String>, String) {
    let target = format!("{prefix}-t1");
    let luns = vec![format!("{prefix}-l1"), format!("{prefix}-l2")];
    apply(
        client,
        ns,
        &cr(
            "IscsiTarget",
            &target,
            json!({"arrayRef": {"name": "dsm"}, "luns": luns}),
        ),
    )
    .await
    .expect("IscsiTarget");
    for lun in &luns {
        apply(
            client,
            ns,
            &cr(
                "Lun",
                lun,
                json!({"arrayRef": {"name": "dsm"}, "size": "1Gi", "location": "/volume1"}),
            ),
        )
        .await
        .expect("Lun");
    }
    (luns, target)
}

/// The names of the LUNs the simulated array maps to target `target`.
fn mapped_on_array(state: &StateHandle, target: &str) -> Vec<String> {
    state.read(|s| {
        s.target_by_name(target)
            .map(|t| {
                t.mapped
                    .iter()
                    .filter_map(|m| s.lun(&m.lun_uuid).map(|l| l.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    })
}

#[test]
fn a_target_is_ready_only_when_its_luns_are_mapped_and_sigterm_hands_over_within_5s() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline(
        "readiness-and-handover",
        DEADLINE,
        move |steps| async move {
            let client = client(&path).await;
            install_crds(&client, &steps).await;
            let ns = create_namespace(&client, "aop-e2e-operator").await;
            let outcome = tokio::spawn(readiness_and_handover(
                path,
                client.clone(),
                ns.clone(),
                steps,
            ))
            .await;
            delete_namespace(&client, &ns).await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        },
    );
}

async fn readiness_and_handover(kubeconfig: String, client: Client, ns: String, steps: Steps) {
    let sim = IsolatedDsm::start();
    steps.step("StorageArray, then two replicas on one Lease");
    storage_array(&client, &ns, &sim).await;
    let a = Replica::start(&kubeconfig, "replica-a", &ns, &ns).await;
    let took = a.wait_leading(60).await;
    println!("replica-a leads after {took:.1?}");
    let b = Replica::start(&kubeconfig, "replica-b", &ns, &ns).await;

    steps.step("StorageArray Ready");
    let arrays: Api<StorageArray> = Api::namespaced(client.clone(), &ns);
    wait_for(&arrays, "dsm", 120, "StorageArray dsm Ready", is_current()).await;

    steps.step("two Luns and a target listing both");
    let (lun_names, target) = luns_and_target(&client, &ns, "e2e").await;
    let luns: Api<Lun> = Api::namespaced(client.clone(), &ns);
    let targets: Api<IscsiTarget> = Api::namespaced(client.clone(), &ns);

    steps.step("target Ready, checked against the array at that moment");
    // Called on every watch event: the first time Ready=True is seen, the
    // array's mappings are read right then.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let not_ready_reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    let ready_at_array = {
        let seen = seen.clone();
        let reasons = not_ready_reasons.clone();
        let state = sim.state.clone();
        let target = target.clone();
        move |obj: Option<&IscsiTarget>| {
            let Some(v) = obj.and_then(|o| serde_json::to_value(o).ok()) else {
                return false;
            };
            match condition(&v, "Ready") {
                Some(c) if c["status"] == "True" => {
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) =
                        mapped_on_array(&state, &target);
                    true
                }
                Some(c) => {
                    reasons
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("{}: {}", c["reason"], c["message"]));
                    false
                }
                None => false,
            }
        }
    };
    wait_for(&targets, &target, 180, "target Ready", ready_at_array).await;
    let mut mapped = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    mapped.sort();
    assert_eq!(
        mapped,
        lun_names,
        "the target was Ready=True while the array mapped only {mapped:?} (Ready=False reasons seen: {:?})",
        not_ready_reasons.lock().unwrap_or_else(|p| p.into_inner())
    );
    // While it waited, Ready=False said which Luns it waited for.
    for reason in not_ready_reasons
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|r| r.contains("e2e-l"))
    {
        println!("target not ready yet: {reason}");
    }

    steps.step(
        "kstatus: Luns and target Current (Ready, observedGeneration, not Reconciling/Stalled)",
    );
    for lun in &lun_names {
        wait_for(&luns, lun, 120, &format!("Lun {lun} Current"), is_current()).await;
    }
    wait_for(&targets, &target, 120, "target Current", is_current()).await;
    let t = within(30, "read target", targets.get(&target))
        .await
        .expect("target");
    let t = serde_json::to_value(&t).expect("json");
    assert!(kstatus_current(&t), "target: {}", t["status"]);
    assert!(
        condition(&t, "Synced").is_some_and(|c| c["status"] == "True"),
        "target Synced: {}",
        t["status"]
    );

    steps.step("Mapped Events name both Luns");
    // One Event for both mappings or one per mapping: together they name
    // every Lun (an Event naming only the first of several was a defect).
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    within(60, "Mapped Events of the target naming both Luns", async {
        loop {
            let list = events
                .list(&ListParams::default().fields(&format!("involvedObject.name={target}")))
                .await
                .expect("list Events");
            let mapped: Vec<&str> = list
                .items
                .iter()
                .filter(|e| e.reason.as_deref() == Some("Mapped"))
                .filter_map(|e| e.message.as_deref())
                .collect();
            if lun_names
                .iter()
                .all(|l| mapped.iter().any(|m| m.contains(l.as_str())))
            {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;

    steps.step("kubectl get luns columns (Table API)");
    let request = http::Request::get(format!(
        "/apis/array-operator.io/v1alpha1/namespaces/{ns}/luns"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .expect("request");
    let table: Value = within(30, "Table of Luns", client.request(request))
        .await
        .expect("Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "ARRAY",
            "SIZE",
            "TYPE",
            "READY",
            "SYNCED",
            "EXTERNAL-ID",
            "AGE"
        ]
    );
    for row in table["rows"].as_array().expect("rows") {
        let cells = row["cells"].as_array().expect("cells");
        assert_eq!(cells[1], "dsm");
        assert_eq!(cells[2], "1Gi");
        assert!(
            cells[3].as_str().is_some_and(|s| !s.is_empty()),
            "TYPE: {row}"
        );
        assert_eq!(cells[4], "True", "READY: {row}");
        assert_eq!(cells[5], "True", "SYNCED: {row}");
        assert!(
            cells[6].as_str().is_some_and(|s| !s.is_empty()),
            "EXTERNAL-ID: {row}"
        );
    }
    assert!(
        !b.health.is_leading(),
        "the second replica must stay a follower while the first leads"
    );

    steps.step("SIGTERM to the leader: the follower leads within 5 s");
    let stopped = Instant::now();
    let stopping = tokio::spawn(a.stop());
    let took = b.wait_leading(5).await;
    println!(
        "handover: replica-b leads {:.2?} after replica-a's SIGTERM",
        stopped.elapsed()
    );
    assert!(took <= Duration::from_secs(5));
    within(35, "replica-a exits after SIGTERM", stopping)
        .await
        .expect("replica-a stop");

    steps.step("the new leader cleans up: delete the target and the Luns");
    let t = within(30, "read target", targets.get(&target))
        .await
        .expect("target");
    within(
        30,
        "delete target",
        targets.delete(&target, &DeleteParams::default()),
    )
    .await
    .expect("delete target");
    wait_for(
        &targets,
        &target,
        120,
        "target deleted",
        conditions::is_deleted(&t.uid().unwrap_or_default()),
    )
    .await;
    for lun in &lun_names {
        let l = within(30, "read Lun", luns.get(lun)).await.expect("Lun");
        within(30, "delete Lun", luns.delete(lun, &DeleteParams::default()))
            .await
            .expect("delete Lun");
        wait_for(
            &luns,
            lun,
            120,
            &format!("Lun {lun} deleted"),
            conditions::is_deleted(&l.uid().unwrap_or_default()),
        )
        .await;
    }
    let (left_luns, left_targets) = sim.state.read(|s| (s.luns.len(), s.targets.len()));
    assert_eq!(
        (left_luns, left_targets),
        (0, 0),
        "LUNs and targets left on the array"
    );

    steps.step("delete the StorageArray while an operator still runs");
    // Its finalizer (and its Secrets') are released by the operator: deleted
    // after the operator stopped, they would hold the namespace for ever.
    let sa = within(30, "read StorageArray", arrays.get("dsm"))
        .await
        .expect("StorageArray");
    within(
        30,
        "delete StorageArray",
        arrays.delete("dsm", &DeleteParams::default()),
    )
    .await
    .expect("delete StorageArray");
    wait_for(
        &arrays,
        "dsm",
        120,
        "StorageArray deleted",
        conditions::is_deleted(&sa.uid().unwrap_or_default()),
    )
    .await;

    steps.step("stop the second replica");
    b.stop().await;
}

// ---- 3. Namespace deletion ----

#[test]
fn deleting_a_namespace_removes_it_and_leaves_the_array_empty() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("namespace-deletion", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        install_crds(&client, &steps).await;
        // The Lease lives outside the namespace being deleted: deleting it
        // with the namespace would stop the operator half way.
        let control = create_namespace(&client, "aop-e2e-control").await;
        let outcome = tokio::spawn(namespace_deletion(
            path,
            client.clone(),
            control.clone(),
            steps,
        ))
        .await;
        delete_namespace(&client, &control).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

async fn namespace_deletion(kubeconfig: String, client: Client, control: String, steps: Steps) {
    let sim = IsolatedDsm::start();
    let ns = create_namespace(&client, "aop-e2e-nsdel").await;
    steps.step("Secrets, StorageArray, Luns and a target in the namespace");
    storage_array(&client, &ns, &sim).await;
    let replica = Replica::start(&kubeconfig, "replica-nsdel", &control, &ns).await;
    replica.wait_leading(60).await;
    let (lun_names, target) = luns_and_target(&client, &ns, "nsdel").await;
    let luns: Api<Lun> = Api::namespaced(client.clone(), &ns);
    let targets: Api<IscsiTarget> = Api::namespaced(client.clone(), &ns);
    for lun in &lun_names {
        wait_for(&luns, lun, 180, &format!("Lun {lun} Ready"), is_current()).await;
    }
    wait_for(&targets, &target, 180, "target Ready", is_current()).await;
    let (on_array_luns, on_array_targets) = sim.state.read(|s| (s.luns.len(), s.targets.len()));
    assert_eq!(
        (on_array_luns, on_array_targets),
        (2, 1),
        "objects on the array"
    );

    steps.step("delete the whole namespace");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let uid = within(30, "read namespace", namespaces.get(&ns))
        .await
        .expect("namespace")
        .uid()
        .unwrap_or_default();
    within(
        30,
        "delete namespace",
        namespaces.delete(&ns, &DeleteParams::default()),
    )
    .await
    .expect("delete namespace");
    // What still holds the namespace, printed when the wait fails.
    let report = || {
        let state = sim.state.clone();
        state.read(|s| {
            format!(
                "on the array: LUNs {:?}, targets {:?}",
                s.luns.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
                s.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
            )
        })
    };
    let gone = tokio::time::timeout(
        Duration::from_secs(300),
        kube::runtime::wait::await_condition(namespaces.clone(), &ns, conditions::is_deleted(&uid)),
    )
    .await;
    if !matches!(gone, Ok(Ok(_))) {
        let held = objects_left(&client, &ns).await;
        panic!(
            "namespace {ns} not gone within 300s ({gone:?}); left in it: {held}; {}",
            report()
        );
    }

    steps.step("the array is empty");
    let (left_luns, left_targets) = sim.state.read(|s| (s.luns.len(), s.targets.len()));
    assert_eq!(
        (left_luns, left_targets),
        (0, 0),
        "the namespace is gone but the array still holds objects: {}",
        report()
    );

    steps.step("stop the operator");
    replica.stop().await;
}

/// The objects still in `ns`, with their finalizers and whether they are
/// being deleted, for the message of a namespace that does not go away.
async fn objects_left(client: &Client, ns: &str) -> String {
    let mut out = Vec::new();
    for (api_version, kind) in [
        ("array-operator.io/v1alpha1", "IscsiTarget"),
        ("array-operator.io/v1alpha1", "Lun"),
        ("array-operator.io/v1alpha1", "StorageArray"),
        ("v1", "Secret"),
    ] {
        let probe = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "-"}});
        let (api, _) = api_for(client, ns, &probe);
        match tokio::time::timeout(Duration::from_secs(30), api.list(&ListParams::default())).await
        {
            Ok(Ok(list)) => out.extend(list.items.iter().map(|o| {
                format!(
                    "{kind}/{} finalizers {:?}{}",
                    o.name_any(),
                    o.finalizers(),
                    if o.metadata.deletion_timestamp.is_some() {
                        " (being deleted)"
                    } else {
                        ""
                    }
                )
            })),
            Ok(Err(e)) => out.push(format!("{kind}: list failed: {e}")),
            Err(_) => out.push(format!("{kind}: list not answered within 30s")),
        }
    }
    if out.is_empty() {
        "nothing".to_string()
    } else {
        out.join(", ")
    }
}

// ---- SnapshotSchedule ----

#[test]
fn a_snapshot_schedule_takes_marked_snapshots_and_its_deletion_leaves_them() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("snapshot-schedule", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        install_crds(&client, &steps).await;
        let ns = create_namespace(&client, "aop-e2e-snapsched").await;
        let outcome =
            tokio::spawn(snapshot_schedule(path, client.clone(), ns.clone(), steps)).await;
        delete_namespace(&client, &ns).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

async fn snapshot_schedule(kubeconfig: String, client: Client, ns: String, steps: Steps) {
    use array_operator::crd::SnapshotSchedule;
    let sim = IsolatedDsm::start();
    steps.step("refusal: a cron minute out of range");
    let bad = cr(
        "SnapshotSchedule",
        "bad-minute",
        json!({"arrayRef": {"name": "dsm"}, "schedule": "99 * * * *", "luns": ["x"], "retention": {"maxCount": 1}}),
    );
    assert_invalid(apply(&client, &ns, &bad).await, "spec.schedule", "minute");

    steps.step("a Lun and an every-minute schedule with maxCount 1");
    storage_array(&client, &ns, &sim).await;
    let replica = Replica::start(&kubeconfig, "replica-snapsched", &ns, &ns).await;
    replica.wait_leading(60).await;
    apply(
        &client,
        &ns,
        &cr(
            "Lun",
            "snap-l1",
            json!({"arrayRef": {"name": "dsm"}, "size": "1Gi", "location": "/volume1"}),
        ),
    )
    .await
    .expect("Lun");
    apply(
        &client,
        &ns,
        &cr(
            "SnapshotSchedule",
            "every-minute",
            json!({"arrayRef": {"name": "dsm"}, "schedule": "* * * * *", "luns": ["snap-l1"], "retention": {"maxCount": 1}}),
        ),
    )
    .await
    .expect("SnapshotSchedule");
    let schedules: Api<SnapshotSchedule> = Api::namespaced(client.clone(), &ns);
    wait_for(
        &schedules,
        "every-minute",
        180,
        "SnapshotSchedule Ready",
        is_current(),
    )
    .await;

    steps.step("two due times pass: one marked snapshot kept, the older pruned");
    let newest = |s: Option<&SnapshotSchedule>| {
        s.and_then(|s| s.status.as_ref())
            .and_then(|st| st.snapshots.first())
            .filter(|l| l.count == 1)
            .and_then(|l| l.newest_id.clone())
    };
    wait_for(
        &schedules,
        "every-minute",
        150,
        "a snapshot taken",
        move |s: Option<&SnapshotSchedule>| newest(s).is_some(),
    )
    .await;
    let first = within(30, "read SnapshotSchedule", schedules.get("every-minute"))
        .await
        .expect("schedule");
    let first = newest(Some(&first)).expect("newest id");
    let replaced = first.clone();
    // A new newest id with the count still 1: the next run was taken and
    // the first pruned (maxCount 1).
    wait_for(
        &schedules,
        "every-minute",
        150,
        "the next run replaces the first",
        move |s: Option<&SnapshotSchedule>| newest(s).is_some_and(|id| id != replaced),
    )
    .await;
    let snapshots_on_array = || {
        sim.state.read(|s| {
            s.snapshots
                .iter()
                .map(|x| (x.uuid.clone(), x.description.clone()))
                .collect::<Vec<_>>()
        })
    };
    let on_array = snapshots_on_array();
    assert!(
        !on_array.iter().any(|(id, _)| *id == first),
        "pruned: {on_array:?}"
    );
    assert!(
        on_array
            .iter()
            .all(|(_, d)| d.contains("[array-operator snapsched=") && d.contains("every-minute")),
        "{on_array:?}"
    );

    steps.step("deleting the schedule leaves the snapshots");
    let before = snapshots_on_array();
    let uid = within(30, "read SnapshotSchedule", schedules.get("every-minute"))
        .await
        .expect("schedule")
        .uid()
        .unwrap_or_default();
    within(
        30,
        "delete SnapshotSchedule",
        schedules.delete("every-minute", &DeleteParams::default()),
    )
    .await
    .expect("delete");
    within(
        120,
        "SnapshotSchedule gone",
        kube::runtime::wait::await_condition(
            schedules.clone(),
            "every-minute",
            conditions::is_deleted(&uid),
        ),
    )
    .await
    .expect("watch");
    let left = snapshots_on_array();
    assert!(
        before.iter().all(|b| left.contains(b)),
        "the snapshots stay: before {before:?}, after {left:?}"
    );
    replica.stop().await;
}

// ---- ReplicationPlan ----

#[test]
fn a_replication_plan_syncs_once_per_manual_token_and_its_deletion_leaves_the_plan() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("replication-plan", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        install_crds(&client, &steps).await;
        let ns = create_namespace(&client, "aop-e2e-rplan").await;
        let outcome = tokio::spawn(replication_plan(path, client.clone(), ns.clone(), steps)).await;
        delete_namespace(&client, &ns).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

async fn replication_plan(kubeconfig: String, client: Client, ns: String, steps: Steps) {
    use array_operator::crd::ReplicationPlan;
    const PLAN_ID: &str = "b0c9a9a6-8d0e-4b8e-9a0c-1f2e3d4c5b6a";
    let sim = IsolatedDsm::start();
    steps.step("refusal: a trigger with both a schedule and a manual token");
    let bad = cr(
        "ReplicationPlan",
        "both-triggers",
        json!({"arrayRef": {"name": "dsm"}, "planId": PLAN_ID, "trigger": {"schedule": "@daily", "manual": "t1"}}),
    );
    assert_invalid(
        apply(&client, &ns, &bad).await,
        "spec.trigger",
        "exactly one of schedule or manual",
    );
    let bad = cr(
        "ReplicationPlan",
        "bad-hour",
        json!({"arrayRef": {"name": "dsm"}, "planId": PLAN_ID, "trigger": {"schedule": "0 24 * * *"}}),
    );
    assert_invalid(
        apply(&client, &ns, &bad).await,
        "spec.trigger.schedule",
        "hour",
    );

    steps.step("a manual token starts one sync of the adopted plan");
    storage_array(&client, &ns, &sim).await;
    let replica = Replica::start(&kubeconfig, "replica-rplan", &ns, &ns).await;
    replica.wait_leading(60).await;
    let started = || {
        sim.state.read(|s| {
            s.plans
                .iter()
                .find(|p| p.plan_id == PLAN_ID)
                .map_or(0, |p| p.records.len() + usize::from(p.syncing.is_some()))
        })
    };
    let before = started();
    apply(
        &client,
        &ns,
        &cr(
            "ReplicationPlan",
            "offsite",
            json!({"arrayRef": {"name": "dsm"}, "planId": PLAN_ID, "trigger": {"manual": "t1"}, "lockSnapshot": true, "description": "e2e"}),
        ),
    )
    .await
    .expect("ReplicationPlan");
    let plans: Api<ReplicationPlan> = Api::namespaced(client.clone(), &ns);
    wait_for(
        &plans,
        "offsite",
        120,
        "token t1 acknowledged",
        |p: Option<&ReplicationPlan>| {
            p.and_then(|p| p.status.as_ref())
                .is_some_and(|st| st.last_manual_sync.as_deref() == Some("t1"))
        },
    )
    .await;
    wait_for(&plans, "offsite", 60, "ReplicationPlan Ready", is_current()).await;
    let read = within(30, "read ReplicationPlan", plans.get("offsite"))
        .await
        .expect("plan");
    let value = serde_json::to_value(&read).expect("json");
    let synchronizing = condition(&value, "Synchronizing").expect("Synchronizing condition");
    assert!(
        ["SyncInProgress", "WaitingForManual"]
            .contains(&synchronizing["reason"].as_str().unwrap_or("")),
        "{synchronizing}"
    );
    assert_eq!(
        read.status.as_ref().and_then(|s| s.role.as_deref()),
        Some("mainsite")
    );
    assert_eq!(started(), before + 1, "exactly one sync for t1");

    steps.step("an unknown plan id says so");
    apply(
        &client,
        &ns,
        &cr(
            "ReplicationPlan",
            "unknown",
            json!({"arrayRef": {"name": "dsm"}, "planId": "no-such-plan", "trigger": {"manual": "t1"}}),
        ),
    )
    .await
    .expect("ReplicationPlan unknown");
    wait_for(
        &plans,
        "unknown",
        120,
        "Synced=False naming the plan id",
        |p: Option<&ReplicationPlan>| {
            p.and_then(|p| serde_json::to_value(p).ok())
                .and_then(|v| condition(&v, "Synced"))
                .is_some_and(|c| {
                    c["status"] == "False"
                        && c["message"].as_str().is_some_and(|m| {
                            m.contains("no-such-plan (spec.planId) does not exist")
                        })
                })
        },
    )
    .await;

    steps.step("deleting the ReplicationPlan leaves the DSM plan");
    let uid = read.uid().unwrap_or_default();
    within(
        30,
        "delete ReplicationPlan",
        plans.delete("offsite", &DeleteParams::default()),
    )
    .await
    .expect("delete");
    within(
        120,
        "ReplicationPlan gone",
        kube::runtime::wait::await_condition(
            plans.clone(),
            "offsite",
            conditions::is_deleted(&uid),
        ),
    )
    .await
    .expect("watch");
    assert!(
        sim.state
            .read(|s| s.plans.iter().any(|p| p.plan_id == PLAN_ID)),
        "the DSM plan stays"
    );
    assert_eq!(started(), before + 1, "no sync after t1's");
    replica.stop().await;
}

// ---- VirtualMachine ----

#[test]
fn a_virtual_machine_is_created_once_runs_halts_and_its_deletion_removes_the_guest() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("virtual-machine", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        install_crds(&client, &steps).await;
        let ns = create_namespace(&client, "aop-e2e-vm").await;
        let outcome = tokio::spawn(virtual_machine(path, client.clone(), ns.clone(), steps)).await;
        delete_namespace(&client, &ns).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

async fn virtual_machine(kubeconfig: String, client: Client, ns: String, steps: Steps) {
    use array_operator::crd::VirtualMachine;
    use array_operator::crd::virtual_machine::PrintableStatus;
    use array_operator::sim::dsm::state::Power;
    let sim = IsolatedDsm::start();
    let vm = |run_strategy: &str| {
        cr(
            "VirtualMachine",
            "web-1",
            json!({
                "arrayRef": {"name": "dsm"},
                "storage": "default",
                "cpus": 1,
                "memory": "1Gi",
                "disks": [{"size": "8Gi"}],
                "nics": [{"network": "default"}],
                "runStrategy": run_strategy,
                "stopMode": "PowerOff",
            }),
        )
    };
    steps.step("refusal: a disk both sized and copied from an image");
    let mut bad = vm("Always");
    bad["metadata"]["name"] = json!("both-disk");
    bad["spec"]["disks"] = json!([{"size": "8Gi", "image": "ubuntu"}]);
    assert_invalid(
        apply(&client, &ns, &bad).await,
        "spec.disks",
        "exactly one of size or image",
    );

    steps.step("a guest created once, running and Ready");
    storage_array(&client, &ns, &sim).await;
    let replica = Replica::start(&kubeconfig, "replica-vm", &ns, &ns).await;
    replica.wait_leading(60).await;
    apply(&client, &ns, &vm("Always"))
        .await
        .expect("VirtualMachine");
    let vms: Api<VirtualMachine> = Api::namespaced(client.clone(), &ns);
    wait_for(&vms, "web-1", 240, "VirtualMachine Ready", is_current()).await;
    let guests = || {
        sim.state.read(|s| {
            s.guests
                .iter()
                .filter(|g| g.guest_name == "web-1")
                .map(|g| g.power)
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(guests(), vec![Power::Running], "one guest, running");

    steps.step("runStrategy Halted stops the guest");
    apply(&client, &ns, &vm("Halted")).await.expect("Halted");
    wait_for(
        &vms,
        "web-1",
        180,
        "printableStatus Stopped",
        |v: Option<&VirtualMachine>| {
            v.and_then(|v| v.status.as_ref())
                .and_then(|s| s.printable_status)
                == Some(PrintableStatus::Stopped)
        },
    )
    .await;
    assert_eq!(guests(), vec![Power::Shutdown], "one guest, stopped");

    steps.step("deleting the object deletes the guest");
    let uid = within(30, "read VirtualMachine", vms.get("web-1"))
        .await
        .expect("vm")
        .uid()
        .unwrap_or_default();
    within(
        30,
        "delete VirtualMachine",
        vms.delete("web-1", &DeleteParams::default()),
    )
    .await
    .expect("delete");
    within(
        180,
        "VirtualMachine gone",
        kube::runtime::wait::await_condition(vms.clone(), "web-1", conditions::is_deleted(&uid)),
    )
    .await
    .expect("watch");
    assert!(guests().is_empty(), "the guest went with the object");
    replica.stop().await;
}

// ---- 7. The bad-input table (tests/bad_input/cases.yaml) ----

#[test]
fn the_bad_input_table_is_refused_by_the_apiserver_or_the_operator_with_no_array_write() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("bad-input-table", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        install_crds(&client, &steps).await;
        let ns = create_namespace(&client, "aop-e2e-bad-input").await;
        let outcome = tokio::spawn(bad_input_table(path, client.clone(), ns.clone(), steps)).await;
        delete_namespace(&client, &ns).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

/// The case's manifest, read as kubectl reads it (YAML 1.1).
async fn kubectl_reading(text: &str) -> Value {
    yaml11_doc(text).await
}

/// Every schema case is refused at create (a POST, as `kubectl create`
/// sends; a server-side apply would stop a type error before validation)
/// with 422 and its message. Every engine case is stored, and the operator,
/// run in-process against an isolated DSM and NGXStorage simulator, reports
/// `Synced=False` with its reason and message; neither simulator receives
/// a mutating call, through deletion of every case object.
async fn bad_input_table(kubeconfig: String, client: Client, ns: String, steps: Steps) {
    use support::bad_input::{Refusal, array_manifests, cases, is_mutating};
    use support::e2e::{IsolatedNgx, NGX_TOKEN};

    let ns = ns.as_str();
    let all = cases();
    for case in &all {
        let Refusal::Schema { field, message } = &case.refusal else {
            continue;
        };
        steps.step(format!("schema refusal: {}", case.name));
        let doc = kubectl_reading(&case.manifest_yaml).await;
        let (api, name) = api_for(&client, ns, &doc);
        let object: DynamicObject = serde_json::from_value(doc).expect("object");
        let created = within(30, &format!("create {}/{name}", case.kind()), async {
            api.create(&PostParams::default(), &object).await
        })
        .await;
        assert_invalid(created, field, message);
    }

    steps.step("the arrays: an isolated DSM and NGXStorage simulator");
    let dsm = IsolatedDsm::start();
    let ngx = IsolatedNgx::start();
    use array_operator::crd::Vendor;
    let mut arrays = array_manifests(
        Vendor::Synology,
        &dsm.base_url,
        &dsm.ca_pem,
        json!({"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}),
        None,
    );
    arrays.extend(array_manifests(
        Vendor::NgxStorage,
        &ngx.base_url,
        &ngx.ca_pem,
        json!({"token": NGX_TOKEN}),
        Some(&ngx.owner),
    ));
    for doc in &arrays {
        apply(&client, ns, doc)
            .await
            .unwrap_or_else(|e| panic!("apply {}: {e}", doc["metadata"]["name"]));
    }
    let replica = Replica::start(&kubeconfig, "bad-input", ns, ns).await;
    replica.wait_leading(60).await;
    let storage_arrays: Api<StorageArray> = Api::namespaced(client.clone(), ns);
    for name in ["dsm", "ngx"] {
        steps.step(format!("StorageArray {name} Ready"));
        wait_for(
            &storage_arrays,
            name,
            120,
            &format!("StorageArray {name} Ready"),
            is_current(),
        )
        .await;
    }

    let engine_cases: Vec<_> = all
        .iter()
        .filter(|c| matches!(c.refusal, Refusal::Engine { .. }))
        .collect();
    for case in &engine_cases {
        steps.step(format!("apply engine case {}", case.name));
        for text in &case.with_yaml {
            let doc = kubectl_reading(text).await;
            apply(&client, ns, &doc).await.unwrap_or_else(|e| {
                panic!("{}: the apiserver refused what it needs: {e}", case.name)
            });
        }
        let doc = kubectl_reading(&case.manifest_yaml).await;
        apply(&client, ns, &doc)
            .await
            .unwrap_or_else(|e| panic!("{}: the apiserver refused it: {e}", case.name));
    }
    for case in &engine_cases {
        let Refusal::Engine {
            reason, message, ..
        } = &case.refusal
        else {
            continue;
        };
        steps.step(format!("engine refusal: {} ({reason})", case.name));
        let (api, name) = api_for(&client, ns, &case.manifest);
        let (reason, message) = (reason.clone(), message.clone());
        wait_for(
            &api,
            &name,
            120,
            &format!("{}: Synced=False {reason}", case.name),
            move |obj: Option<&DynamicObject>| {
                obj.and_then(|o| serde_json::to_value(o).ok())
                    .and_then(|v| condition(&v, "Synced"))
                    .is_some_and(|c| {
                        c["status"] == "False"
                            && c["reason"] == reason.as_str()
                            && c["message"]
                                .as_str()
                                .is_some_and(|m| m.contains(message.as_str()))
                    })
            },
        )
        .await;
    }

    steps.step("delete every engine case object (and the objects they need)");
    // Deleted while the operator runs, so the finalizers are released and
    // the namespace can go; the deletions are array calls too.
    let objects: Vec<&Value> = engine_cases
        .iter()
        .flat_map(|c| std::iter::once(&c.manifest).chain(c.with.iter()))
        .filter(|doc| doc["kind"] != "Secret")
        .collect();
    for doc in &objects {
        let (api, name) = api_for(&client, ns, doc);
        let _ = within(30, &format!("delete {name}"), async {
            api.delete(&name, &DeleteParams::default()).await
        })
        .await;
    }
    for doc in &objects {
        let (api, name) = api_for(&client, ns, doc);
        steps.step(format!("{} {name} gone", doc["kind"]));
        wait_for(
            &api,
            &name,
            120,
            &format!("{} {name}: deleted (finalizer released)", doc["kind"]),
            |obj: Option<&DynamicObject>| obj.is_none(),
        )
        .await;
    }

    steps.step("no mutating call on either array");
    for (vendor, log) in [
        (Vendor::Synology, &dsm.calls),
        (Vendor::NgxStorage, &ngx.calls),
    ] {
        let calls = log.calls();
        let mutating: Vec<&str> = calls
            .iter()
            .filter(|c| is_mutating(vendor, c))
            .map(|c| c.operation.as_str())
            .collect();
        println!(
            "{vendor:?}: {} calls, {} mutating",
            calls.len(),
            mutating.len()
        );
        assert!(
            mutating.is_empty(),
            "{vendor:?}: mutating calls {mutating:?}"
        );
    }
    replica.stop().await;
}

// ---- 8. The Helm chart, as `helm install` would send it ----

/// The chart as `helm template` renders it, for release `aop-e2e` in `ns`,
/// read as YAML 1.1 (as Helm's client reads it).
async fn rendered_chart(ns: &str, kube_version: &str, extra: &[&str]) -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let helm = std::env::var("ARRAY_OPERATOR_HELM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join(".ci/tools/helm"));
    let out = std::process::Command::new(&helm)
        .args(["template", "aop-e2e"])
        .arg(root.join("charts/array-operator"))
        .args(["--namespace", ns])
        // What `helm install` learns from the cluster itself.
        .args(["--kube-version", kube_version])
        .args(extra)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {} (bash scripts/install-tools.sh installs it; ARRAY_OPERATOR_HELM names another): {e}",
                helm.display()
            )
        });
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &out.stdout).expect("write rendered chart");
    read_yaml11(vec![file])
        .await
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The chart renders, and the apiserver accepts every object it renders
/// (a server-side dry run: validation, admission and defaulting, nothing
/// stored), with the default values and with every option on, scoped to
/// one namespace. Prometheus Operator kinds are checked only where their
/// CRDs are installed.
#[test]
fn the_chart_renders_objects_the_apiserver_accepts() {
    let Some(path) = kubeconfig() else { return };
    run_with_deadline("chart", DEADLINE, move |steps| async move {
        let client = client(&path).await;
        let ns = create_namespace(&client, "aop-e2e-chart").await;
        let outcome = tokio::spawn(chart_dry_run(client.clone(), ns.clone(), steps)).await;
        delete_namespace(&client, &ns).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

async fn chart_dry_run(client: Client, ns: String, steps: Steps) {
    steps.step("the apiserver's version");
    let version = within(30, "apiserver version", client.apiserver_version())
        .await
        .expect("apiserver version")
        .git_version;
    // `v1.33.1+k3s1` -> `v1.33.1`: Helm parses the SemVer core.
    let version = version.split('+').next().unwrap_or(&version).to_string();
    steps.step("discover the served API resources");
    let discovery = within(
        60,
        "API discovery",
        kube::discovery::Discovery::new(client.clone()).run(),
    )
    .await
    .expect("API discovery");
    let full = format!(
        "{}/charts/array-operator/ci/full-values.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let scoped = format!("watchNamespaces={{{ns}}}");
    let value_sets: [(&str, Vec<&str>); 2] = [
        ("default values", vec![]),
        (
            "every option on, scoped to the test namespace",
            vec![
                "-f",
                full.as_str(),
                "--set",
                scoped.as_str(),
                "--set",
                "watchNamespace=",
            ],
        ),
    ];
    for (label, extra) in value_sets {
        steps.step(format!("helm template ({label})"));
        let docs = rendered_chart(&ns, &version, &extra).await;
        assert!(
            docs.iter().any(|d| d["kind"] == "Deployment"),
            "the chart renders a Deployment ({label})"
        );
        let mut skipped = Vec::new();
        for doc in &docs {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let name = doc["metadata"]["name"].as_str().expect("name").to_string();
            let api_version = doc["apiVersion"].as_str().expect("apiVersion");
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let gvk = kube::api::GroupVersionKind::gvk(group, version, &kind);
            let Some((resource, caps)) = discovery.resolve_gvk(&gvk) else {
                assert_eq!(
                    group, "monitoring.coreos.com",
                    "{kind} {api_version} is not served by this apiserver ({label})"
                );
                skipped.push(kind);
                continue;
            };
            let api: Api<DynamicObject> = match caps.scope {
                kube::discovery::Scope::Namespaced => {
                    Api::namespaced_with(client.clone(), &ns, &resource)
                }
                kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
            };
            let mut doc = doc.clone();
            if caps.scope == kube::discovery::Scope::Namespaced
                && doc["metadata"]["namespace"].is_null()
            {
                doc["metadata"]["namespace"] = json!(ns);
            }
            steps.step(format!("dry-run apply {kind}/{name} ({label})"));
            within(
                30,
                &format!("dry-run apply {kind}/{name}"),
                api.patch(
                    &name,
                    &kube::api::PatchParams::apply("array-operator-e2e")
                        .force()
                        .dry_run(),
                    &kube::api::Patch::Apply(&doc),
                ),
            )
            .await
            .unwrap_or_else(|e| {
                panic!("the apiserver refused {kind}/{name} rendered by the chart ({label}): {e}")
            });
        }
        if !skipped.is_empty() {
            println!("note: not served here, not checked ({label}): {skipped:?}");
        }
    }
}
