//! The Synology DSM adapter of [`super::Backend`], over the typed WebAPI
//! client in [`crate::array::synology`].
//!
//! Observation is batched: `list_luns` is one `SYNO.Core.ISCSI.LUN list` plus
//! one `SYNO.Core.ISCSI.Target list` (DSM's LUN list only says whether a LUN
//! is mapped, not where); `list_targets` is one `Target list`, whose
//! `mapped_lun` entries already carry the LUN uuids.
//!
//! Choices the DSM API forces, documented here so the engine's authors can
//! rely on them:
//! - LUN ids are DSM uuids; target ids are DSM's numeric `target_id` in
//!   decimal.
//! - `thin` is read from the type word (see [`convert::thin_of_type`]); a
//!   new LUN gets `synology.type` when the spec sets it, else `BLUN` (thin)
//!   or `BLUN_THICK` (thick); a type that contradicts the thin flag is
//!   refused before any call (it would be permanent drift).
//! - DSM's `Target create` takes only name, IQN, CHAP and the session limit
//!   (DSM docs and synology-api), so digests and segment sizes follow in one
//!   `Target set`, and a target meant to be disabled is disabled after that.
//! - A target without `iqn` in its settings gets the IQN DSM's UI would
//!   generate: `iqn.2000-01.com.synology:<host>.<name>`, where `<host>` is
//!   read from an IQN DSM already generated for another target, else `dsm`
//!   (no API the client speaks returns the DSM host name).
//! - DSM never returns CHAP secrets, so observed CHAP has user names only;
//!   the diff's `chap_rotated` covers password changes.
//! - Allowed initiators (DSM ACLs / host groups) are out of scope: observed
//!   as empty, and setting a non-empty list is Unsupported.

pub mod convert;
pub mod lun;
pub mod replication;
pub mod rules;
pub mod snapshot;
pub mod target;
pub mod vmm;

use std::collections::BTreeSet;

use tokio::sync::Mutex;

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::synology::lun::API_LUN;
use crate::array::synology::target::API_TARGET;
use crate::array::synology::vmm::API_STORAGE;
use crate::array::synology::{
    Chap as DsmChap, CreateLun, CreateTarget, Credentials as DsmCredentials, DsmClient, DsmConfig,
    DsmError, SetLun, SetTarget, TargetAuth, session_name_for,
};
use crate::model::{Chap, ObservedLun, ObservedTarget, Placement};
use crate::reconcile::lun::{CloneSource, DesiredLun, LunOp};
use crate::reconcile::target::{DesiredTarget, TargetOp};

use super::{ArrayInfo, BackendConfig, BackendError, Created, Credentials, Observation};

/// A connected Synology DSM array. Cheap to clone: clones share the client
/// (login, API table, concurrency limit). `Debug` shows no secret (the
/// client redacts the password and the sid).
#[derive(Clone, Debug)]
pub struct DsmBackend {
    client: DsmClient,
    /// The DSM host name learned from a DSM-generated IQN, for the next
    /// generated one; shared by clones.
    host: std::sync::Arc<Mutex<Option<String>>>,
}

fn vendor(e: DsmError) -> BackendError {
    BackendError::from_vendor(&e)
}

/// `Ok` when the call succeeded or the object (or mapping) is already gone.
fn gone_is_ok(result: Result<(), DsmError>) -> Result<(), BackendError> {
    match result {
        Err(e) if e.class() == ErrorClass::NotFound => {
            tracing::debug!(api_call = %e.api_call(), "already gone; nothing to do");
            Ok(())
        }
        other => other.map_err(vendor),
    }
}

fn call(api: &str, method: &str) -> String {
    format!("{api}.{method}")
}

impl DsmBackend {
    /// Connects and logs in, so refused credentials show at once.
    pub async fn connect(config: BackendConfig) -> Result<Self, BackendError> {
        let (username, password) = match config.credentials {
            Credentials::UserPassword { username, password } => (username, password),
            Credentials::Token(_) => {
                return Err(BackendError::invalid(
                    "SYNO.API.Auth.login",
                    "spec.credentialsSecretRef: a Synology array needs the keys username and password (a token is for NGXStorage)",
                ));
            }
        };
        let mut dsm = DsmConfig::new(
            config.endpoint,
            DsmCredentials::new(username, password.expose()),
            config.transport,
            "default",
        );
        if !config.session_name.is_empty() {
            dsm.session_name = config.session_name;
        } else {
            dsm.session_name = session_name_for("default");
        }
        let client = DsmClient::new(dsm).map_err(vendor)?;
        let backend = DsmBackend {
            client,
            host: Default::default(),
        };
        backend.client.login_now().await.map_err(vendor)?;
        Ok(backend)
    }

    /// The client, for callers that need a DSM-only API.
    pub fn client(&self) -> &DsmClient {
        &self.client
    }

