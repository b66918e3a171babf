//! Helpers of the end-to-end suite (tests/e2e.rs): deadlines that fire even
//! when a runtime is wedged, bounded waits that say what they waited for,
//! the CRDs and examples read from their YAML files the way kubectl reads
//! them (YAML 1.1), and a DSM simulator on a runtime of its own.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Client, Config};
use serde_json::{Value, json};

/// Field manager of everything the suite applies.
pub const FIELD_MANAGER: &str = "array-operator-e2e";

/// The kubeconfig of the cluster under test, or `None` (with a note) when
/// `ARRAY_OPERATOR_E2E_KUBECONFIG` is unset.
pub fn kubeconfig() -> Option<String> {
    match std::env::var("ARRAY_OPERATOR_E2E_KUBECONFIG") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            println!(
                "note: ARRAY_OPERATOR_E2E_KUBECONFIG is not set; skipping the end-to-end test"
            );
            None
        }
    }
}

/// A new client (its own connection pool) for the kubeconfig at `path`.
/// Each operator replica gets its own, as separate pods would.
pub async fn client(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read the e2e kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    config.connect_timeout = Some(Duration::from_secs(10));
    Client::try_from(config).expect("client")
}

/// The step a test is in, for the message of a missed deadline.
#[derive(Clone, Default)]
pub struct Steps(Arc<Mutex<String>>);

impl Steps {
    /// Records (and prints) the step now starting.
    pub fn step(&self, what: impl Into<String>) {
        let what = what.into();
        println!(
            "[{}] step: {what}",
            chrono::Utc::now().format("%H:%M:%S%.3f")
        );
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    fn current(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Runs `body` on a multi-threaded runtime of its own thread and fails the
/// test when it has not finished after `limit`, naming the step it was in.
///
/// The deadline is kept by this (the test's) thread, not by a timer of the
/// runtime that runs the test: a worker blocked by synchronous code stops
/// that runtime's timers, and a task parked in a blocked worker's LIFO slot
/// is never stolen by another, so `tokio::time::timeout` inside the same
/// runtime can stay silent for ever (the suite once hung for 13 minutes that
/// way). A panic in `body` fails the test with its own message.
pub fn run_with_deadline<F, Fut>(test: &str, limit: Duration, body: F)
where
    F: FnOnce(Steps) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let steps = Steps::default();
    let (done_tx, done_rx) = mpsc::channel();
    let thread_steps = steps.clone();
    let started = Instant::now();
    std::thread::Builder::new()
        .name(format!("e2e-{test}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("runtime");
            let outcome = runtime.block_on(async move { tokio::spawn(body(thread_steps)).await });
            let _ = done_tx.send(outcome.map_err(|e| {
                if e.is_panic() {
                    e.into_panic()
                } else {
                    Box::new(format!("the test task was cancelled: {e}"))
                }
            }));
            // Tasks the body left behind (watchers, a stopped operator's
            // stragglers) must not hold the test up.
            runtime.shutdown_timeout(Duration::from_secs(5));
        })
        .expect("start the test thread");
    match done_rx.recv_timeout(limit) {
        Ok(Ok(())) => println!("{test}: passed in {:.1?}", started.elapsed()),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!(
            "{test} did not finish within {limit:?}; it was at step: {}",
            steps.current()
        ),
    }
}

/// Awaits `fut` for at most `secs` seconds; panics naming `what` otherwise.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {secs}s"))
}

/// Waits (at most `secs`) until `cond` holds for object `name`.
pub async fn wait_for<K>(api: &Api<K>, name: &str, secs: u64, what: &str, cond: impl Condition<K>)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    within(secs, what, await_condition(api.clone(), name, cond))
        .await
        .unwrap_or_else(|e| panic!("{what}: watching {name} failed: {e}"));
}

/// The Python with PyYAML; the suite reads every YAML file through it, as
/// kubectl would. Panics when it is missing (the e2e suite runs only where
/// it was asked to).
pub fn python() -> String {
    super::yaml11::python().unwrap_or_else(|| {
        panic!(
            "the e2e suite reads YAML as kubectl does, through PyYAML: set ARRAY_OPERATOR_PYTHON \
             (e.g. .ci/.venv/bin/python after `bash scripts/install-tools.sh`)"
        )
    })
}

