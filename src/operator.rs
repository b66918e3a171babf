//! `array-operator run`: the controllers behind leader election, plus the
//! `/metrics`, `/healthz` and `/readyz` endpoints.
//!
//! Every replica serves the endpoints; only the one holding the
//! `coordination.k8s.io` Lease runs the controllers. A replica that loses
//! the Lease stops its controllers and exits, so Kubernetes restarts it as a
//! follower and two leaders never act on one array. On SIGTERM the leader
//! stops its controllers, logs out of the arrays and releases the Lease
//! (its holder emptied), and followers poll the Lease, so a rollout hands
//! over in seconds instead of waiting out the Lease duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;

use crate::cli::RunArgs;
use crate::controller::{self, Context};

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No kubeconfig and not in a cluster, or the API refused the client.
    #[error("connecting to Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The health/metrics address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election on Lease {lease}: {message}")]
    Lease {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What failed.
        message: String,
    },
    /// Leadership was lost while leading; the process exits so it restarts as
    /// a follower.
    #[error("lost the leader Lease {0}; exiting so a restart rejoins as a follower")]
    LostLeadership(String),
}

/// Process health as the endpoints report it.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    leading: AtomicBool,
}

impl Health {
    /// Marks the process ready (the Kubernetes client works).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Records whether this replica leads.
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
    }

    /// True while this replica holds the Lease and runs the controllers.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }
}

/// Leader-election settings of one replica.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace; `None`: $POD_NAMESPACE, else the client's namespace.
    pub lease_namespace: Option<String>,
    /// Seconds a leader holds the Lease without renewing it.
    pub lease_duration_secs: u64,
    /// Seconds before expiry the leader renews.
    pub lease_grace_secs: u64,
    /// This replica's identity.
    pub instance: String,
    /// Only watch these namespaces; empty watches every namespace.
    pub watch_namespaces: Vec<String>,
    /// Serve only the StorageArrays this selects (`--array-selector`);
    /// `None` serves every one.
    pub array_selector: Option<crate::controller::shard::ArraySelector>,
}

/// The `/metrics`, `/healthz` and `/readyz` router.
pub fn endpoints(health: Arc<Health>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|| async { crate::metrics::global().render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    if health.ready.load(Ordering::SeqCst) {
                        let role = if health.leading.load(Ordering::SeqCst) {
                            "leader"
                        } else {
                            "follower"
                        };
                        (StatusCode::OK, format!("ready ({role})"))
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting".to_string())
                    }
                }
            }),
        )
}

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed when
/// this is called, not when the future is first polled: a SIGTERM that
/// arrives while the replica is still starting must stop it, not be lost
/// (or kill it without releasing the Lease).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        {
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = tokio::signal::ctrl_c() => {},
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// This replica's identity: the pod name when the chart sets `POD_NAME`.
pub fn instance_name() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "array-operator".into());
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    })
}

/// Runs the operator until SIGTERM/Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let health = Arc::new(Health::default());
    let listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .map_err(|source| RunError::Bind {
            addr: args.metrics_addr.clone(),
            source,
        })?;
    let server = axum::serve(listener, endpoints(health.clone()));
    let server = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    let client = Client::try_default().await?;
    let options = LeaderOptions {
        lease_name: args.lease_name.clone(),
        lease_namespace: args.lease_namespace.clone(),
        lease_duration_secs: args.lease_duration_secs,
        lease_grace_secs: args.lease_grace_secs,
        instance: instance_name(),
        watch_namespaces: watch_namespaces(&args.watch_namespace),
        array_selector: args.array_selector.clone(),
    };
    let result = run_with_client(client, options, health, shutdown_signal()).await;
    // Nothing may keep the process alive once the replica stopped.
    server.abort();
    result
}

/// The namespaces `--watch-namespace` names, each once, in the order
/// given: blanks (an empty `ARRAY_OPERATOR_WATCH_NAMESPACE`, `a,,b`, a
/// trailing comma) name none. Empty: every namespace.
pub fn watch_namespaces(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for ns in raw.iter().map(|ns| ns.trim()).filter(|ns| !ns.is_empty()) {
        if !out.iter().any(|seen| seen == ns) {
            out.push(ns.to_string());
        }
    }
    out
}

/// How often a follower reads the Lease to see whether the leader released
/// it. kube-lease-manager's follower sleeps until the holder's expiry, so
/// without this a released Lease would sit free for up to its whole
/// duration (client-go's leader election retries every 2 s too).
pub const FOLLOWER_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the controllers get to finish their in-flight reconciles after
/// the stop signal; after that they are dropped (as a crash would: the
/// engine records a create before it sends it), so a stuck array call cannot
/// keep the Lease past a rollout. It also bounds a kube-runtime 5 quirk: a
/// controller stopped before its first list completed waits for a store
/// that never becomes ready, so a SIGTERM right after winning the Lease
/// takes this long.
pub const CONTROLLERS_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long releasing the Lease (and logging out of the arrays) may take on
/// the way out before the process gives up and exits anyway.
pub const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The Lease one replica competes for, and how.
struct LeaseTarget {
    name: String,
    namespace: String,
    /// `namespace/name`, for messages.
    display: String,
}

