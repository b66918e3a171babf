//! Synology DSM simulator: a loopback HTTP(S) server that answers the DSM
//! WebAPI (`/webapi/query.cgi`, `auth.cgi`, `entry.cgi`) like a DSM 7.2 with
//! SAN Manager, Snapshot Replication and Virtual Machine Manager installed.
//!
//! # Seed
//!
//! A fresh simulator holds:
//! * one volume `/volume1` of 1 TiB, host name `nas01`;
//! * one Snapshot Replication plan, from `fixtures/dr_plan.json`: plan id
//!   `b0c9a9a6-8d0e-4b8e-9a0c-1f2e3d4c5b6a`, role `mainsite`, one past sync;
//! * VMM: one host `nas01` (4 cores, 16 GiB), one storage `default` on
//!   `/volume1`, one network `default`, one disk image `ubuntu-22.04-disk`;
//! * no LUNs, targets, snapshots or guests.
//!
//! Tests can remove APIs ([`DsmState::missing_apis`]) to play a DSM without
//! Virtual Machine Manager or Snapshot Replication.
//!
//! # Behaviour
//!
//! Strict like the real thing: unknown API/method/version → 102/103/104;
//! missing or malformed parameters → 114/120 (iSCSI, DR) or 401 (VMM);
//! duplicate names → 18990538 / 18990744 / 403; unknown LUN → 18990531,
//! target → 18990710, snapshot → 18990532; deleting a mapped LUN → 18990539;
//! deleting a running guest → 904; a bad session → 119. It accepts the
//! JSON-quoted and the raw form of every string, `_sid` or the `id` cookie
//! (with the SynoToken), GET or POST, and login versions 3, 6 and 7 with
//! `format=sid` or `format=cookie`. Guest create is asynchronous: each
//! `Task.Info get` advances the task by 50% and the guest appears when it
//! finishes.
//!
//! Every call is recorded ([`DsmSim::calls`]) and can be faulted
//! ([`DsmSim::faults`]; operation keys are `API.method`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::sim::faults::{CallLog, FaultAction, FaultRule, Faults};
use crate::sim::server::{ServeError, ServerHandle, serve};
use crate::sim::tls::{SimTls, SimTlsError};

pub mod handlers;
pub mod lun_table;
pub mod request;
pub mod seed;
pub mod state;

pub use state::{DsmState, StateHandle};

use state::{Shared, SimCredentials};

/// Default account of the simulator.
pub const DEFAULT_USERNAME: &str = "admin";
/// Default password of the simulator.
pub const DEFAULT_PASSWORD: &str = "simulator-password";

/// How to start a simulator in-process.
#[derive(Clone, Debug)]
pub struct DsmSimConfig {
    /// Listen address; `127.0.0.1:0` picks a free port.
    pub listen: String,
    /// Plain HTTP or HTTPS, and with which certificate.
    pub tls: TlsMode,
    /// The account it accepts.
    pub credentials: SimCredentials,
    /// The starting state.
    pub state: DsmState,
}

impl Default for DsmSimConfig {
    fn default() -> Self {
        DsmSimConfig {
            listen: "127.0.0.1:0".into(),
            tls: TlsMode::CaSigned,
            credentials: SimCredentials {
                username: DEFAULT_USERNAME.into(),
                password: DEFAULT_PASSWORD.into(),
            },
            state: seed::seed(),
        }
    }
}

/// How the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP.
    Off,
    /// HTTPS with a leaf signed by a throwaway CA ([`DsmSim::ca_pem`]).
    CaSigned,
    /// HTTPS with a self-signed certificate, as a factory-fresh DSM has;
    /// only `insecureSkipVerify` clients can talk to it.
    SelfSigned,
}

/// Failure to start the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimStartError {
    /// The listen address could not be bound.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The TLS material could not be made.
    #[error(transparent)]
    Tls(#[from] SimTlsError),
}

/// A running (or stopped) simulator. The state, faults, call log and TLS
/// material outlive [`DsmSim::stop`], so [`DsmSim::restart`] brings the same
/// array back, as after a reboot (sessions are lost, as on a DSM).
#[derive(Debug)]
pub struct DsmSim {
    shared: Arc<Shared>,
    tls: Option<SimTls>,
    server: Option<ServerHandle>,
    base_url: String,
}

