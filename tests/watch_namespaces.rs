//! `run --watch-namespace apps,db`: the operator, run whole against an
//! in-memory API (loopback HTTP, real watch streams) and a DSM simulator,
//! reconciles the StorageArrays and Luns of both watched namespaces to
//! Ready, never touches a third namespace, and never asks for anything
//! cluster-wide (what a Role per namespace allows, the chart's
//! `watchNamespaces`). The per-object readiness gauge shows the objects it
//! watches, and only those.

mod fake_api;

use std::sync::Arc;
use std::time::Duration;

use array_operator::operator::{Health, LeaderOptions, run_with_client};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};
use fake_api::FakeApi;
use serde_json::{Value, json};

const WATCHED: [&str; 2] = ["apps", "db"];
const OTHER: &str = "other";
const GROUP: &str = "/apis/array-operator.io/v1alpha1";

fn path(ns: &str, plural: &str, name: &str) -> String {
    format!("{GROUP}/namespaces/{ns}/{plural}/{name}")
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn client(addr: std::net::SocketAddr) -> kube::Client {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\n    namespace: ops\ncurrent-context: c\n"
    );
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn meta(ns: &str, name: &str) -> Value {
    json!({"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"),
           "generation": 1, "resourceVersion": "1",
           "creationTimestamp": "2026-11-30T10:00:00Z"})
}

/// One StorageArray, its Secrets and one Lun in namespace `ns`.
fn put_namespace(api: &FakeApi, ns: &str, sim: &DsmSim) {
    let secret = |name: &str, data: Value| {
        api.put(
            &format!("/api/v1/namespaces/{ns}/secrets/{name}"),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
                   "data": data}),
        );
    };
    secret(
        "creds",
        json!({"username": b64(DEFAULT_USERNAME), "password": b64(DEFAULT_PASSWORD)}),
    );
    secret("ca", json!({"ca.crt": b64(sim.ca_pem().expect("TLS"))}));
    api.put(
        &path(ns, "storagearrays", "dsm"),
        json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
            "metadata": meta(ns, "dsm"),
            "spec": {"vendor": "Synology", "endpoint": sim.base_url(),
                     "credentialsSecretRef": {"name": "creds"},
                     "tls": {"caSecretRef": {"name": "ca"}},
                     "resyncInterval": "10m"}
        }),
    );
    api.put(
        &path(ns, "luns", "data"),
        json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": meta(ns, "data"),
            // One LUN name per namespace: both live on the one simulator.
            "spec": {"arrayRef": {"name": "dsm"}, "size": "1Gi", "location": "/volume1",
                     "name": format!("data-{ns}")}
        }),
    );
}

fn ready(api: &FakeApi, p: &str) -> bool {
    api.get(p).is_some_and(|o| {
        o["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watched_namespaces_are_served_and_a_third_is_never_touched() {
    let sim = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("simulator");
    let api = FakeApi::default();
    for ns in WATCHED.into_iter().chain([OTHER]) {
        put_namespace(&api, ns, &sim);
    }
    let addr = api.listen("operator").await;
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_with_client(
        client(addr).await,
        LeaderOptions {
            lease_name: "array-operator-leader".into(),
            lease_namespace: Some("ops".into()),
            lease_duration_secs: 15,
            lease_grace_secs: 5,
            instance: "replica-a".into(),
            watch_namespaces: WATCHED.iter().map(|ns| ns.to_string()).collect(),
            array_selector: None,
        },
        Arc::new(Health::default()),
        async move {
            let _ = stop_rx.await;
        },
    ));

    for ns in WATCHED {
        for p in [path(ns, "storagearrays", "dsm"), path(ns, "luns", "data")] {
            tokio::time::timeout(Duration::from_secs(60), async {
                while !ready(&api, &p) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{p} is Ready within 60 s"));
        }
    }
    // The readiness gauge has the watched objects, Ready, once their
    // status writes came back through the watches; the third namespace has
    // no series.
    let want: Vec<String> = WATCHED
        .iter()
        .flat_map(|ns| {
            [("StorageArray", "dsm"), ("Lun", "data")].map(|(kind, name)| {
                format!(
                    "array_operator_object_ready{{kind=\"{kind}\",namespace=\"{ns}\",name=\"{name}\",reason=\"Available\"}} 1"
                )
            })
        })
        .collect();
    let gauge_shows_all = || {
        let text = array_operator::metrics::global().render();
        want.iter().all(|series| text.contains(series))
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        while !gauge_shows_all() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the gauge shows {want:#?} within 30 s:\n{}",
            array_operator::metrics::global().render()
        )
    });
    let text = array_operator::metrics::global().render();
    assert!(!text.contains(&format!("namespace=\"{OTHER}\"")), "{text}");

    let _ = stop.send(());
    task.await.expect("joined").expect("stopped cleanly");

    // The third namespace: no status, no finalizer, no request at all.
    for p in [
        path(OTHER, "storagearrays", "dsm"),
        path(OTHER, "luns", "data"),
    ] {
        let obj = api.get(&p).expect("still there");
        assert!(obj["status"].is_null(), "{p}: {}", obj["status"]);
        assert!(obj["metadata"]["finalizers"].is_null(), "{p}");
    }
    let seen = api.seen();
    let other: Vec<_> = seen
        .iter()
        .filter(|s| s.path.contains(&format!("/namespaces/{OTHER}/")))
        .collect();
    assert!(other.is_empty(), "requests in {OTHER}: {other:#?}");
    // Nothing cluster-wide: every request for a resource names a
    // namespace (`/version` is discovery, which every client may read).
    let cluster_wide: Vec<_> = seen
        .iter()
        .filter(|s| s.path != "/version" && !s.path.contains("/namespaces/"))
        .map(|s| format!("{} {}?{}", s.method, s.path, s.query))
        .collect();
    assert!(
        cluster_wide.is_empty(),
        "cluster-wide requests: {cluster_wide:#?}"
    );
    // And both namespaces were watched, each on its own.
    for ns in WATCHED {
        for plural in ["storagearrays", "luns", "iscsitargets", "secrets"] {
            assert!(
                seen.iter()
                    .any(|s| s.path.ends_with(&format!("/namespaces/{ns}/{plural}"))
                        && s.query.split('&').any(|q| q == "watch=true")),
                "no watch of {plural} in {ns}"
            );
        }
    }
}
