//! `array-operator run`: the controllers behind leader election, plus the
//! `/metrics`, `/healthz` and `/readyz` endpoints.
//!
//! Every replica serves the endpoints; only the one holding the
//! `coordination.k8s.io` Lease runs the controllers. A replica that loses
//! the Lease stops its controllers and exits, so Kubernetes restarts it as a
//! follower and two leaders never act on one array.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use futures::FutureExt;
use kube::Client;
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
    /// Only watch this namespace; `None` watches every namespace.
    pub watch_namespace: Option<String>,
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

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
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
    tokio::spawn(async move {
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
        watch_namespace: args.watch_namespace.clone(),
    };
    run_with_client(client, options, health, shutdown_signal()).await
}

/// Runs one replica with a given client until `stop` resolves: waits for
/// the Lease, then runs every controller. The end-to-end tests start two of
/// these in one process.
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
    let lease = format!("{namespace}/{}", options.lease_name);
    tracing::info!(%instance, %lease, "waiting for the leader Lease");

    let manager = LeaseManagerBuilder::new(client.clone(), &options.lease_name)
        .with_namespace(&namespace)
        .with_identity(&instance)
        .with_duration(options.lease_duration_secs)
        .with_grace(options.lease_grace_secs)
        .build()
        .await
        .map_err(|e| RunError::Lease {
            lease: lease.clone(),
            message: e.to_string(),
        })?;
    let (mut leading, lease_task) = manager.watch().await;

    let stop = stop.shared();
    // Wait to lead, or stop while waiting.
    loop {
        if *leading.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() {
                    return Err(RunError::Lease { lease, message: "the lease task ended".into() });
                }
            }
            _ = stop.clone() => {
                drop(leading);
                let _ = lease_task.await;
                return Ok(());
            }
        }
    }
    health.set_leading(true);
    tracing::info!(%instance, %lease, "leading: starting the controllers");

    let ctx = Arc::new(Context::new(client, &instance).watching(options.watch_namespace.clone()));
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let mut watch_leading = leading.clone();
    tokio::spawn(async move {
        while watch_leading.changed().await.is_ok() {
            if !*watch_leading.borrow_and_update() {
                let _ = lost_tx.send(());
                return;
            }
        }
    });
    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = lost.clone();
    let controllers_stop = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                _ = stop => {},
                _ = lost_rx => lost_flag.store(true, Ordering::SeqCst),
            }
        }
        .shared()
    };
    controller::run_all(ctx, controllers_stop).await;
    health.set_leading(false);
    // Closing the channel releases the Lease, so a follower takes over at once.
    drop(leading);
    let _ = lease_task.await;
    if lost.load(Ordering::SeqCst) {
        return Err(RunError::LostLeadership(lease));
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
