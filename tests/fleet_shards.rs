//! `run --array-selector`: two deployments with disjoint selectors (each
//! its own Lease) run against one in-memory API (loopback HTTP, real watch
//! streams), each array served by its own DSM simulator. Neither ever
//! touches the other's objects (StorageArrays, Luns, IscsiTargets,
//! SnapshotSchedules: status, finalizers, annotations, Events) or array; a StorageArray relabelled into the other shard is taken over
//! there, and the old shard stops without removing anything. Also measures
//! the API reads per reconcile: once the watches have listed, a reconcile
//! makes no GET or LIST (the request log is printed).

mod fake_api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use array_operator::controller::holds::SECRET_FINALIZER;
use array_operator::controller::shard::ArraySelector;
use array_operator::crd::shared::FINALIZER;
use array_operator::operator::{Health, LeaderOptions, run_with_client};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};
use fake_api::{FakeApi, Seen};
use serde_json::{Value, json};

const NS: &str = "apps";
const GROUP: &str = "/apis/array-operator.io/v1alpha1/namespaces/apps";

fn path(plural: &str, name: &str) -> String {
    format!("{GROUP}/{plural}/{name}")
}

fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{name}")
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn client(addr: std::net::SocketAddr) -> kube::Client {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\n    namespace: {NS}\ncurrent-context: c\n"
    );
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn until(what: &str, check: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 60 s"));
}

fn meta(name: &str, extra: Value) -> Value {
    let mut m = json!({"name": name, "namespace": NS, "uid": format!("uid-{name}"),
                       "generation": 1, "resourceVersion": "1",
                       "creationTimestamp": "2026-11-30T10:00:00Z"});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    m
}

fn storage_array(name: &str, shard: &str, sim: &DsmSim, ca: &str) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
        "metadata": meta(name, json!({"labels": {"array-operator.io/shard": shard}})),
        "spec": {"vendor": "Synology", "endpoint": sim.base_url(),
                 // Both arrays share one credentials Secret: its finalizer
                 // must stay while either array exists, whichever shard.
                 "credentialsSecretRef": {"name": "creds"},
                 "tls": {"caSecretRef": {"name": ca}},
                 "resyncInterval": "10m"}
    })
}

fn lun(name: &str, array: &str) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
        "metadata": meta(name, json!({})),
        "spec": {"arrayRef": {"name": array}, "size": "1Gi", "location": "/volume1"}
    })
}

fn target(name: &str, array: &str, luns: &[&str]) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "IscsiTarget",
        "metadata": meta(name, json!({})),
        "spec": {"arrayRef": {"name": array}, "luns": luns}
    })
}

fn schedule(name: &str, array: &str) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "SnapshotSchedule",
        "metadata": meta(name, json!({})),
        "spec": {"arrayRef": {"name": array}, "schedule": "0 3 * * *",
                 "lunSelector": {"matchLabels": {"app": "db"}},
                 "retention": {"maxCount": 3}}
    })
}

fn secret(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": NS, "resourceVersion": "1"},
           "data": data})
}

fn options(shard: &str) -> LeaderOptions {
    LeaderOptions {
        // One Lease per deployment: each shard has its own leader.
        lease_name: format!("array-operator-{shard}"),
        lease_namespace: Some("ops".into()),
        lease_duration_secs: 15,
        lease_grace_secs: 5,
        instance: format!("replica-{shard}"),
        watch_namespaces: vec![NS.into()],
        array_selector: Some(
            ArraySelector::parse(&format!("array-operator.io/shard={shard}")).expect("selector"),
        ),
    }
}

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

fn ready(api: &FakeApi, p: &str) -> bool {
    api.get(p)
        .is_some_and(|o| condition(&o, "Ready").as_deref() == Some("True"))
}

fn finalizers(obj: &Value) -> Vec<String> {
    serde_json::from_value(obj["metadata"]["finalizers"].clone()).unwrap_or_default()
}

