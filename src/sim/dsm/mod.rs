//! Synology DSM simulator (issue #3 fills it in).

/// Flags of `array-operator simulate dsm`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Address to listen on; loopback only by default.
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub listen: String,
}

/// Failure of the `simulate dsm` command.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The simulator is not written yet.
    #[error("simulate dsm is not implemented yet (issue #3)")]
    NotImplemented,
}

/// Runs the simulator until interrupted.
pub async fn run(_args: SimulateArgs) -> Result<(), SimulateError> {
    Err(SimulateError::NotImplemented)
}