    /// See [`super::Backend::info`]. Model, version and serial come from
    /// `SYNO.DSM.Info` (see [`DsmClient::dsm_info`]). Volumes are the LUN
    /// locations; their capacity comes from Virtual Machine Manager's storage
    /// list when VMM is installed (it is the only capacity API the client
    /// speaks), else it stays `None`.
    pub async fn info(&self) -> Result<ArrayInfo, BackendError> {
        let luns = self.client.luns().list().await.map_err(vendor)?;
        let mut volumes: BTreeSet<String> = luns
            .iter()
            .filter(|l| !l.location.is_empty())
            .map(|l| l.location.clone())
            .collect();
        let mut capacity = std::collections::BTreeMap::new();
        let has_vmm = self
            .client
            .api_table()
            .await
            .map_err(vendor)?
            .contains_key(API_STORAGE);
        if has_vmm {
            match self.client.vmm().storages().await {
                Ok(storages) => {
                    for s in storages {
                        if let Some(path) = s.volume_path {
                            let free = s.size.zip(s.used).map(|(t, u)| t.saturating_sub(u));
                            volumes.insert(path.clone());
                            capacity.insert(path, (s.size, free));
                        }
                    }
                }
                // Capacity is a nicety of the status: without it the volumes
                // are still listed, so the failure is logged, not returned.
                Err(e) => {
                    tracing::info!(error = %e, "VMM storage list failed; volume capacity unknown")
                }
            }
        }
        let system = match self.client.dsm_info().await {
            Ok(s) => s,
            // A DSM that offers neither information API still serves
            // LUNs: the status just lacks model and version.
            Err(e) if e.class() == ErrorClass::Unsupported => {
                tracing::info!(error = %e, "DSM reports no model or version");
                Default::default()
            }
            Err(e) => return Err(vendor(e)),
        };
        Ok(ArrayInfo {
            model: system.model,
            version: system.version,
            serial: system.serial,
            active_endpoint: Some(self.client.base_url().to_string()),
            pools: volumes
                .into_iter()
                .map(|v| {
                    let (total, free) = capacity.get(&v).copied().unwrap_or((None, None));
                    (v, total, free)
                })
                .collect(),
            ..ArrayInfo::default()
        })
    }

    /// See [`super::Backend::list_luns`]: one LUN list and one target list.
    pub async fn list_luns(&self) -> Result<Vec<ObservedLun>, BackendError> {
        let luns = self.client.luns();
        let targets = self.client.targets();
        let (luns, targets) = tokio::try_join!(luns.list(), targets.list()).map_err(vendor)?;
        self.learn_host(&targets).await;
        let by_lun = convert::targets_by_lun(&targets);
        Ok(luns
            .iter()
            .map(|l| convert::observed_lun(l, &by_lun))
            .collect())
    }

    /// See [`super::Backend::observe`]: one LUN list and one target list,
    /// shared by both views.
    pub async fn observe(&self) -> Result<Observation, BackendError> {
        let luns = self.client.luns();
        let targets = self.client.targets();
        let (luns, targets) =
            tokio::try_join!(luns.list_listing(), targets.list_listing()).map_err(vendor)?;
        self.learn_host(&targets.items).await;
        let malformed = |m: Vec<crate::array::synology::listing::Malformed>| {
            m.into_iter()
                .map(|m| (m.id, vendor(m.error)))
                .collect::<Vec<_>>()
        };
        let by_lun = convert::targets_by_lun(&targets.items);
        let observed_luns = luns
            .items
            .iter()
            .map(|l| convert::observed_lun(l, &by_lun))
            .collect();
        Ok(Observation {
            luns: observed_luns,
            targets: targets.items.iter().map(convert::observed_target).collect(),
            malformed_luns: malformed(luns.malformed),
            malformed_targets: malformed(targets.malformed),
        })
    }

    /// See [`super::Backend::normalize_target`]: nothing to resolve on DSM.
    pub async fn normalize_target(&self, _desired: &mut DesiredTarget) -> Result<(), BackendError> {
        Ok(())
    }

    /// See [`super::Backend::list_targets`]: one target list.
    pub async fn list_targets(&self) -> Result<Vec<ObservedTarget>, BackendError> {
        let targets = self.client.targets().list().await.map_err(vendor)?;
        self.learn_host(&targets).await;
        Ok(targets.iter().map(convert::observed_target).collect())
    }

    async fn learn_host(&self, targets: &[crate::array::synology::Target]) {
        if let Some(host) = real_host(targets) {
            *self.host.lock().await = Some(host);
        }
    }

    /// See [`super::Backend::close`]: logs out; a failure is only logged.
    pub async fn close(&self) {
        if let Err(e) = self.client.logout().await {
            tracing::info!(error = %e, "DSM logout failed");
        }
    }
}

/// The DSM host name in the IQN of a target DSM generated, if any. The
/// fallback host name carries no news: learning it back from an IQN this
/// adapter generated would hide the real one.
pub(super) fn real_host(targets: &[crate::array::synology::Target]) -> Option<String> {
    targets
        .iter()
        .filter_map(|t| convert::host_of_iqn(&t.iqn))
        .find(|h| *h != convert::FALLBACK_HOST)
        .map(str::to_string)
}