/// Waits until `client` has sent nothing but Lease renewals for 300 ms:
/// the reconciles it had in flight are done. (A reconcile that started
/// before a deployment saw a label change may still finish; the move is
/// checked from a settled state.)
async fn settled(api: &FakeApi, client: &str) {
    let busy = || {
        api.seen()
            .iter()
            .filter(|s| s.client == client && !s.path.contains("/leases"))
            .count()
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut before = busy();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = busy();
            if now == before {
                return;
            }
            before = now;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("deployment {client} settles within 20 s"));
}

/// The object a request writes or reads: its path without `/status`, or
/// for an Event, the object it is about.
fn subject(s: &Seen) -> Option<String> {
    if s.path.ends_with("/events") && s.method == "POST" {
        let r = &s.body["regarding"];
        let plural = format!("{}s", r["kind"].as_str()?.to_lowercase());
        return Some(path(&plural, r["name"].as_str()?));
    }
    let p = s.path.strip_suffix("/status").unwrap_or(&s.path);
    Some(p.to_string())
}

/// Requests `client` made about any of `objects` (reads included).
fn touching<'a>(seen: &'a [Seen], client: &str, objects: &[String]) -> Vec<&'a Seen> {
    seen.iter()
        .filter(|s| s.client == client)
        .filter(|s| subject(s).is_some_and(|p| objects.contains(&p)))
        .collect()
}

/// The session names that logged in to a simulator.
fn sessions(sim: &DsmSim) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for call in sim.calls().calls() {
        if call.operation == "SYNO.API.Auth.login"
            && let Some(session) = call.params.get("session")
        {
            *out.entry(session.clone()).or_default() += 1;
        }
    }
    out
}

/// Single-object GETs (not lists or watches) and non-watch lists by
/// `client`, for the reads-per-reconcile numbers.
fn reads(seen: &[Seen], client: &str) -> (usize, usize, usize) {
    let mine = seen
        .iter()
        .filter(|s| s.client == client && s.method == "GET");
    let (mut arrays, mut secrets, mut lists) = (0, 0, 0);
    for s in mine {
        let watch = s.query.split('&').any(|q| q == "watch=true");
        let last = s.path.rsplit('/').next().unwrap_or_default();
        let collection = matches!(
            last,
            "storagearrays"
                | "luns"
                | "iscsitargets"
                | "snapshotschedules"
                | "replicationplans"
                | "virtualmachines"
                | "secrets"
        );
        if collection && !watch {
            lists += 1;
        } else if s.path.contains("/storagearrays/") {
            arrays += 1;
        } else if s.path.contains("/secrets/") {
            secrets += 1;
        }
    }
    (arrays, secrets, lists)
}

