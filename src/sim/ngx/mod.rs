//! NGXStorage simulator: a strict, in-memory NGXStorage array speaking REST
//! API v2 in either dialect (see `crate::array::ngxstorage::dialect`).
//!
//! Run it with `array-operator simulate ngx` or in-process with
//! [`NgxSim::start`].
//!
//! # Seed
//! A fresh simulator holds (ids in [`seed`]):
//! - pools `pool1` (10 TiB, flash) and `pool2` (2 TiB), owned by `<tag>_A`;
//! - the default auth group `1`, `DefaultAuthGroup`;
//! - one portal group `pg1` listening on 127.0.0.1;
//! - no LUNs, targets, snapshots or schedules.
//!
//! The pair's controller ids are `<tag>_A` and `<tag>_B` (`--owner` sets the
//! tag, default `SIM0001`); a mutation whose `owner` is neither is refused.
//!
//! # Answers
//! - A missing or wrong bearer token: HTTP 401 `{"code":5000}`.
//! - A body, query or path id that breaks the document's tables: HTTP 400,
//!   the message naming the field and the rule.
//! - Unknown ids: 5011 (LUN, snapshot, pool, portal group, schedule), 521
//!   (target), 611 (auth group, initiator, CHAP); unknown paths: a code-less 404.
//! - Duplicates: 710 (LUN name, mapping, initiator), 522 (snapshot name),
//!   519 (auth group name), 525 (target name).
//! - Deleting a LUN mapped to a target, a LUN whose snapshot has a live
//!   clone, an auth group or portal group a target uses, or a snapshot with
//!   a clone: 534. Deleting a clone frees its snapshot.
//! - The sdk dialect answers in the shapes the vendor's Go SDK decodes
//!   (strings where its types hold strings, `thin_provision` /
//!   `deduplication` / `compression`, `volume_name`, the schedule as
//!   `interval` / `retention` / `enabled`, the pool overview as an object)
//!   and takes what it sends (AddCHAP without owner, the schedule body,
//!   portal group create and delete).
//! - `PATCH lun/{id}` reads `size` as the dialect says (document: total,
//!   sdk: increment) unless [`SimState::set_resize_delta`] says otherwise.
//! - Not enough pool space for a full LUN: HTTP 507.
//! - A fault of kind `ErrorCode` answers HTTP 200 with the envelope, so a
//!   client must read the envelope whatever the status.
//!
//! Fault and call-log operation keys are `METHOD /path-template` in the
//! served dialect, e.g. `POST /lun/` ([`Endpoint::op_key`]).

pub mod handlers;
pub mod seed;
pub mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;

use crate::array::ngxstorage::dialect::{Dialect, Endpoint};
use crate::sim::faults::{CallLog, FaultAction, FaultRule, Faults};
use crate::sim::server::{ServeError, ServerHandle, serve};
use crate::sim::tls::{SimTls, SimTlsError};

pub use state::{ArrayState, SimState};

/// Flags of `array-operator simulate ngx`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Address to listen on; loopback only by default.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Serve HTTPS with a throwaway CA (see --ca-out).
    #[arg(long)]
    pub tls: bool,
    /// Write the throwaway CA certificate (PEM) here, for clients to trust.
    #[arg(long, requires = "tls")]
    pub ca_out: Option<PathBuf>,
    /// The bearer token the simulator accepts.
    #[arg(long, default_value = "sim-token", env = "NGX_SIM_TOKEN")]
    pub token: String,
    /// Service tag: the controller ids are `<TAG>_A` and `<TAG>_B`.
    #[arg(long = "owner", default_value = "SIM0001")]
    pub owner_tag: String,
    /// Which description of the API to serve: document or sdk.
    #[arg(long, default_value = "document", value_parser = ["document", "sdk"])]
    pub dialect: String,
    /// What `status/cluster` reports for this controller (Master, Ready, ...).
    #[arg(long, default_value = "Master")]
    pub cluster_status: String,
    /// Latency added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fault rule `OPERATION[@NTH]=ACTION`, repeatable. OPERATION is
    /// `METHOD /path-template` (e.g. `POST /lun/`) or `*`; NTH is the 1-based
    /// call that fails (omitted: every call); ACTION is `busy` (725),
    /// `code:N`, `http:STATUS`, `drop-before` or `drop-after`.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
}

