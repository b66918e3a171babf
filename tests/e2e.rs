//! End-to-end tests against a real Kubernetes API server. They run only when
//! `ARRAY_OPERATOR_E2E_KUBECONFIG` names a kubeconfig; otherwise each test
//! prints a note and passes without touching anything.
//!
//! What they check is what the apiserver itself does with the generated CRDs:
//! that it accepts them (structural schemas, CEL rules that compile within the
//! cost budget), serves every example back with the defaults applied, and
//! refuses invalid objects with a message naming the field.

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use serde_json::{Value, json};

const FIELD_MANAGER: &str = "array-operator-e2e";

async fn client() -> Option<Client> {
    let Ok(path) = std::env::var("ARRAY_OPERATOR_E2E_KUBECONFIG") else {
        println!("note: ARRAY_OPERATOR_E2E_KUBECONFIG is not set; skipping the end-to-end test");
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("read the e2e kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Some(Client::try_from(config).expect("client"))
}

/// Installs (server-side applies) every generated CRD and waits until the
/// apiserver reports each Established.
async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for (_, crd) in array_operator::crd::generate::all_crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("the apiserver refused CRD {name}: {e}"));
    }
    for (_, crd) in array_operator::crd::generate::all_crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .unwrap_or_else(|_| panic!("CRD {name} not Established within 60s"))
            .expect("watch CRD");
    }
}

/// Runs `body` in a fresh labelled namespace and deletes the namespace
/// afterwards, also when `body` panics (the panic is then re-raised).
async fn in_namespace<F, Fut>(client: &Client, prefix: &str, body: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let name = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"array-operator.io/e2e": "true"}}
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let outcome = tokio::spawn(body(client.clone(), name.clone())).await;
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test body did not finish: {e}");
    }
}

fn api_for(client: &Client, ns: &str, doc: &Value) -> (Api<DynamicObject>, String) {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let kind = doc["kind"].as_str().expect("kind");
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let plural = if kind == "Secret" {
        "secrets".to_string()
    } else {
        format!("{}s", kind.to_lowercase())
    };
    let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
    let name = doc["metadata"]["name"].as_str().expect("name").to_string();
    (Api::namespaced_with(client.clone(), ns, &resource), name)
}

async fn apply(client: &Client, ns: &str, doc: &Value) -> Result<DynamicObject, kube::Error> {
    let (api, name) = api_for(client, ns, doc);
    let mut doc = doc.clone();
    doc["metadata"]["namespace"] = json!(ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&doc),
    )
    .await
}

fn example_docs() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut docs = Vec::new();
    for vendor in ["synology", "ngxstorage"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(vendor))
            .expect("examples dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read example");
            docs.extend(support::yaml_documents(&text));
        }
    }
    docs
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

#[tokio::test]
async fn crds_install_and_every_example_round_trips() {
    let Some(client) = client().await else { return };
    install_crds(&client).await;
    in_namespace(&client, "aop-e2e-examples", examples_round_trip).await;
}

