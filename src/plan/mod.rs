//! `array-operator plan`: what the operator would do to the arrays, read
//! only. Manifests are read ([`input`]), each StorageArray is reached with
//! the credentials of the input or the command line ([`credentials`]) or
//! served by a seeded simulator ([`simulate`]), and the controllers' own
//! engine runs every object under a dry run (see [`run`]): calls that would
//! change an array are recorded instead of sent. The result is a
//! [`report::PlanReport`], printed by [`render`] as text, JSON or Markdown.
//!
//! Layering: above the engine and beside the controllers (it reuses the
//! controllers' StorageArray configuration and their unavailable-array
//! condition); nothing below imports it.
//!
//! Library entry point: [`run`] (manifests in, report out), or [`plan`]
//! from sources.

pub mod credentials;
pub mod input;
pub mod render;
pub mod report;
pub mod run;
pub mod simulate;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::controller::arrays::{ArrayAccessError, backend_config};
use crate::engine::dry_run::DryRun;

pub use credentials::CredentialSource;
pub use input::{Manifests, Source};
pub use report::PlanReport;

/// How to plan.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Serve each StorageArray by a seeded simulator ([`simulate`]).
    pub simulate: bool,
    /// Credentials from the command line; they take the place of the
    /// Secret each names.
    pub credentials: Vec<CredentialSource>,
}

/// Why no plan could be made at all (a plan of a refused object or an
/// unreachable array is still a plan).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The input could not be read.
    #[error(transparent)]
    Input(#[from] input::InputError),
    /// A `--credentials` source could not be read.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    /// A `--credentials` flag names no StorageArray of the input.
    #[error("--credentials {0}: the input has no StorageArray of that name")]
    UnknownArray(String),
    /// The simulators could not be set up.
    #[error(transparent)]
    Simulate(#[from] simulate::SimulateError),
}

/// Reads the sources and plans them.
pub async fn plan(sources: &[Source], options: &PlanOptions) -> Result<PlanReport, PlanError> {
    let manifests = input::read(sources)?;
    run(manifests, options).await
}

/// Plans `manifests`: observes each array read-only and returns what the
/// operator would do with every object, with per-object refusal messages
/// (the `Synced` condition the controller would write).
pub async fn run(mut manifests: Manifests, options: &PlanOptions) -> Result<PlanReport, PlanError> {
    for c in &options.credentials {
        // A StorageArray its schema refuses is in the input (and reported
        // refused): its flag is not a typo.
        let known = manifests.storage_arrays.iter().any(|sa| {
            c.names(
                sa.metadata.namespace.as_deref().unwrap_or_default(),
                sa.metadata.name.as_deref().unwrap_or_default(),
            )
        }) || manifests
            .invalid
            .iter()
            .any(|o| o.kind == "StorageArray" && c.names(&o.namespace, &o.name));
        if !known {
            return Err(PlanError::UnknownArray(c.array.clone()));
        }
    }
    let dry_run = DryRun::default();
    if options.simulate {
        let sims = simulate::start(&mut manifests).await?;
        let connected = run::connect(&manifests, sims.configs(), &dry_run, true).await;
        let report = run::plan_objects(&manifests, connected, &dry_run).await;
        sims.stop().await;
        return Ok(report);
    }
    let configs = configs(&manifests, &options.credentials)?;
    let connected = run::connect(&manifests, configs, &dry_run, false).await;
    Ok(run::plan_objects(&manifests, connected, &dry_run).await)
}

/// Each StorageArray's configuration from the input's Secrets, or from the
/// command line's credentials in place of its credentials Secret.
pub fn configs(
    m: &Manifests,
    flags: &[CredentialSource],
) -> Result<BTreeMap<String, run::ArrayConfig>, PlanError> {
    let mut out = BTreeMap::new();
    for sa in &m.storage_arrays {
        let ns = sa.metadata.namespace.clone().unwrap_or_default();
        let name = sa.metadata.name.clone().unwrap_or_default();
        let key = format!("{ns}/{name}");
        let from_flag: Option<Secret> = match flags.iter().find(|c| c.names(&ns, &name)) {
            Some(c) => Some(c.read()?),
            None => None,
        };
        let missing = |field: &'static str, secret: &str| ArrayAccessError::Secret {
            array: key.clone(),
            field,
            problem: format!(
                "Secret {secret:?} is not in the input (add its manifest, or pass --credentials {name}=env:VARIABLE)"
            ),
        };
        let secret_name = &sa.spec.credentials_secret_ref.name;
        let creds = match from_flag.as_ref().or_else(|| m.secret(&ns, secret_name)) {
            Some(s) => s,
            None => {
                out.insert(
                    key.clone(),
                    Err(missing("spec.credentialsSecretRef", secret_name)),
                );
                continue;
            }
        };
        let ca_ref = sa.spec.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref());
        let ca = ca_ref.and_then(|r| m.secret(&ns, &r.name));
        if let (Some(r), None) = (ca_ref, ca) {
            out.insert(key.clone(), Err(missing("spec.tls.caSecretRef", &r.name)));
            continue;
        }
        out.insert(
            key.clone(),
            backend_config(sa, &key, creds, ca, simulate::SESSION_NAME),
        );
    }
    Ok(out)
}
