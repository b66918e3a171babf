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
pub mod rules;

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
use crate::array::types::{Chap, ObservedLun, ObservedTarget, Placement};
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

/// A target id as DSM knows it (decimal `target_id`).
fn target_id(api_call: &str, id: &str) -> Result<i64, BackendError> {
    id.parse().map_err(|_| {
        BackendError::invalid(
            api_call,
            format!("{id:?} is not a DSM target id (a decimal number)"),
        )
    })
}

/// DSM's CHAP secrets must be 12 to 16 characters; refusing here names the
/// rule (DSM itself answers a bare "invalid parameter"). The secret itself
/// never enters the message.
fn check_secret(api_call: &str, which: &str, secret: &str) -> Result<(), BackendError> {
    let n = secret.chars().count();
    if (12..=16).contains(&n) {
        Ok(())
    } else {
        Err(BackendError::invalid(
            api_call,
            format!("spec.chap: the {which} CHAP secret has {n} characters; DSM requires 12 to 16"),
        ))
    }
}

fn dsm_auth(api_call: &str, chap: Option<&Chap>) -> Result<TargetAuth, BackendError> {
    let Some(chap) = chap else {
        return Ok(TargetAuth::None);
    };
    check_secret(api_call, "initiator", chap.initiator.password.expose())?;
    let initiator = DsmChap {
        user: chap.initiator.username.clone(),
        password: chap.initiator.password.expose().to_string(),
    };
    Ok(match &chap.mutual {
        None => TargetAuth::Chap(initiator),
        Some(m) => {
            check_secret(api_call, "mutual", m.password.expose())?;
            TargetAuth::Mutual {
                initiator,
                target: DsmChap {
                    user: m.username.clone(),
                    password: m.password.expose().to_string(),
                },
            }
        }
    })
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
        Ok(luns
            .iter()
            .map(|l| convert::observed_lun(l, &targets))
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
        let observed_luns = luns
            .items
            .iter()
            .map(|l| convert::observed_lun(l, &targets.items))
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
        // The fallback host name carries no news: learning it back from an
        // IQN this adapter generated would hide the real one.
        let real = targets
            .iter()
            .filter_map(|t| convert::host_of_iqn(&t.iqn))
            .find(|h| *h != convert::FALLBACK_HOST);
        if let Some(host) = real {
            *self.host.lock().await = Some(host.to_string());
        }
    }

    /// See [`super::Backend::create_lun`].
    pub async fn create_lun(&self, desired: &DesiredLun) -> Result<String, BackendError> {
        let api_call = call(API_LUN, "create");
        let location = match &desired.placement {
            Placement::Volume(v) => v.clone(),
            Placement::Pool(p) => {
                return Err(BackendError::invalid(
                    api_call,
                    format!(
                        "spec.location: a Synology LUN lives on a volume (for example /volume1), not on pool {p:?}"
                    ),
                ));
            }
        };
        let dev_attribs = convert::dev_attribs_from(&api_call, &desired.settings)?;
        match &desired.source {
            None => {}
            Some(CloneSource::Lun(src)) => {
                return self.clone_lun(desired, src, &location, dev_attribs).await;
            }
            Some(CloneSource::Snapshot(_)) => {
                return Err(BackendError::unsupported(
                    call(API_LUN, "clone"),
                    "spec.source: DSM clones a LUN from a LUN; a clone from a snapshot is not offered by the API the operator uses",
                ));
            }
        }
        let type_word = desired
            .settings
            .get(convert::TYPE_KEY)
            .cloned()
            .unwrap_or_else(|| if desired.thin { "BLUN" } else { "BLUN_THICK" }.to_string());
        // A type that contradicts the thin flag would be reported as fixed
        // drift on every pass after the create; refuse it up front instead.
        if let Some(type_thin) = convert::thin_of_type(&type_word)
            && type_thin != desired.thin
        {
            return Err(BackendError::invalid(
                api_call,
                format!(
                    "spec.synology.type: {type_word} is {} but spec.thinProvisioning is {}",
                    if type_thin { "thin" } else { "thick" },
                    desired.thin
                ),
            ));
        }
        let req = CreateLun {
            name: desired.name.clone(),
            lun_type: convert::lun_type_of(&type_word),
            location,
            size: desired.size_bytes,
            description: desired.description.clone(),
            dev_attribs,
        };
        let created = self.client.luns().create(&req).await.map_err(vendor)?;
        Ok(created.uuid)
    }

    /// A clone into the same volume, then one `set` for what the spec asks
    /// beyond a copy (a larger size, the description, the flags), so one pass
    /// converges.
    async fn clone_lun(
        &self,
        desired: &DesiredLun,
        src: &str,
        location: &str,
        dev_attribs: crate::array::synology::DevAttribs,
    ) -> Result<String, BackendError> {
        let source = self.client.luns().get(src).await.map_err(vendor)?;
        let created = self
            .client
            .luns()
            .clone_lun(src, &desired.name, location)
            .await
            .map_err(vendor)?;
        let set = SetLun {
            new_name: None,
            new_size: (desired.size_bytes > source.size).then_some(desired.size_bytes),
            description: desired.description.clone(),
            dev_attribs,
        };
        if set != SetLun::default() {
            self.client
                .luns()
                .set(&created.uuid, &set)
                .await
                .map_err(vendor)?;
        }
        Ok(created.uuid)
    }

    /// See [`super::Backend::update_lun`].
    pub async fn update_lun(&self, id: &str, op: &LunOp) -> Result<(), BackendError> {
        let api_call = call(API_LUN, "set");
        let set = match op {
            LunOp::Grow { to_bytes, .. } => SetLun {
                new_size: Some(*to_bytes),
                ..SetLun::default()
            },
            LunOp::Rename { to } => SetLun {
                new_name: Some(to.clone()),
                ..SetLun::default()
            },
            LunOp::SetDescription(d) => SetLun {
                description: Some(d.clone()),
                ..SetLun::default()
            },
            LunOp::SetSettings(settings) => {
                if settings.contains_key(convert::TYPE_KEY) {
                    return Err(BackendError::unsupported(
                        api_call,
                        "spec.synology.type: DSM cannot change a LUN's type in place",
                    ));
                }
                SetLun {
                    dev_attribs: convert::dev_attribs_from(&api_call, settings)?,
                    ..SetLun::default()
                }
            }
            LunOp::Unmap { target_id: tid } => {
                let unmap = call(API_LUN, "unmap_target");
                let tid = target_id(&unmap, tid)?;
                return gone_is_ok(self.client.luns().unmap_target(id, &[tid]).await);
            }
            LunOp::Create(_) | LunOp::Delete { .. } => {
                return Err(BackendError::invalid(
                    api_call,
                    format!(
                        "{} is not an update: use create_lun / delete_lun",
                        op.verb()
                    ),
                ));
            }
        };
        if set == SetLun::default() {
            return Ok(());
        }
        self.client.luns().set(id, &set).await.map_err(vendor)
    }

    /// See [`super::Backend::delete_lun`]: already gone is success; a LUN
    /// still mapped is refused by DSM (InUse).
    pub async fn delete_lun(&self, id: &str) -> Result<(), BackendError> {
        gone_is_ok(self.client.luns().delete(id).await)
    }

    /// The IQN for a target the spec gives none (see the module docs).
    async fn generated_iqn(&self, name: &str) -> Result<String, BackendError> {
        let known = self.host.lock().await.clone();
        let host = match known {
            Some(h) => h,
            None => {
                let targets = self.client.targets().list().await.map_err(vendor)?;
                self.learn_host(&targets).await;
                self.host
                    .lock()
                    .await
                    .clone()
                    .unwrap_or_else(|| "dsm".to_string())
            }
        };
        Ok(convert::generated_iqn(&host, name))
    }

    /// See [`super::Backend::create_target`].
    pub async fn create_target(&self, desired: &DesiredTarget) -> Result<Created, BackendError> {
        let api_call = call(API_TARGET, "create");
        if !desired.initiators.is_empty() {
            return Err(initiators_unsupported(&api_call));
        }
        let mut extra = convert::target_set_from(&api_call, &desired.settings)?;
        let auth = dsm_auth(&api_call, desired.chap.as_ref())?;
        let iqn = match extra.iqn.take() {
            Some(iqn) => iqn,
            None => self.generated_iqn(&desired.name).await?,
        };
        let req = CreateTarget {
            name: desired.name.clone(),
            iqn,
            auth,
            max_sessions: extra.max_sessions.take(),
        };
        let id = self.client.targets().create(&req).await.map_err(vendor)?;
        // The target exists from here on: a later step that fails leaves it
        // to the next diff, which finds the setting missing and completes it.
        let rest = async {
            if extra != SetTarget::default() {
                self.client
                    .targets()
                    .set(id, &extra)
                    .await
                    .map_err(vendor)?;
            }
            if !desired.enabled {
                self.client.targets().disable(id).await.map_err(vendor)?;
            }
            Ok::<(), BackendError>(())
        };
        Ok(Created {
            id: id.to_string(),
            incomplete: rest.await.err(),
        })
    }

    /// See [`super::Backend::update_target`].
    pub async fn update_target(&self, id: &str, op: &TargetOp) -> Result<(), BackendError> {
        let set_call = call(API_TARGET, "set");
        let tid = target_id(&set_call, id)?;
        let targets = self.client.targets();
        match op {
            TargetOp::Rename { to } => {
                let set = SetTarget {
                    name: Some(to.clone()),
                    ..SetTarget::default()
                };
                targets.set(tid, &set).await.map_err(vendor)
            }
            TargetOp::SetSettings(settings) => {
                let set = convert::target_set_from(&set_call, settings)?;
                if set == SetTarget::default() {
                    return Ok(());
                }
                targets.set(tid, &set).await.map_err(vendor)
            }
            TargetOp::SetChap(chap) => {
                let set = SetTarget {
                    auth: Some(dsm_auth(&set_call, chap.as_ref())?),
                    ..SetTarget::default()
                };
                targets.set(tid, &set).await.map_err(vendor)
            }
            TargetOp::SetInitiators(list) if list.is_empty() => Ok(()),
            TargetOp::SetInitiators(_) => Err(initiators_unsupported(&set_call)),
            TargetOp::Enable => targets.enable(tid).await.map_err(vendor),
            TargetOp::Disable => targets.disable(tid).await.map_err(vendor),
            TargetOp::Map { lun_id } => match targets.map_lun(tid, &[lun_id]).await {
                Err(e) if e.class() == ErrorClass::AlreadyExists => Ok(()),
                other => other.map_err(vendor),
            },
            TargetOp::Unmap { lun_id } => gone_is_ok(targets.unmap_lun(tid, &[lun_id]).await),
            TargetOp::Create(_) | TargetOp::Delete { .. } => Err(BackendError::invalid(
                set_call,
                format!(
                    "{} is not an update: use create_target / delete_target",
                    op.verb()
                ),
            )),
        }
    }

    /// See [`super::Backend::delete_target`]: already gone is success. DSM
    /// drops the target's mappings with it; the LUNs stay.
    pub async fn delete_target(&self, id: &str) -> Result<(), BackendError> {
        let tid = target_id(&call(API_TARGET, "delete"), id)?;
        gone_is_ok(self.client.targets().delete(tid).await)
    }

    /// See [`super::Backend::close`]: logs out; a failure is only logged.
    pub async fn close(&self) {
        if let Err(e) = self.client.logout().await {
            tracing::info!(error = %e, "DSM logout failed");
        }
    }
}

fn initiators_unsupported(api_call: &str) -> BackendError {
    BackendError::unsupported(
        api_call,
        "spec.initiators: Synology targets take allowed initiators through host groups, which the DSM API used here does not offer; remove the list or use CHAP",
    )
}
