//! Deletion order through the running StorageArray controller: its watches
//! over an in-memory API (loopback HTTP, real watch streams). A deleted
//! StorageArray stays while a Lun names it, and the moment the Lun goes, the
//! controller wakes (no polling), releases the credentials Secret (keeping
//! a user's own finalizer) and then the StorageArray, which the API removes.

mod fake_api;

use std::sync::Arc;
use std::time::Duration;

use array_operator::controller::Context;
use array_operator::controller::holds::{IN_USE_FINALIZER, SECRET_FINALIZER};
use fake_api::FakeApi;
use serde_json::{Value, json};

const SA: &str = "/apis/array-operator.io/v1alpha1/namespaces/ns1/storagearrays/dsm1";
const LUN: &str = "/apis/array-operator.io/v1alpha1/namespaces/ns1/luns/db";
const CREDS: &str = "/api/v1/namespaces/ns1/secrets/creds";

async fn client(addr: std::net::SocketAddr) -> kube::Client {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\n    namespace: ns1\ncurrent-context: c\n"
    );
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn until(what: &str, check: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 20 s"));
}

fn finalizers(obj: &Value) -> Vec<String> {
    serde_json::from_value(obj["metadata"]["finalizers"].clone()).unwrap_or_default()
}

fn reconciling_reason(api: &FakeApi) -> Option<String> {
    let sa = api.get(SA)?;
    sa["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Reconciling")
        .and_then(|c| c["reason"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_array_waits_for_its_lun_then_releases_its_secret_and_goes() {
    let api = FakeApi::default();
    api.put(
        SA,
        json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
            "metadata": {"name": "dsm1", "namespace": "ns1", "uid": "sa-uid", "generation": 1,
                         "resourceVersion": "1", "finalizers": [IN_USE_FINALIZER],
                         "deletionTimestamp": "2026-11-30T10:00:00Z"},
            // Nothing listens there: the array is unreachable, which must
            // not stop the deletion order.
            "spec": {"vendor": "Synology", "endpoint": "https://127.0.0.1:9",
                     "credentialsSecretRef": {"name": "creds"}}
        }),
    );
    api.put(
        CREDS,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "ns1", "resourceVersion": "1",
                         "finalizers": [SECRET_FINALIZER, "user.example/keep"]},
            "data": {"username": "YWRtaW4=", "password": "c2VjcmV0LXBhc3N3b3Jk"}
        }),
    );
    api.put(
        LUN,
        json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": {"name": "db", "namespace": "ns1", "uid": "lun-uid", "resourceVersion": "1"},
            "spec": {"arrayRef": {"name": "dsm1"}, "size": "1Gi"}
        }),
    );
    let addr = api.listen("operator").await;
    let ctx = Arc::new(Context::new(client(addr).await, "test").watching(Some("ns1".into())));
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(array_operator::controller::storage_array::run(
        ctx,
        async move {
            let _ = stop_rx.await;
        },
    ));

    // Held: the status says what it waits for; nothing is released.
    until("the StorageArray says it waits for the Lun", || {
        reconciling_reason(&api).as_deref() == Some("WaitingForReferrers")
    })
    .await;
    assert_eq!(finalizers(&api.get(SA).expect("SA")), [IN_USE_FINALIZER]);
    assert_eq!(
        finalizers(&api.get(CREDS).expect("Secret")),
        [SECRET_FINALIZER, "user.example/keep"]
    );

    // The Lun goes: the watch wakes the controller, which releases.
    api.delete(LUN);
    until("the StorageArray is gone", || api.get(SA).is_none()).await;
    assert_eq!(
        finalizers(&api.get(CREDS).expect("the Secret stays (a user holds it)")),
        ["user.example/keep"]
    );
    // The Secret was released before the StorageArray let go. (A reconcile
    // racing the removal may repeat the StorageArray's patch from a stale
    // store: its resourceVersion precondition makes that a harmless
    // refusal.)
    let mut order: Vec<String> = api
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH" && (s.path == SA || s.path == CREDS))
        .map(|s| s.path)
        .collect();
    order.dedup();
    assert_eq!(order, [CREDS, SA]);

    stop.send(()).expect("running");
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops")
        .expect("controller task");
}