async fn examples_round_trip(client: Client, ns: String) {
    for doc in example_docs() {
        let kind = doc["kind"].as_str().expect("kind").to_string();
        let name = doc["metadata"]["name"].as_str().expect("name").to_string();
        let served = apply(&client, &ns, &doc)
            .await
            .unwrap_or_else(|e| panic!("the apiserver refused example {kind}/{name}: {e}"));
        if kind == "Secret" {
            continue;
        }
        let (api, _) = api_for(&client, &ns, &doc);
        let read = api.get(&name).await.expect("read back");
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
        // The served object is what the Rust types read (defaults included).
        let typed = match kind.as_str() {
            "StorageArray" => {
                serde_json::from_value::<array_operator::crd::StorageArray>(read.clone())
                    .map(|_| ())
            }
            "Lun" => serde_json::from_value::<array_operator::crd::Lun>(read.clone()).map(|_| ()),
            "IscsiTarget" => {
                serde_json::from_value::<array_operator::crd::IscsiTarget>(read.clone()).map(|_| ())
            }
            "SnapshotSchedule" => {
                serde_json::from_value::<array_operator::crd::SnapshotSchedule>(read.clone())
                    .map(|_| ())
            }
            "ReplicationPlan" => {
                serde_json::from_value::<array_operator::crd::ReplicationPlan>(read.clone())
                    .map(|_| ())
            }
            "VirtualMachine" => {
                serde_json::from_value::<array_operator::crd::VirtualMachine>(read.clone())
                    .map(|_| ())
            }
            other => panic!("unexpected kind {other}"),
        };
        typed.unwrap_or_else(|e| {
            panic!("{kind}/{name}: the Rust type cannot read the served object: {e}")
        });
    }
    // Defaults are applied by the apiserver from the schema.
    let luns = Api::<array_operator::crd::Lun>::namespaced(client.clone(), &ns);
    let clone = luns.get("db-data-clone").await.expect("clone");
    assert!(clone.spec.thin_provisioning);
    assert_eq!(
        clone.spec.management_policy,
        array_operator::crd::shared::ManagementPolicy::Manage
    );
}

/// Asserts the apiserver refused with 422 and a message naming `field`.
fn assert_invalid(result: Result<DynamicObject, kube::Error>, field: &str, words: &str) {
    match result {
        Ok(obj) => panic!("accepted an invalid object: {:?}", obj.metadata.name),
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

fn cr(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    })
}

#[tokio::test]
async fn the_apiserver_refuses_invalid_objects_naming_the_field() {
    let Some(client) = client().await else { return };
    install_crds(&client).await;
    in_namespace(&client, "aop-e2e-invalid", refusals).await;
}

async fn refusals(client: Client, ns: String) {
    let ns = ns.as_str();

    // A Lun that shrinks.
    let lun = cr(
        "Lun",
        "shrinks",
        json!({"arrayRef": {"name": "a"}, "size": "10Gi", "location": "/volume1"}),
    );
    apply(&client, ns, &lun).await.expect("create Lun");
    let mut smaller = lun.clone();
    smaller["spec"]["size"] = json!("5Gi");
    assert_invalid(
        apply(&client, ns, &smaller).await,
        "spec.size",
        "may only grow",
    );
    let mut bigger = lun.clone();
    bigger["spec"]["size"] = json!("20Gi");
    apply(&client, ns, &bigger)
        .await
        .expect("growing is allowed");

    // A changed IQN.
    let target = cr(
        "IscsiTarget",
        "fixed-iqn",
        json!({"arrayRef": {"name": "a"}, "iqn": "iqn.2000-01.com.synology:a.t1"}),
    );
    apply(&client, ns, &target).await.expect("create target");
    let mut changed = target.clone();
    changed["spec"]["iqn"] = json!("iqn.2000-01.com.synology:a.t2");
    assert_invalid(apply(&client, ns, &changed).await, "spec.iqn", "immutable");

    // A malformed IQN.
    let malformed = cr(
        "IscsiTarget",
        "bad-iqn",
        json!({"arrayRef": {"name": "a"}, "iqn": "iqn.2000-13.com.synology:t"}),
    );
    assert_invalid(
        apply(&client, ns, &malformed).await,
        "spec.iqn",
        "should match",
    );

    // A bad cron.
    let schedule = cr(
        "SnapshotSchedule",
        "bad-cron",
        json!({"arrayRef": {"name": "a"}, "schedule": "every hour", "luns": ["l"], "retention": {"maxCount": 3}}),
    );
    assert_invalid(
        apply(&client, ns, &schedule).await,
        "spec.schedule",
        "should match",
    );

    // An unknown enum value.
    let policy = cr(
        "Lun",
        "bad-policy",
        json!({"arrayRef": {"name": "a"}, "size": "1Gi", "location": "/volume1", "managementPolicy": "Ignore"}),
    );
    assert_invalid(
        apply(&client, ns, &policy).await,
        "spec.managementPolicy",
        "Unsupported value",
    );

    // Exactly-one rules and create-time-only fields.
    let both = cr(
        "ReplicationPlan",
        "both-triggers",
        json!({"arrayRef": {"name": "a"}, "planId": "1", "trigger": {"schedule": "@daily", "manual": "x"}}),
    );
    assert_invalid(
        apply(&client, ns, &both).await,
        "spec.trigger",
        "exactly one of schedule or manual",
    );
    let mut with_source = lun.clone();
    with_source["spec"]["size"] = json!("20Gi");
    with_source["spec"]["source"] = json!({"lunRef": {"name": "other"}});
    assert_invalid(
        apply(&client, ns, &with_source).await,
        "spec.source",
        "create-time only",
    );
}