/// Failure of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The listen address could not be bound.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// TLS material could not be made.
    #[error(transparent)]
    Tls(#[from] SimTlsError),
    /// A flag value is malformed.
    #[error("--{flag}: {problem}")]
    BadFlag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The CA file could not be written.
    #[error("--ca-out {path}: {source}")]
    CaOut {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How to start one simulator instance.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Listen address (`127.0.0.1:0` picks a port).
    pub listen: String,
    /// Dialect served.
    pub dialect: Dialect,
    /// Accepted bearer token.
    pub token: String,
    /// Service tag (`<tag>_A`, `<tag>_B`); ignored when `state` is given.
    pub owner_tag: String,
    /// Serve HTTPS.
    pub tls: bool,
    /// Reuse this TLS material (so one CA covers both of an HA pair).
    pub tls_material: Option<SimTls>,
    /// What `status/cluster` reports.
    pub cluster_status: String,
    /// Share this state (an HA peer); a fresh seed when `None`.
    pub state: Option<SimState>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: "127.0.0.1:0".into(),
            dialect: Dialect::Document,
            token: "sim-token".into(),
            owner_tag: "SIM0001".into(),
            tls: true,
            tls_material: None,
            cluster_status: "Master".into(),
            state: None,
        }
    }
}

/// A running (or stopped, restartable) simulator instance.
#[derive(Debug)]
pub struct NgxSim {
    ctx: handlers::Ctx,
    tls: Option<SimTls>,
    server: Option<ServerHandle>,
    last_addr: String,
    base_url: String,
}

impl NgxSim {
    /// Starts an instance.
    pub async fn start(config: SimConfig) -> Result<NgxSim, SimulateError> {
        let tls = match (config.tls, config.tls_material) {
            (false, _) => None,
            (true, Some(m)) => Some(m),
            (true, None) => Some(SimTls::generate()?),
        };
        let ctx = handlers::Ctx {
            dialect: config.dialect,
            token: Arc::from(config.token.as_str()),
            state: config
                .state
                .unwrap_or_else(|| SimState::new(seed::seed(&config.owner_tag))),
            faults: Faults::default(),
            calls: CallLog::default(),
            cluster_status: Arc::new(Mutex::new(config.cluster_status)),
            in_flight: Arc::default(),
        };
        let mut sim = NgxSim {
            ctx,
            tls,
            server: None,
            last_addr: config.listen.clone(),
            base_url: String::new(),
        };
        sim.bind(&config.listen).await?;
        Ok(sim)
    }

    async fn bind(&mut self, listen: &str) -> Result<(), SimulateError> {
        let router = Router::new()
            .fallback(handlers::dispatch)
            .with_state(self.ctx.clone());
        let server = serve(
            listen,
            router,
            self.tls.as_ref().map(|t| t.server_config.clone()),
        )
        .await?;
        self.last_addr = server.addr().to_string();
        self.base_url = server.base_url();
        self.server = Some(server);
        Ok(())
    }

    /// A config for an HA peer: same state, same CA, its own faults and log.
    pub fn peer_config(&self, cluster_status: &str) -> SimConfig {
        SimConfig {
            dialect: self.ctx.dialect,
            token: self.ctx.token.to_string(),
            tls: self.tls.is_some(),
            tls_material: self.tls.clone(),
            cluster_status: cluster_status.into(),
            state: Some(self.ctx.state.clone()),
            ..SimConfig::default()
        }
    }

