//! The `array-operator` command: run the controllers, print the CRDs, plan
//! changes for a GitOps check, or serve a simulated array.

use std::process::ExitCode;

use array_operator::cli::{Cli, Command, SimulateVendor};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A usage error exits 1, not clap's 2: `plan` says "changes"
            // with 2, and a CI job must not read a typo as a plan.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    array_operator::cli::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Crds(args) => array_operator::cli::crds(&args),
            Command::Run(args) => array_operator::operator::run(args)
                .await
                .map_err(array_operator::cli::CliError::from_display),
            Command::Plan(args) => array_operator::cli::plan(&args).await,
            Command::Simulate { vendor } => match vendor {
                SimulateVendor::Dsm(args) => array_operator::sim::dsm::run(args)
                    .await
                    .map_err(array_operator::cli::CliError::from_display),
                SimulateVendor::Ngx(args) => array_operator::sim::ngx::run(args)
                    .await
                    .map_err(array_operator::cli::CliError::from_display),
            },
        }
    });
    // Exit even if a blocking task (a DNS lookup, a stuck read) is still
    // running: after SIGTERM the Lease is already released.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The command already said why (a plan with changes or refusals).
        Err(e @ array_operator::cli::CliError::Exit(_)) => ExitCode::from(e.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
