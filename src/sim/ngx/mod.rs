//! NGXStorage simulator (issue #4 fills it in).

/// Flags of `array-operator simulate ngx`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Address to listen on; loopback only by default.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
}

/// Failure of the `simulate ngx` command.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The simulator is not written yet.
    #[error("simulate ngx is not implemented yet (issue #4)")]
    NotImplemented,
}

/// Runs the simulator until interrupted.
pub async fn run(_args: SimulateArgs) -> Result<(), SimulateError> {
    Err(SimulateError::NotImplemented)
}
