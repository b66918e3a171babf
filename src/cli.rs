//! Command-line interface: the subcommands of PRODUCT.md section 5.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kubernetes operator for Synology DSM and NGXStorage arrays.
#[derive(Parser, Debug)]
#[command(name = "array-operator", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ARRAY_OPERATOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controllers against the cluster (kubeconfig or in-cluster).
    Run(RunArgs),
    /// Print every CustomResourceDefinition as multi-document YAML, or write
    /// one file per kind into each `--dir`.
    Crds(CrdsArgs),
    /// Read manifests, observe the arrays they name and print the calls the
    /// operator would make; exits 3 when there are changes. Read-only.
    Plan(PlanArgs),
    /// Serve a simulated array on loopback, for demos and tests.
    Simulate {
        /// Which array to simulate.
        #[command(subcommand)]
        vendor: SimulateVendor,
    },
}

/// Flags of `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "array-operator-leader")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the
    /// kubeconfig's namespace).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// Seconds a leader holds the Lease without renewing it.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_secs: u64,
    /// Seconds before expiry the leader renews.
    #[arg(long, default_value_t = 5)]
    pub lease_grace_secs: u64,
    /// Watch only these namespaces (default: every namespace). Repeatable
    /// (`--watch-namespace a --watch-namespace b`) or comma-separated
    /// (`--watch-namespace a,b`, and so in `ARRAY_OPERATOR_WATCH_NAMESPACE`),
    /// so the operator needs no cluster-wide permission: one Role per
    /// namespace is enough.
    #[arg(long, env = "ARRAY_OPERATOR_WATCH_NAMESPACE", value_delimiter = ',')]
    pub watch_namespace: Vec<String>,
    /// Serve only the StorageArrays whose labels match this label selector
    /// (kubectl's `-l` syntax, e.g. `array-operator.io/shard=a`), and the
    /// objects whose `spec.arrayRef` names one of them; everything else is
    /// left alone. For running one deployment per group of arrays, each
    /// with its own `--lease-name` (docs/fleet.md). Default: every array.
    #[arg(long, env = "ARRAY_OPERATOR_ARRAY_SELECTOR")]
    pub array_selector: Option<crate::controller::shard::ArraySelector>,
}

/// Flags of `crds`.
#[derive(Args, Debug)]
pub struct CrdsArgs {
    /// Write `<kind>.yaml` files into this directory instead of printing
    /// (repeatable: `--dir crds --dir charts/array-operator/files/crds`).
    #[arg(long)]
    pub dir: Vec<PathBuf>,
}

/// Flags of `plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// A manifest file or a directory of them.
    #[arg(short = 'f', long = "filename")]
    pub path: PathBuf,
}

/// Which simulator to serve.
#[derive(Subcommand, Debug)]
pub enum SimulateVendor {
    /// A Synology DSM (iSCSI, Snapshot Replication, Virtual Machine Manager).
    Dsm(crate::sim::dsm::SimulateArgs),
    /// An NGXStorage array (REST API v2).
    Ngx(crate::sim::ngx::SimulateArgs),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The subcommand is not written yet.
    #[error("`array-operator {command}` is not implemented yet")]
    NotImplemented {
        /// The subcommand.
        command: &'static str,
    },
    /// Serialising the CRDs failed.
    #[error("rendering CRDs: {0}")]
    Crds(#[from] crate::crd::generate::GenerateError),
    /// Writing a CRD file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Any other failure, already described.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// Wraps any displayable error.
    pub fn from_display(e: impl std::fmt::Display) -> Self {
        CliError::Failed(e.to_string())
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::NotImplemented { .. } => 64,
            _ => 1,
        }
    }
}

/// Prints every CRD to standard output, or writes one file per kind into
/// each directory given.
pub fn crds(args: &CrdsArgs) -> Result<(), CliError> {
    if args.dir.is_empty() {
        print!("{}", crate::crd::generate::all_crds_yaml()?);
        return Ok(());
    }
    for dir in &args.dir {
        std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
            path: dir.clone(),
            source,
        })?;
        for (file, yaml) in crate::crd::generate::crd_files()? {
            let path = dir.join(file);
            std::fs::write(&path, yaml).map_err(|source| CliError::Write { path, source })?;
        }
    }
    Ok(())
}

/// Sets up `tracing` output in the chosen format; `RUST_LOG` filters it.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
