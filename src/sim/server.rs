//! The loopback HTTP(S) server both simulators run on.
//!
//! It serves an axum [`Router`] over HTTP/1.1, optionally behind TLS, and lets
//! a handler close the connection without answering (a dropped connection or a
//! crash after acting) by putting [`DropConnection`] in the response
//! extensions. A test can stop a server and start another on the same state,
//! which is how a simulator "restarts".

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// Response extension: close the connection instead of sending this response.
#[derive(Clone, Copy, Debug, Default)]
pub struct DropConnection;

/// The error a connection ends with when a handler asked for a drop.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by simulator fault injection")]
struct Dropped;

/// Failure to start a simulator server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running simulator server. Dropping it stops it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `https://127.0.0.1:PORT` or `http://...`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, closes every open connection, and waits for the
    /// accept loop to end. Like a power cut: in-flight requests get no answer.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (for the `simulate` command).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Binds `addr` and serves `router` on it, with TLS when `tls` is given.
pub async fn serve(
    addr: &str,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<ServerHandle, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let (stop, stop_rx) = watch::channel(false);
    let is_tls = tls.is_some();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(accept_loop(listener, router, acceptor, stop_rx));
    Ok(ServerHandle {
        addr: local,
        tls: is_tls,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let mut conn_stop = stop.clone();
        connections.spawn(async move {
            let work = async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls_stream) = acceptor.accept(stream).await {
                            serve_connection(TokioIo::new(tls_stream), router).await;
                        }
                    }
                    None => serve_connection(TokioIo::new(stream), router).await,
                }
            };
            tokio::select! {
                _ = conn_stop.changed() => {},
                _ = work => {},
            }
        });
        // Reap finished connections so a long demo does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

async fn serve_connection<I>(io: I, router: Router)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let resp = match router.oneshot(req.map(axum::body::Body::new)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if resp.extensions().get::<DropConnection>().is_some() {
                return Err(Dropped);
            }
            Ok::<_, Dropped>(resp)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

/// Makes an axum response that the server turns into a dropped connection.
pub fn dropped_response() -> axum::response::Response {
    let mut resp = axum::response::Response::new(axum::body::Body::empty());
    resp.extensions_mut().insert(DropConnection);
    resp
}

/// Marks an existing response so that it is never sent.
pub fn drop_after(mut resp: axum::response::Response) -> axum::response::Response {
    resp.extensions_mut().insert(DropConnection);
    resp
}