/// The documents of every YAML file in `files`, read as YAML 1.1 (off the
/// runtime: it runs a Python process).
pub async fn read_yaml11(files: Vec<std::path::PathBuf>) -> Vec<Value> {
    let python = python();
    tokio::task::spawn_blocking(move || {
        let texts: Vec<String> = files
            .iter()
            .map(|f| {
                std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()))
            })
            .collect();
        super::yaml11::load_all(&python, &texts)
            .into_iter()
            .flatten()
            .collect()
    })
    .await
    .expect("PyYAML reader")
}

/// Reads one YAML text (a manifest as a user writes it) as YAML 1.1.
pub async fn yaml11_doc(text: &str) -> Value {
    let python = python();
    let text = text.to_string();
    tokio::task::spawn_blocking(move || super::yaml11::load_all(&python, &[text]))
        .await
        .expect("PyYAML reader")
        .remove(0)
        .remove(0)
}

static CRDS_INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Installs the CRDs the way a user does: the files under `crds/`, read as
/// YAML 1.1, server-side applied; then waits until each is Established.
/// Once per test process (the tests share it).
pub async fn install_crds(client: &Client, steps: &Steps) {
    CRDS_INSTALLED
        .get_or_init(|| async {
            steps.step("install the CRDs from crds/*.yaml (read as YAML 1.1)");
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let files = super::yaml11::yaml_files(&root.join("crds"));
            let docs = read_yaml11(files).await;
            assert_eq!(docs.len(), 6, "six CRDs in crds/");
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let params = PatchParams::apply(FIELD_MANAGER).force();
            for doc in &docs {
                let name = doc["metadata"]["name"]
                    .as_str()
                    .expect("CRD name")
                    .to_string();
                within(
                    60,
                    &format!("apply CRD {name}"),
                    crds.patch(&name, &params, &Patch::Apply(doc)),
                )
                .await
                .unwrap_or_else(|e| panic!("the apiserver refused CRD {name} from crds/: {e}"));
            }
            for doc in &docs {
                let name = doc["metadata"]["name"].as_str().expect("CRD name");
                wait_for(
                    &crds,
                    name,
                    60,
                    &format!("CRD {name} Established"),
                    conditions::is_crd_established(),
                )
                .await;
            }
        })
        .await;
}

/// A fresh labelled namespace named `<prefix>-<random>`.
pub async fn create_namespace(client: &Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"array-operator.io/e2e": "true"}}
    }))
    .expect("namespace");
    within(
        30,
        &format!("create namespace {name}"),
        namespaces.create(&PostParams::default(), &ns),
    )
    .await
    .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    name
}

/// Starts deleting a namespace (best effort: used when a test ends).
pub async fn delete_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        namespaces.delete(name, &DeleteParams::background()),
    )
    .await;
}

/// The dynamic API and object name of a manifest, in namespace `ns`.
pub fn api_for(client: &Client, ns: &str, doc: &Value) -> (Api<DynamicObject>, String) {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let kind = doc["kind"].as_str().expect("kind");
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    // Every kind here pluralises with an `s` (secrets, luns, iscsitargets...).
    let plural = format!("{}s", kind.to_lowercase());
    let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
    let name = doc["metadata"]["name"].as_str().expect("name").to_string();
    (Api::namespaced_with(client.clone(), ns, &resource), name)
}

/// Server-side applies a manifest in `ns` (30 s at most).
pub async fn apply(client: &Client, ns: &str, doc: &Value) -> Result<DynamicObject, kube::Error> {
    let (api, name) = api_for(client, ns, doc);
    let mut doc = doc.clone();
    doc["metadata"]["namespace"] = json!(ns);
    let kind = doc["kind"].as_str().unwrap_or("?").to_string();
    within(
        30,
        &format!("apply {kind}/{name}"),
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&doc),
        ),
    )
    .await
}