    /// `https://127.0.0.1:PORT` (or `http://`), of the last bind.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The CA certificate clients trust (PEM), when serving HTTPS.
    pub fn ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.ca_pem.clone())
    }

    /// The fault plan.
    pub fn faults(&self) -> &Faults {
        &self.ctx.faults
    }

    /// The call log.
    pub fn calls(&self) -> &CallLog {
        &self.ctx.calls
    }

    /// The array state, for out-of-band reads and changes.
    pub fn state(&self) -> &SimState {
        &self.ctx.state
    }

    /// The dialect served.
    pub fn dialect(&self) -> Dialect {
        self.ctx.dialect
    }

    /// The two controller ids.
    pub fn owners(&self) -> [String; 2] {
        self.ctx.state.read(|s| s.owners())
    }

    /// The operation key of an endpoint in the served dialect.
    pub fn op(&self, endpoint: Endpoint) -> String {
        endpoint.op_key(self.ctx.dialect)
    }

    /// How many calls of an endpoint this instance received.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.ctx.calls.count(&self.op(endpoint))
    }

    /// The most requests this instance handled at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.ctx.in_flight.max()
    }

    /// Changes what `status/cluster` reports (a failover).
    pub fn set_cluster_status(&self, status: &str) {
        let mut s = self
            .ctx
            .cluster_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *s = status.to_string();
    }

    /// Stops serving (connections close, state kept).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Serves again on the same state: at `listen`, or the last address.
    pub async fn restart(&mut self, listen: Option<&str>) -> Result<(), SimulateError> {
        self.stop().await;
        let addr = listen
            .map(str::to_string)
            .unwrap_or_else(|| self.last_addr.clone());
        self.bind(&addr).await
    }

    /// Waits until the server stops.
    pub async fn wait(mut self) {
        if let Some(server) = self.server.take() {
            server.wait().await;
        }
    }
}

/// Starts an instance (the same as [`NgxSim::start`]).
pub async fn start(config: SimConfig) -> Result<NgxSim, SimulateError> {
    NgxSim::start(config).await
}

/// Parses `OPERATION[@NTH]=ACTION`.
pub fn parse_fault(spec: &str) -> Result<FaultRule, SimulateError> {
    let bad = |problem: String| SimulateError::BadFlag {
        flag: "fault",
        problem,
    };
    let (target, action) = spec
        .rsplit_once('=')
        .ok_or_else(|| bad(format!("{spec:?}: expected OPERATION[@NTH]=ACTION")))?;
    let (operation, nth) = match target.rsplit_once('@') {
        Some((op, n)) => (
            op,
            n.parse::<u64>()
                .map_err(|_| bad(format!("{spec:?}: NTH must be a number")))?,
        ),
        None => (target, 0),
    };
    let action = match action {
        "busy" => FaultAction::ErrorCode(725),
        "drop-before" => FaultAction::DropBeforeApply,
        "drop-after" => FaultAction::DropAfterApply,
        other => match other.split_once(':') {
            Some(("code", n)) => FaultAction::ErrorCode(
                n.parse()
                    .map_err(|_| bad(format!("{spec:?}: code:N needs a number")))?,
            ),
            Some(("http", n)) => FaultAction::HttpStatus(
                n.parse()
                    .map_err(|_| bad(format!("{spec:?}: http:STATUS needs a number")))?,
            ),
            _ => {
                return Err(bad(format!(
                    "{spec:?}: ACTION is busy, code:N, http:STATUS, drop-before or drop-after"
                )));
            }
        },
    };
    Ok(if nth == 0 {
        FaultRule::always(operation, action)
    } else {
        FaultRule::once(operation, nth, action)
    })
}

/// Runs the simulator until interrupted.
pub async fn run(args: SimulateArgs) -> Result<(), SimulateError> {
    let dialect: Dialect = args
        .dialect
        .parse()
        .map_err(|problem| SimulateError::BadFlag {
            flag: "dialect",
            problem,
        })?;
    let rules = args
        .faults
        .iter()
        .map(|f| parse_fault(f))
        .collect::<Result<Vec<_>, _>>()?;
    let sim = NgxSim::start(SimConfig {
        listen: args.listen.clone(),
        dialect,
        token: args.token.clone(),
        owner_tag: args.owner_tag.clone(),
        tls: args.tls,
        tls_material: None,
        cluster_status: args.cluster_status.clone(),
        state: None,
    })
    .await?;
    sim.faults()
        .set_latency(Duration::from_millis(args.latency_ms));
    for rule in rules {
        sim.faults().arm(rule);
    }
    if let (Some(path), Some(pem)) = (&args.ca_out, sim.ca_pem()) {
        std::fs::write(path, pem).map_err(|source| SimulateError::CaOut {
            path: path.display().to_string(),
            source,
        })?;
    }
    let [a, b] = sim.owners();
    println!(
        "NGXStorage simulator ({dialect} dialect) at {}/api/v2/ ; owners {a} {b}",
        sim.base_url()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sim.wait() => {}
    }
    Ok(())
}
