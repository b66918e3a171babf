//! SIGTERM hands the Lease over: the leader stops, releases the Lease (its
//! holder emptied) and returns within seconds, and the follower leads at
//! once instead of waiting out the Lease duration. Runs two replicas
//! against an in-memory API over the real kube client.

mod fake_api;

use std::sync::Arc;
use std::time::{Duration, Instant};

use array_operator::operator::{Health, LeaderOptions, run_with_client};
use fake_api::FakeApi;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/array-operator-leader";

fn options(instance: &str) -> LeaderOptions {
    LeaderOptions {
        lease_name: "array-operator-leader".into(),
        lease_namespace: Some("ops".into()),
        // Long enough that an unreleased Lease could not explain a quick
        // handover: the follower would wait up to 30 s for it to expire.
        lease_duration_secs: 30,
        lease_grace_secs: 5,
        instance: instance.into(),
        watch_namespaces: vec!["apps".into()],
        array_selector: None,
    }
}

fn holder(api: &FakeApi) -> Option<String> {
    api.get(LEASE)
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

/// True once every list `client` made of the kinds the controllers watch
/// was followed by its watch: every first list is done, so every store is
/// ready (a controller stopped before that waits for its store until the
/// shutdown grace runs out).
fn controllers_watching(api: &FakeApi, client: &str) -> bool {
    let seen = api.seen();
    [
        "storagearrays",
        "luns",
        "iscsitargets",
        "snapshotschedules",
        "replicationplans",
        "virtualmachines",
        "secrets",
    ]
    .iter()
    .all(|plural| {
        let on_collection: Vec<_> = seen
            .iter()
            .filter(|s| s.client == client && s.path.ends_with(&format!("/{plural}")))
            .collect();
        let watches = on_collection
            .iter()
            .filter(|s| s.query.split('&').any(|q| q == "watch=true"))
            .count();
        watches >= 1 && watches * 2 >= on_collection.len()
    })
}

async fn until(what: &str, limit: Duration, check: impl Fn() -> bool) {
    tokio::time::timeout(limit, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within {limit:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lease_and_the_follower_leads_at_once() {
    let api = FakeApi::default();
    let (stop_a, stop_a_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stop_b_rx) = tokio::sync::oneshot::channel::<()>();
    let health_a = Arc::new(Health::default());
    let health_b = Arc::new(Health::default());
    let a = tokio::spawn(run_with_client(
        api.client_named("a"),
        options("replica-a"),
        health_a.clone(),
        async move {
            let _ = stop_a_rx.await;
        },
    ));
    until("replica a leads", Duration::from_secs(10), || {
        health_a.is_leading()
    })
    .await;
    assert_eq!(holder(&api).as_deref(), Some("replica-a"));
    until(
        "replica a's controllers watch",
        Duration::from_secs(10),
        || controllers_watching(&api, "a"),
    )
    .await;
    let b = tokio::spawn(run_with_client(
        api.client_named("b"),
        options("replica-b"),
        health_b.clone(),
        async move {
            let _ = stop_b_rx.await;
        },
    ));
    // b is a follower: it read the Lease (held by a, 30 s to go) and waits.
    until("replica b reads the Lease", Duration::from_secs(10), || {
        api.seen()
            .iter()
            .any(|s| s.client == "b" && s.method == "GET" && s.path == LEASE)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!health_b.is_leading());

    let stopped_at = Instant::now();
    stop_a.send(()).expect("replica a is running");
    let result = tokio::time::timeout(Duration::from_secs(5), a)
        .await
        .expect("replica a returns within 5 s of the stop signal")
        .expect("replica a task");
    assert!(result.is_ok(), "{result:?}");
    assert!(!health_a.is_leading());
    // The release is the last thing replica a did: its holder is emptied
    // (unless b already took it).
    let released = api.seen().iter().any(|s| {
        s.client == "a"
            && s.method == "PATCH"
            && s.path == LEASE
            && s.body["spec"].get("holderIdentity") == Some(&serde_json::Value::Null)
    });
    assert!(released, "replica a never emptied the Lease holder");
    assert_ne!(holder(&api).as_deref(), Some("replica-a"));

    until(
        "replica b leads within 5 s of replica a's stop",
        Duration::from_secs(5).saturating_sub(stopped_at.elapsed()),
        || health_b.is_leading(),
    )
    .await;
    assert_eq!(holder(&api).as_deref(), Some("replica-b"));
    println!(
        "handover took {} ms after the stop signal",
        stopped_at.elapsed().as_millis()
    );

    // The new leader stops too, and releases again.
    until(
        "replica b's controllers watch",
        Duration::from_secs(10),
        || controllers_watching(&api, "b"),
    )
    .await;
    stop_b.send(()).expect("replica b is running");
    let result = tokio::time::timeout(Duration::from_secs(5), b)
        .await
        .expect("replica b returns within 5 s")
        .expect("replica b task");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(holder(&api), None);
}

/// A stop right after winning the Lease, before the controllers' first
/// lists: kube-runtime's controllers then wait for their stores, and the
/// shutdown grace bounds it. The Lease is released all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_winning_the_lease_is_bounded_by_the_grace() {
    use array_operator::operator::{CONTROLLERS_SHUTDOWN_GRACE, RELEASE_TIMEOUT};
    let api = FakeApi::default();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let health = Arc::new(Health::default());
    let task = tokio::spawn(run_with_client(
        api.client_named("d"),
        options("replica-d"),
        health.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    until("replica d leads", Duration::from_secs(10), || {
        health.is_leading()
    })
    .await;
    let stopped_at = Instant::now();
    stop.send(()).expect("running");
    let limit = CONTROLLERS_SHUTDOWN_GRACE + RELEASE_TIMEOUT + Duration::from_secs(1);
    let result = tokio::time::timeout(limit, task)
        .await
        .expect("bounded by the shutdown grace")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(holder(&api), None, "the Lease is released");
    println!("an early stop took {} ms", stopped_at.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_stops_at_once_and_leaves_the_leaders_lease_alone() {
    let api = FakeApi::default();
    api.put(
        LEASE,
        serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "array-operator-leader", "namespace": "ops", "resourceVersion": "1"},
            "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 30,
                     "acquireTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                     "renewTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)}
        }),
    );
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let health = Arc::new(Health::default());
    let task = tokio::spawn(run_with_client(
        api.client_named("c"),
        options("replica-c"),
        health.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    until("replica c reads the Lease", Duration::from_secs(10), || {
        api.seen()
            .iter()
            .any(|s| s.client == "c" && s.method == "GET" && s.path == LEASE)
    })
    .await;
    stop.send(()).expect("running");
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("a follower returns within 5 s")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(!health.is_leading());
    assert_eq!(holder(&api).as_deref(), Some("someone-else"));
}

/// The binary itself: `array-operator run` leads, and SIGTERM makes the
/// process exit (nothing left keeping the runtime alive) after releasing the
/// Lease.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_exits_on_sigterm_and_releases_the_lease() {
    let api = FakeApi::default();
    let addr = api.listen("binary").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\n    namespace: ops\ncurrent-context: c\n"
        ),
    )
    .expect("kubeconfig");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_array-operator"))
        .args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--lease-namespace",
            "ops",
            "--watch-namespace",
            "apps",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAME", "binary-a")
        .env_remove("POD_NAMESPACE")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env(
            "RUST_LOG",
            "info,array_operator=debug,kube_lease_manager=debug",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .spawn()
        .expect("start the operator");
    until("the binary leads", Duration::from_secs(20), || {
        holder(&api).as_deref() == Some("binary-a")
    })
    .await;
    until(
        "the binary's controllers watch",
        Duration::from_secs(10),
        || controllers_watching(&api, "binary"),
    )
    .await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let stopped_at = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if stopped_at.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
            panic!("the process did not exit within 5 s of SIGTERM; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    assert_eq!(holder(&api), None, "the Lease is released");
    println!(
        "the process exited {} ms after SIGTERM",
        stopped_at.elapsed().as_millis()
    );
}