// ---- The operator against the cluster, with an in-process simulator ----

use array_operator::crd::{IscsiTarget, Lun};
use array_operator::operator::{Health, LeaderOptions, run_with_client};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSimConfig};
use std::sync::Arc;

fn condition_true(status: Option<serde_json::Value>, type_: &str) -> bool {
    status
        .and_then(|s| s["conditions"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

fn ready<K: serde::Serialize + kube::Resource>(obj: Option<&K>) -> bool {
    obj.map(|o| serde_json::to_value(o).unwrap_or_default()["status"].clone())
        .is_some_and(|s| condition_true(Some(s), "Ready"))
}

async fn wait_ready<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
{
    let cond = await_condition(api.clone(), name, |o: Option<&K>| ready(o));
    tokio::time::timeout(Duration::from_secs(120), cond)
        .await
        .unwrap_or_else(|_| panic!("{name} not Ready within 120s"))
        .expect("watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_converges_luns_and_a_target_and_a_second_replica_stays_follower() {
    let Some(client) = client().await else { return };
    install_crds(&client).await;
    in_namespace(&client, "aop-e2e-operator", operator_flow).await;
}

async fn operator_flow(client: Client, ns: String) {
    let sim = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("simulator");
    let ca = sim.ca_pem().expect("TLS simulator").to_string();
    let secret = |name: &str, data: Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": data});
    apply(
        &client,
        &ns,
        &secret(
            "dsm-credentials",
            json!({"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}),
        ),
    )
    .await
    .expect("credentials");
    apply(&client, &ns, &secret("dsm-ca", json!({"ca.crt": ca})))
        .await
        .expect("CA");
    apply(
        &client,
        &ns,
        &cr(
            "StorageArray",
            "dsm",
            json!({
                "vendor": "Synology", "endpoint": sim.base_url(),
                "credentialsSecretRef": {"name": "dsm-credentials"},
                "tls": {"caSecretRef": {"name": "dsm-ca"}},
                "resyncInterval": "30s"
            }),
        ),
    )
    .await
    .expect("StorageArray");

    // Two replicas on one Lease: the first leads, the second waits.
    let options = |instance: &str| LeaderOptions {
        lease_name: "array-operator-e2e".into(),
        lease_namespace: Some(ns.clone()),
        lease_duration_secs: 15,
        lease_grace_secs: 5,
        instance: instance.into(),
        // Other e2e tests run at the same time in other namespaces: this
        // operator must not put finalizers on their objects.
        watch_namespace: Some(ns.clone()),
    };
    let (stop_a, stop_a_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stop_b_rx) = tokio::sync::oneshot::channel::<()>();
    let health_a = Arc::new(Health::default());
    let health_b = Arc::new(Health::default());
    let a = tokio::spawn(run_with_client(
        client.clone(),
        options("replica-a"),
        health_a.clone(),
        async move {
            let _ = stop_a_rx.await;
        },
    ));
    tokio::time::timeout(Duration::from_secs(60), async {
        while !health_a.is_leading() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("replica a leads within 60s");
    let b = tokio::spawn(run_with_client(
        client.clone(),
        options("replica-b"),
        health_b.clone(),
        async move {
            let _ = stop_b_rx.await;
        },
    ));

    let arrays: Api<array_operator::crd::StorageArray> = Api::namespaced(client.clone(), &ns);
    wait_ready(&arrays, "dsm").await;

    for lun in ["e2e-l1", "e2e-l2"] {
        apply(
            &client,
            &ns,
            &cr(
                "Lun",
                lun,
                json!({"arrayRef": {"name": "dsm"}, "size": "1Gi", "location": "/volume1"}),
            ),
        )
        .await
        .expect("Lun");
    }
    apply(
        &client,
        &ns,
        &cr(
            "IscsiTarget",
            "e2e-t1",
            json!({"arrayRef": {"name": "dsm"}, "luns": ["e2e-l1", "e2e-l2"]}),
        ),
    )
    .await
    .expect("IscsiTarget");
    let luns: Api<Lun> = Api::namespaced(client.clone(), &ns);
    let targets: Api<IscsiTarget> = Api::namespaced(client.clone(), &ns);
    wait_ready(&luns, "e2e-l1").await;
    wait_ready(&luns, "e2e-l2").await;
    wait_ready(&targets, "e2e-t1").await;
    assert!(
        !health_b.is_leading(),
        "the second replica must stay a follower"
    );

    // The array holds what the cluster says, mapped from both sides.
    let state = sim.state();
    assert_eq!(
        state
            .luns()
            .iter()
            .filter(|l| l.name.starts_with("e2e-"))
            .count(),
        2
    );
    let target = state
        .targets()
        .into_iter()
        .find(|t| t.name == "e2e-t1")
        .expect("target on the array");
    assert_eq!(target.mapped.len(), 2);

    // `kubectl get luns` columns, through the Table API.
    let request = http::Request::get(format!(
        "/apis/array-operator.io/v1alpha1/namespaces/{ns}/luns"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .expect("request");
    let table: Value = client.request(request).await.expect("Table");
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
        assert_eq!(cells[4], "True", "READY: {row}");
        assert_eq!(cells[5], "True", "SYNCED: {row}");
        assert!(
            cells[6].as_str().is_some_and(|s| !s.is_empty()),
            "EXTERNAL-ID: {row}"
        );
    }

    // Delete everything; the array is left clean.
    let t = targets.get("e2e-t1").await.expect("target");
    let target_uid = t.metadata.uid.clone().unwrap_or_default();
    targets
        .delete("e2e-t1", &DeleteParams::default())
        .await
        .expect("delete target");
    let gone = await_condition(
        targets.clone(),
        "e2e-t1",
        conditions::is_deleted(&target_uid),
    );
    tokio::time::timeout(Duration::from_secs(120), gone)
        .await
        .expect("target deleted")
        .expect("watch");
    for lun in ["e2e-l1", "e2e-l2"] {
        let l = luns.get(lun).await.expect("lun");
        let lun_uid = l.metadata.uid.clone().unwrap_or_default();
        luns.delete(lun, &DeleteParams::default())
            .await
            .expect("delete lun");
        let gone = await_condition(luns.clone(), lun, conditions::is_deleted(&lun_uid));
        tokio::time::timeout(Duration::from_secs(120), gone)
            .await
            .expect("lun deleted")
            .expect("watch");
    }
    assert!(
        state.luns().iter().all(|l| !l.name.starts_with("e2e-")),
        "LUNs left on the array"
    );
    assert!(
        state.targets().iter().all(|t| t.name != "e2e-t1"),
        "target left on the array"
    );

    let _ = stop_a.send(());
    let _ = stop_b.send(());
    a.await
        .expect("replica a")
        .expect("replica a stopped cleanly");
    // The follower takes the Lease when the leader releases it, then stops.
    b.await
        .expect("replica b")
        .expect("replica b stopped cleanly");
}
