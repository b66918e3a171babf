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
    /// Read manifests, observe the arrays they name (read-only) and print
    /// the calls the operator would make. Exits 0 when nothing would
    /// change, 2 when calls would be made, 1 when an object would be
    /// refused, an array cannot be used or the input is bad.
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
#[command(after_help = PLAN_HELP)]
pub struct PlanArgs {
    /// Manifest files or directories (read recursively: *.yaml, *.yml), or
    /// `-` for standard input; multi-document YAML, as a GitOps repository,
    /// `kustomize build` or `helm template` gives it. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<String>,
    /// Credentials of a StorageArray, in place of the Secret its
    /// `spec.credentialsSecretRef` names: `ARRAY=env:VARIABLE` or
    /// `ARRAY=file:PATH` (ARRAY: `name` or `namespace/name`). The value
    /// holds `username=...` and `password=...` lines (Synology) or
    /// `token=...` (NGXStorage; a bare token works too). Repeatable.
    #[arg(long = "credentials", value_name = "ARRAY=SOURCE")]
    pub credentials: Vec<crate::plan::CredentialSource>,
    /// Serve every StorageArray of the input by an embedded simulator of
    /// its vendor, seeded with a fixed state (one Lun to grow, one name
    /// taken by a foreign LUN): no hardware, no Secrets.
    #[arg(long)]
    pub simulate: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = crate::plan::render::Format::Text)]
    pub output: crate::plan::render::Format,
    /// Colour the text output.
    #[arg(long, value_enum, default_value_t = crate::plan::render::Color::Auto)]
    pub color: crate::plan::render::Color,
}

/// The tail of `plan --help`.
const PLAN_HELP: &str = "\
Exit codes: 0 no changes, 2 changes, 1 a refused object, an unusable array or bad input.

Plan is read-only: it lists and reads, and records the calls that would change an
array instead of making them. Secret values are never printed.

Examples:
  array-operator plan -f examples/ --simulate
  kustomize build overlays/prod | array-operator plan -f - -o markdown
  array-operator plan -f gitops/ --credentials dsm1=env:DSM1_CREDENTIALS -o json";

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
    /// `plan` could not plan.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Any other failure, already described.
    #[error("{0}")]
    Failed(String),
    /// A command finished and chose a non-zero exit code, having said why
    /// (`plan`: 2 for changes, 1 for refusals).
    #[error("exit {0}")]
    Exit(u8),
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
            CliError::Exit(code) => *code,
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

/// Runs `plan`: prints the report and returns its exit code as an error
/// when it is not 0.
pub async fn plan(args: &PlanArgs) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let sources: Vec<crate::plan::Source> = args
        .paths
        .iter()
        .map(|p| crate::plan::Source::parse(p))
        .collect();
    let options = crate::plan::PlanOptions {
        simulate: args.simulate,
        credentials: args.credentials.clone(),
    };
    let report = crate::plan::plan(&sources, &options).await?;
    let color = args.color.enabled(std::io::stdout().is_terminal());
    print!(
        "{}",
        crate::plan::render::render(&report, args.output, color)
    );
    match report.exit_code {
        0 => Ok(()),
        code => Err(CliError::Exit(code)),
    }
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