impl LeaseTarget {
    fn error(&self, message: impl Into<String>) -> RunError {
        RunError::Lease {
            lease: self.display.clone(),
            message: message.into(),
        }
    }
}

/// A running lease manager: the leadership channel and its task. Dropping
/// the receiver makes the task release the Lease.
type Watching = (tokio::sync::watch::Receiver<bool>, LeaseTask);

/// The lease manager's task; it ends after releasing the Lease.
type LeaseTask =
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>;

async fn start_manager(
    client: &Client,
    options: &LeaderOptions,
    target: &LeaseTarget,
) -> Result<Watching, RunError> {
    let manager = LeaseManagerBuilder::new(client.clone(), &target.name)
        .with_namespace(&target.namespace)
        .with_identity(&options.instance)
        .with_duration(options.lease_duration_secs)
        .with_grace(options.lease_grace_secs)
        .build()
        .await
        .map_err(|e| target.error(e.to_string()))?;
    Ok(manager.watch().await)
}

/// Closes the leadership channel and waits (bounded) for the lease task to
/// release the Lease: its holder is emptied, so a follower leads at once.
async fn release(watching: Watching, target: &LeaseTarget) {
    let (leading, task) = watching;
    drop(leading);
    wait_released(task, target).await;
}

/// Waits (bounded) for a lease task whose channel is closed.
async fn wait_released(task: LeaseTask, target: &LeaseTarget) {
    match tokio::time::timeout(RELEASE_TIMEOUT, task).await {
        Ok(Ok(Ok(_))) => tracing::debug!(lease = %target.display, "the Lease is released"),
        Ok(Ok(Err(e))) => {
            tracing::warn!(lease = %target.display, error = %e, "releasing the Lease failed; it expires by itself")
        }
        Ok(Err(e)) => {
            tracing::warn!(lease = %target.display, error = %e, "the lease task failed; the Lease expires by itself")
        }
        Err(_) => tracing::warn!(
            lease = %target.display,
            timeout_secs = RELEASE_TIMEOUT.as_secs(),
            "releasing the Lease did not finish in time; it expires by itself"
        ),
    }
}

/// True when the Lease has no holder (a leader released it). Errors read as
/// "not free": the lease manager keeps waiting for the expiry as before.
async fn lease_is_free(api: &Api<Lease>, name: &str) -> bool {
    match api.get_opt(name).await {
        Ok(Some(lease)) => lease
            .spec
            .and_then(|s| s.holder_identity)
            .is_none_or(|h| h.is_empty()),
        Ok(None) => true,
        Err(e) => {
            tracing::debug!(error = %e, "reading the Lease failed");
            false
        }
    }
}

/// Waits to lead. Returns `None` when `stop` resolved first (the Lease is
/// released then, in case this replica had just won it).
async fn follow(
    client: &Client,
    options: &LeaderOptions,
    target: &LeaseTarget,
    stop: impl std::future::Future<Output = ()> + Clone,
) -> Result<Option<Watching>, RunError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &target.namespace);
    loop {
        let (mut leading, task) = start_manager(client, options, target).await?;
        let mut poll = tokio::time::interval(FOLLOWER_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            if *leading.borrow_and_update() {
                return Ok(Some((leading, task)));
            }
            tokio::select! {
                changed = leading.changed() => {
                    if changed.is_err() {
                        let why = match task.await {
                            Ok(Err(e)) => e.to_string(),
                            _ => "the lease task ended".to_string(),
                        };
                        return Err(target.error(why));
                    }
                }
                _ = stop.clone() => {
                    release((leading, task), target).await;
                    return Ok(None);
                }
                _ = poll.tick() => {
                    if lease_is_free(&leases, &target.name).await && !*leading.borrow() {
                        // The manager believes the old holder until its
                        // expiry; a fresh one reads the Lease and takes it.
                        release((leading, task), target).await;
                        break;
                    }
                }
            }
        }
    }
}