/// Status writes (each one reconcile that got as far as writing) by
/// `client`.
fn status_writes(seen: &[Seen], client: &str) -> usize {
    seen.iter()
        .filter(|s| s.client == client && s.method == "PATCH" && s.path.ends_with("/status"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deployments_with_disjoint_selectors_never_touch_each_others_objects() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let sim_a = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("simulator a");
    let sim_b = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("simulator b");
    let api = FakeApi::default();
    api.put(
        &secret_path("creds"),
        secret(
            "creds",
            json!({"username": b64(DEFAULT_USERNAME), "password": b64(DEFAULT_PASSWORD)}),
        ),
    );
    for (name, sim) in [("ca-a", &sim_a), ("ca-b", &sim_b)] {
        api.put(
            &secret_path(name),
            secret(name, json!({"ca.crt": b64(sim.ca_pem().expect("TLS"))})),
        );
    }
    api.put(
        &path("storagearrays", "dsm-a"),
        storage_array("dsm-a", "a", &sim_a, "ca-a"),
    );
    api.put(
        &path("storagearrays", "dsm-b"),
        storage_array("dsm-b", "b", &sim_b, "ca-b"),
    );
    for (shard, array) in [("a", "dsm-a"), ("b", "dsm-b")] {
        api.put(
            &path("luns", &format!("lun-{shard}")),
            lun(&format!("lun-{shard}"), array),
        );
        api.put(
            &path("iscsitargets", &format!("tgt-{shard}")),
            target(&format!("tgt-{shard}"), array, &[&format!("lun-{shard}")]),
        );
        api.put(
            &path("snapshotschedules", &format!("sched-{shard}")),
            schedule(&format!("sched-{shard}"), array),
        );
    }
    let objects_of = |shard: &str| -> Vec<String> {
        vec![
            path("storagearrays", &format!("dsm-{shard}")),
            path("luns", &format!("lun-{shard}")),
            path("iscsitargets", &format!("tgt-{shard}")),
            path("snapshotschedules", &format!("sched-{shard}")),
        ]
    };

    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for shard in ["a", "b"] {
        let addr = api.listen(shard).await;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(run_with_client(
            client(addr).await,
            options(shard),
            Arc::new(Health::default()),
            async move {
                let _ = stop_rx.await;
            },
        )));
    }

    for p in [
        path("luns", "lun-a"),
        path("luns", "lun-b"),
        path("iscsitargets", "tgt-a"),
        path("iscsitargets", "tgt-b"),
        path("storagearrays", "dsm-a"),
        path("storagearrays", "dsm-b"),
    ] {
        until(&format!("{p} is Ready"), || ready(&api, &p)).await;
    }
    for shard in ["a", "b"] {
        let p = path("snapshotschedules", &format!("sched-{shard}"));
        until(&format!("{p} has a status"), || {
            api.get(&p)
                .is_some_and(|o| o["status"]["conditions"].as_array().is_some())
        })
        .await;
    }

    // Each deployment leads on its own Lease.
    for shard in ["a", "b"] {
        let lease = api
            .get(&format!(
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases/array-operator-{shard}"
            ))
            .expect("a Lease per deployment");
        assert_eq!(
            lease["spec"]["holderIdentity"],
            format!("replica-{shard}"),
            "{lease}"
        );
    }

    // Nothing of the other shard's: no read, write, finalizer or Event.
    let seen = api.seen();
    for (me, other) in [("a", "b"), ("b", "a")] {
        let foreign = touching(&seen, me, &objects_of(other));
        assert!(
            foreign.is_empty(),
            "deployment {me} touched {other}'s objects: {:?}",
            foreign
                .iter()
                .map(|s| format!("{} {}", s.method, s.path))
                .collect::<Vec<_>>()
        );
        let own = touching(&seen, me, &objects_of(me));
        assert!(
            own.iter().any(|s| s.path.ends_with("/status")),
            "deployment {me} wrote its own status"
        );
        for p in objects_of(me) {
            let obj = api.get(&p).expect("object");
            if !p.contains("/storagearrays/") {
                assert_eq!(finalizers(&obj), [FINALIZER], "{p}");
            }
        }
    }
    // Each array was logged in to by its own deployment only, and holds only
    // its own shard's LUN.
    for (sim, me) in [(&sim_a, "a"), (&sim_b, "b")] {
        let logins = sessions(sim);
        assert_eq!(
            logins.keys().cloned().collect::<Vec<_>>(),
            [format!("array-operator-replica-{me}")],
            "{logins:?}"
        );
        let names: Vec<String> = sim.state().luns().into_iter().map(|l| l.name).collect();
        assert!(names.contains(&format!("lun-{me}")), "{names:?}");
        let other = if me == "a" { "lun-b" } else { "lun-a" };
        assert!(!names.contains(&other.to_string()), "{names:?}");
    }
    // The shared Secret is held (for both arrays).
    assert!(
        finalizers(&api.get(&secret_path("creds")).expect("creds"))
            .contains(&SECRET_FINALIZER.to_string())
    );

    // Reads per reconcile: make deployment a reconcile its Lun again (a
    // new generation: a resize) and count its reads of StorageArrays and
    // Secrets, and its lists, across that reconcile.
    let test_client = client(api.listen("test").await).await;
    let luns: kube::Api<array_operator::crd::Lun> = kube::Api::namespaced(test_client.clone(), NS);
    let before = api.seen();
    let (arrays_before, secrets_before, lists_before) = reads(&before, "a");
    let writes_before = status_writes(&before, "a");
    luns.patch(
        "lun-a",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"generation": 2}, "spec": {"size": "2Gi"}})),
    )
    .await
    .expect("resize lun-a");
    until("lun-a is resized and observed at generation 2", || {
        api.get(&path("luns", "lun-a")).is_some_and(|o| {
            o["status"]["observedGeneration"] == 2
                && condition(&o, "Ready").as_deref() == Some("True")
        })
    })
    .await;
    let after = api.seen();
    let (arrays_after, secrets_after, lists_after) = reads(&after, "a");
    let writes = status_writes(&after, "a") - writes_before;
    println!(
        "deployment a until converged: {arrays_before} StorageArray GETs, {secrets_before} Secret GETs, {lists_before} LISTs ({writes_before} status writes); \
         the resize ({writes} more status writes, the target's included): {} StorageArray GETs, {} Secret GETs, {} LISTs",
        arrays_after - arrays_before,
        secrets_after - secrets_before,
        lists_after - lists_before
    );
    assert!(writes >= 1);
    assert_eq!(
        (
            arrays_after - arrays_before,
            secrets_after - secrets_before,
            lists_after - lists_before
        ),
        (0, 0, 0),
        "a reconcile reads from the watches' caches, not the API"
    );

    // dsm-a moves to shard b: b takes it over (and its objects), a stops
    // touching it and removes nothing.
    let arrays: kube::Api<array_operator::crd::StorageArray> =
        kube::Api::namespaced(test_client.clone(), NS);
    settled(&api, "a").await;
    let moved_at = api.seen().len();
    arrays
        .patch(
            "dsm-a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"labels": {"array-operator.io/shard": "b"}}}),
            ),
        )
        .await
        .expect("relabel dsm-a");
    luns.create(
        &Default::default(),
        &serde_json::from_value(lun("lun-a2", "dsm-a")).expect("lun"),
    )
    .await
    .expect("create lun-a2");
    until("lun-a2 (on the moved array) is Ready", || {
        ready(&api, &path("luns", "lun-a2"))
    })
    .await;
    until("deployment b has taken lun-a over", || {
        api.seen()[moved_at..].iter().any(|s| {
            s.client == "b" && s.method == "PATCH" && s.path == path("luns", "lun-a") + "/status"
        })
    })
    .await;
    let seen = api.seen();
    let moved: Vec<String> = objects_of("a")
        .into_iter()
        .chain([path("luns", "lun-a2")])
        .collect();
    let late = touching(&seen[moved_at..], "a", &moved);
    let writes: Vec<String> = late
        .iter()
        .filter(|s| s.method != "GET")
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        writes.is_empty(),
        "deployment a wrote to the moved array's objects: {writes:?}"
    );
    assert_eq!(
        finalizers(&api.get(&path("luns", "lun-a")).expect("lun-a")),
        [FINALIZER],
        "the old shard removed nothing"
    );
    assert!(
        sessions(&sim_a).contains_key("array-operator-replica-b"),
        "b logged in to the moved array"
    );
    let names: Vec<String> = sim_a.state().luns().into_iter().map(|l| l.name).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("lun-a")).count(),
        2,
        "lun-a stays one LUN (not recreated) and lun-a2 is made: {names:?}"
    );

    for stop in stops {
        let _ = stop.send(());
    }
    for task in tasks {
        let result = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("stops")
            .expect("task");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// A malformed `--array-selector` stops the operator before it does
/// anything, naming the selector and what is wrong (no cluster needed).
#[test]
fn a_malformed_array_selector_is_refused_at_startup() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_array-operator"))
        .args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--array-selector",
            "shard in (a",
        ])
        .env_remove("ARRAY_OPERATOR_ARRAY_SELECTOR")
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--array-selector"), "{stderr}");
    assert!(
        stderr.contains("label selector \"shard in (a\": a '(' is not closed"),
        "{stderr}"
    );
}