/// Starts a simulator.
pub async fn start(config: DsmSimConfig) -> Result<DsmSim, SimStartError> {
    let shared = Arc::new(Shared {
        state: std::sync::Mutex::new(config.state),
        sessions: Default::default(),
        credentials: config.credentials,
        faults: Faults::default(),
        calls: CallLog::default(),
        in_flight: Default::default(),
        max_in_flight: Default::default(),
    });
    let tls = match config.tls {
        TlsMode::Off => None,
        TlsMode::CaSigned => Some(SimTls::generate()?),
        TlsMode::SelfSigned => Some(SimTls::generate_self_signed_leaf()?),
    };
    let mut sim = DsmSim {
        shared,
        tls,
        server: None,
        base_url: String::new(),
    };
    sim.serve_on(&config.listen).await?;
    Ok(sim)
}

impl DsmSim {
    async fn serve_on(&mut self, listen: &str) -> Result<(), SimStartError> {
        let router = handlers::router(self.shared.clone());
        let server = serve(
            listen,
            router,
            self.tls.as_ref().map(|t| t.server_config.clone()),
        )
        .await?;
        self.base_url = server.base_url();
        self.server = Some(server);
        Ok(())
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The bound address, while running.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(ServerHandle::addr)
    }

    /// The CA certificate (PEM) that signed the server certificate (for
    /// [`TlsMode::SelfSigned`], the certificate itself).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// The fault plan.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every call received.
    pub fn calls(&self) -> &CallLog {
        &self.shared.calls
    }

    /// The most requests the simulator was handling at once since the last
    /// [`DsmSim::reset_max_in_flight`] (to check client concurrency limits).
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Starts a new [`DsmSim::max_in_flight`] measurement.
    pub fn reset_max_in_flight(&self) {
        self.shared.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// Out-of-band access to the state.
    pub fn state(&self) -> StateHandle {
        StateHandle {
            shared: self.shared.clone(),
        }
    }

    /// Stops serving (like a power cut: in-flight requests get no answer).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Serves the same state again on `listen` (the old address, or a new
    /// one). Sessions do not survive, as on a rebooted DSM.
    pub async fn restart(&mut self, listen: &str) -> Result<(), SimStartError> {
        self.stop().await;
        self.state().expire_all_sessions();
        self.serve_on(listen).await
    }

    /// Waits until the server stops.
    pub async fn wait(mut self) {
        if let Some(server) = self.server.take() {
            server.wait().await;
        }
    }
}

/// Flags of `array-operator simulate dsm`.
#[derive(clap::Args, Clone)]
pub struct SimulateArgs {
    /// Address to listen on; loopback only by default.
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub listen: String,
    /// Serve HTTPS with a throwaway CA and a certificate for 127.0.0.1 and
    /// localhost (default: plain HTTP).
    #[arg(long)]
    pub tls: bool,
    /// Write the CA certificate (PEM) here, so clients can verify the server.
    #[arg(long, requires = "tls")]
    pub ca_out: Option<std::path::PathBuf>,
    /// Account the simulator accepts.
    #[arg(long, default_value = DEFAULT_USERNAME)]
    pub username: String,
    /// Password the simulator accepts.
    #[arg(long, default_value = DEFAULT_PASSWORD, env = "DSM_SIM_PASSWORD", hide_default_value = false)]
    pub password: String,
    /// Latency added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the Nth call of an operation with a DSM error code:
    /// `API.method:N:CODE` (N=0: every call). Repeatable.
    #[arg(long = "fail", value_name = "OP:N:CODE")]
    pub fail: Vec<String>,
    /// Answer the Nth call of an operation with an HTTP status:
    /// `API.method:N:STATUS`. Repeatable.
    #[arg(long = "http-status", value_name = "OP:N:STATUS")]
    pub http_status: Vec<String>,
    /// Drop the connection on the Nth call, before or after acting:
    /// `API.method:N:before|after`. Repeatable.
    #[arg(long = "drop", value_name = "OP:N:WHEN")]
    pub drop: Vec<String>,
    /// Expire the caller's session on the Nth call: `API.method:N`. Repeatable.
    #[arg(long = "expire-session", value_name = "OP:N")]
    pub expire_session: Vec<String>,
    /// The most LUNs the simulated DSM holds before refusing a create with
    /// its limit error (a real DS holds 128 to 512, by model; raise it for
    /// scale tests).
    #[arg(long, default_value_t = 128)]
    pub max_luns: usize,
    /// The most iSCSI targets the simulated DSM holds.
    #[arg(long, default_value_t = 128)]
    pub max_targets: usize,
}

impl std::fmt::Debug for SimulateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulateArgs")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("ca_out", &self.ca_out)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("latency_ms", &self.latency_ms)
            .field("fail", &self.fail)
            .field("http_status", &self.http_status)
            .field("drop", &self.drop)
            .field("expire_session", &self.expire_session)
            .field("max_luns", &self.max_luns)
            .field("max_targets", &self.max_targets)
            .finish()
    }
}