/// A custom resource manifest.
pub fn cr(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A Secret manifest with `stringData`.
pub fn secret(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "type": "Opaque", "stringData": data,
    })
}

/// The condition `type_` of an object's JSON form.
pub fn condition(obj: &Value, type_: &str) -> Option<Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// True when `obj` is Ready=True for its current generation and kstatus
/// would call it Current: `status.observedGeneration` is
/// `metadata.generation`, and neither `Reconciling` nor `Stalled` is True.
pub fn kstatus_current(obj: &Value) -> bool {
    let is_true = |t: &str| condition(obj, t).is_some_and(|c| c["status"] == "True");
    is_true("Ready")
        && obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        && !is_true("Reconciling")
        && !is_true("Stalled")
}

/// A condition for [`wait_for`]: Ready and Current per kstatus.
pub fn is_current<K: serde::Serialize>() -> impl Fn(Option<&K>) -> bool {
    |obj: Option<&K>| {
        obj.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| kstatus_current(&v))
    }
}

/// A DSM simulator serving from a runtime on a thread of its own, like an
/// array on the network: nothing the operator or the test does on their
/// runtime can stall it, and it cannot stall them. Stops when dropped.
pub struct IsolatedDsm {
    /// Out-of-band access to the simulated array.
    pub state: array_operator::sim::dsm::StateHandle,
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The CA that signed its certificate (PEM).
    pub ca_pem: String,
    /// Every call it received (shared with the simulator).
    pub calls: array_operator::sim::faults::CallLog,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl IsolatedDsm {
    /// Starts a default simulator (TLS, the default account).
    pub fn start() -> Self {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("e2e-dsm-sim".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("simulator runtime");
                let sim = runtime
                    .block_on(array_operator::sim::dsm::start(
                        array_operator::sim::dsm::DsmSimConfig::default(),
                    ))
                    .expect("simulator");
                let _ = ready_tx.send((
                    sim.state(),
                    sim.base_url(),
                    sim.ca_pem().expect("TLS simulator").to_string(),
                    sim.calls().clone(),
                ));
                // Serve until the handle is dropped (or the test process ends).
                let _ = stop_rx.recv();
                drop(sim);
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("start the simulator thread");
        let (state, base_url, ca_pem, calls) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the simulator starts within 30s");
        IsolatedDsm {
            state,
            base_url,
            ca_pem,
            calls,
            stop: Some(stop_tx),
        }
    }
}

impl Drop for IsolatedDsm {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The token an [`IsolatedNgx`] accepts.
pub const NGX_TOKEN: &str = "e2e-ngx-token-1234";

/// An NGXStorage simulator serving from a runtime on a thread of its own
/// (see [`IsolatedDsm`]). Stops when dropped.
pub struct IsolatedNgx {
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The CA that signed its certificate (PEM).
    pub ca_pem: String,
    /// The controller id mutations must name (controller A).
    pub owner: String,
    /// Every call it received (shared with the simulator).
    pub calls: array_operator::sim::faults::CallLog,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl IsolatedNgx {
    /// Starts a default simulator (TLS, document dialect) accepting
    /// [`NGX_TOKEN`].
    pub fn start() -> Self {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("e2e-ngx-sim".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("simulator runtime");
                let sim = runtime
                    .block_on(array_operator::sim::ngx::NgxSim::start(
                        array_operator::sim::ngx::SimConfig {
                            token: NGX_TOKEN.into(),
                            ..array_operator::sim::ngx::SimConfig::default()
                        },
                    ))
                    .expect("simulator");
                let _ = ready_tx.send((
                    sim.base_url(),
                    sim.ca_pem().expect("TLS simulator"),
                    sim.owners()[0].clone(),
                    sim.calls().clone(),
                ));
                let _ = stop_rx.recv();
                drop(sim);
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("start the simulator thread");
        let (base_url, ca_pem, owner, calls) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the simulator starts within 30s");
        IsolatedNgx {
            base_url,
            ca_pem,
            owner,
            calls,
            stop: Some(stop_tx),
        }
    }
}

impl Drop for IsolatedNgx {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