/// Runs one replica with a given client until `stop` resolves: waits for
/// the Lease, then runs every controller. On `stop` the controllers finish
/// (at most [`CONTROLLERS_SHUTDOWN_GRACE`]), the arrays are logged out of,
/// and the Lease is released so a follower leads at once. The end-to-end
/// tests start two of these in one process.
pub async fn run_with_client(
    client: Client,
    options: LeaderOptions,
    health: Arc<Health>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    client.apiserver_version().await?;
    health.set_ready();
    let instance = options.instance.clone();
    let namespace = options
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let target = LeaseTarget {
        display: format!("{namespace}/{}", options.lease_name),
        name: options.lease_name.clone(),
        namespace,
    };
    tracing::info!(%instance, lease = %target.display, "waiting for the leader Lease");

    let stop = stop.shared();
    let Some((mut leading, lease_task)) = follow(&client, &options, &target, stop.clone()).await?
    else {
        tracing::info!("stopped while following");
        return Ok(());
    };
    health.set_leading(true);
    tracing::info!(%instance, lease = %target.display, "leading: starting the controllers");

    if let Some(selector) = &options.array_selector {
        tracing::info!(%selector, "serving only the StorageArrays this label selector matches");
    }
    // One complete set of controllers per watched namespace: nothing an
    // object references (its StorageArray, Secrets, Luns) lies outside its
    // own namespace, so the sets share nothing but the metrics, and each
    // watches with a namespaced Api (what a per-namespace Role allows).
    let scopes: Vec<Option<String>> = if options.watch_namespaces.is_empty() {
        vec![None]
    } else {
        tracing::info!(namespaces = ?options.watch_namespaces, "watching only these namespaces");
        options.watch_namespaces.iter().cloned().map(Some).collect()
    };
    let contexts: Vec<Arc<Context>> = scopes
        .into_iter()
        .map(|scope| {
            Arc::new(
                Context::new(client.clone(), &instance)
                    .watching(scope)
                    .selecting(options.array_selector.clone()),
            )
        })
        .collect();
    // The leadership receiver stays with this task (no clone outlives it):
    // when `release_tx` fires, it is dropped, the channel closes, and the
    // lease task releases the Lease.
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let guard = tokio::spawn(async move {
        let mut lost_tx = Some(lost_tx);
        let mut release_rx = release_rx;
        loop {
            tokio::select! {
                _ = &mut release_rx => break,
                changed = leading.changed(), if lost_tx.is_some() => {
                    let lost_now = changed.is_err() || !*leading.borrow_and_update();
                    if lost_now && let Some(tx) = lost_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        }
        leading
    });
    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = lost.clone();
    let controllers_stop = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                _ = stop => tracing::info!("stop requested: stopping the controllers"),
                _ = lost_rx => {
                    tracing::warn!("lost the Lease: stopping the controllers");
                    lost_flag.store(true, Ordering::SeqCst);
                }
            }
        }
        .shared()
    };
    let deadline = {
        let stopped = controllers_stop.clone();
        async move {
            stopped.await;
            tokio::time::sleep(CONTROLLERS_SHUTDOWN_GRACE).await;
        }
    };
    let controllers = futures::future::join_all(
        contexts
            .iter()
            .map(|ctx| controller::run_all(ctx.clone(), controllers_stop.clone())),
    );
    tokio::select! {
        _ = controllers => {},
        _ = deadline => {
            tracing::warn!(
                grace_secs = CONTROLLERS_SHUTDOWN_GRACE.as_secs(),
                "the controllers did not stop in time; dropping their in-flight reconciles"
            );
            let close_all = futures::future::join_all(contexts.iter().map(|ctx| ctx.arrays.close_all()));
            if tokio::time::timeout(RELEASE_TIMEOUT, close_all).await.is_err() {
                tracing::warn!("logging out of the arrays did not finish in time");
            }
        }
    }
    health.set_leading(false);
    tracing::info!("the controllers stopped: releasing the Lease");
    let _ = release_tx.send(());
    match guard.await {
        Ok(leading) => release((leading, lease_task), &target).await,
        Err(e) => {
            // The receiver died with the task, so the channel is closed.
            tracing::warn!(error = %e, "the leadership watch failed");
            wait_released(lease_task, &target).await;
        }
    }
    if lost.load(Ordering::SeqCst) {
        return Err(RunError::LostLeadership(target.display));
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).to_string())
    }

    #[test]
    fn watch_namespaces_are_repeatable_comma_separated_and_each_named_once() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "array-operator",
            "run",
            "--watch-namespace",
            "apps,db",
            "--watch-namespace",
            "ops",
            "--watch-namespace=apps,",
        ])
        .expect("parses");
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not run: {:?}", cli.command);
        };
        assert_eq!(
            watch_namespaces(&args.watch_namespace),
            ["apps", "db", "ops"]
        );
        // An empty value (the variable set to "") watches every namespace.
        assert!(watch_namespaces(&["".into()]).is_empty());
        assert_eq!(watch_namespaces(&[" a ".into(), "".into()]), ["a"]);
    }

    #[tokio::test]
    async fn readyz_follows_the_process_and_metrics_are_prometheus_text() {
        let health = Arc::new(Health::default());
        let router = endpoints(health.clone());
        assert_eq!(get(router.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(router.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready();
        assert_eq!(
            get(router.clone(), "/readyz").await,
            (StatusCode::OK, "ready (follower)".into())
        );
        health.set_leading(true);
        assert_eq!(get(router.clone(), "/readyz").await.1, "ready (leader)");
        crate::metrics::global().reconciled("Lun", std::time::Duration::from_millis(3));
        let (status, text) = get(router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains("array_operator_reconciles_total{kind=\"Lun\"}"),
            "{text}"
        );
    }
}