/// Failure of the `simulate dsm` command.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A fault flag could not be parsed.
    #[error("--{flag} {value:?}: {rule}")]
    BadFault {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// The expected form.
        rule: &'static str,
    },
    /// The simulator could not start.
    #[error(transparent)]
    Start(#[from] SimStartError),
    /// The CA file could not be written.
    #[error("--ca-out {path}: {source}")]
    CaOut {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn parse_rule(
    flag: &'static str,
    value: &str,
    action: impl Fn(Option<&str>) -> Option<FaultAction>,
    rule: &'static str,
) -> Result<FaultRule, SimulateError> {
    let bad = || SimulateError::BadFault {
        flag,
        value: value.to_string(),
        rule,
    };
    // The operation itself contains dots but no colons.
    let mut parts = value.splitn(3, ':');
    let op = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    let nth: u64 = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let action = action(parts.next()).ok_or_else(bad)?;
    Ok(if nth == 0 {
        FaultRule::always(op, action)
    } else {
        FaultRule::once(op, nth, action)
    })
}

/// The fault rules the flags ask for.
pub fn fault_rules(args: &SimulateArgs) -> Result<Vec<FaultRule>, SimulateError> {
    let mut rules = Vec::new();
    for v in &args.fail {
        rules.push(parse_rule(
            "fail",
            v,
            |c| c.and_then(|c| c.parse().ok()).map(FaultAction::ErrorCode),
            "expected API.method:N:CODE",
        )?);
    }
    for v in &args.http_status {
        rules.push(parse_rule(
            "http-status",
            v,
            |c| c.and_then(|c| c.parse().ok()).map(FaultAction::HttpStatus),
            "expected API.method:N:STATUS",
        )?);
    }
    for v in &args.drop {
        rules.push(parse_rule(
            "drop",
            v,
            |w| match w {
                Some("before") => Some(FaultAction::DropBeforeApply),
                Some("after") => Some(FaultAction::DropAfterApply),
                _ => None,
            },
            "expected API.method:N:before|after",
        )?);
    }
    for v in &args.expire_session {
        rules.push(parse_rule(
            "expire-session",
            v,
            |rest| rest.is_none().then_some(FaultAction::ExpireSession),
            "expected API.method:N",
        )?);
    }
    Ok(rules)
}

/// Runs the simulator until interrupted.
pub async fn run(args: SimulateArgs) -> Result<(), SimulateError> {
    let rules = fault_rules(&args)?;
    let sim = start(DsmSimConfig {
        listen: args.listen.clone(),
        tls: if args.tls {
            TlsMode::CaSigned
        } else {
            TlsMode::Off
        },
        credentials: SimCredentials {
            username: args.username.clone(),
            password: args.password.clone(),
        },
        state: seed::seed(),
    })
    .await?;
    sim.state().update(|s| {
        s.limits.max_luns = args.max_luns;
        s.limits.max_targets = args.max_targets;
    });
    if args.latency_ms > 0 {
        sim.faults()
            .set_latency(Duration::from_millis(args.latency_ms));
    }
    for rule in rules {
        sim.faults().arm(rule);
    }
    if let (Some(path), Some(pem)) = (&args.ca_out, sim.ca_pem()) {
        std::fs::write(path, pem).map_err(|source| SimulateError::CaOut {
            path: path.display().to_string(),
            source,
        })?;
    }
    tracing::info!(url = %sim.base_url(), user = %args.username, "DSM simulator listening");
    println!("DSM simulator listening on {}", sim.base_url());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sim.wait() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn fault_flags_parse() {
        let cli = Cli::parse_from([
            "x",
            "--fail",
            "SYNO.Core.ISCSI.LUN.create:2:18990538",
            "--drop",
            "SYNO.Core.ISCSI.LUN.list:0:before",
            "--expire-session",
            "SYNO.DR.Plan.list:1",
        ]);
        let rules = fault_rules(&cli.args).expect("rules");
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].action, FaultAction::ErrorCode(18990538));
        assert_eq!(rules[0].nth, 2);
        assert_eq!(rules[1].nth, 0);
        assert_eq!(rules[2].action, FaultAction::ExpireSession);
        let bad = Cli::parse_from(["x", "--fail", "SYNO.X.y:one:5"]);
        assert!(fault_rules(&bad.args).is_err());
    }

    #[test]
    fn limits_default_to_a_small_ds_and_can_be_raised() {
        let cli = Cli::parse_from(["x"]);
        assert_eq!((cli.args.max_luns, cli.args.max_targets), (128, 128));
        let cli = Cli::parse_from(["x", "--max-luns", "20000", "--max-targets", "2000"]);
        assert_eq!((cli.args.max_luns, cli.args.max_targets), (20000, 2000));
    }
}
