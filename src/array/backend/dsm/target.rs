//! The DSM adapter's target client: create, update, delete, and the IQN
//! DSM's UI would generate.

use super::*;

/// A target id as DSM knows it (decimal `target_id`).
pub(super) fn target_id(api_call: &str, id: &str) -> Result<i64, BackendError> {
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

fn initiators_unsupported(api_call: &str) -> BackendError {
    BackendError::unsupported(
        api_call,
        "spec.initiators: Synology targets take allowed initiators through host groups, which the DSM API used here does not offer; remove the list or use CHAP",
    )
}

impl DsmBackend {
    /// The IQN for a target the spec gives none (see the module docs).
    async fn generated_iqn(&self, name: &str) -> Result<String, BackendError> {
        // The lock is held across the look-up, so creates that arrive
        // together wait for one list instead of each making one.
        let mut host = self.host.lock().await;
        if host.is_none() {
            let targets = self.client.targets().list().await.map_err(vendor)?;
            // Looked once: with no DSM-generated IQN to learn from, the
            // fallback stands until an observation finds a real one, so
            // later creates list nothing.
            *host = Some(
                super::real_host(&targets).unwrap_or_else(|| convert::FALLBACK_HOST.to_string()),
            );
        }
        let host = host.clone().unwrap_or_default();
        Ok(convert::generated_iqn(&host, name))
    }

    /// The create request and the settings set after it, with the IQN the
    /// adapter chose (when the spec gave none): everything that can be
    /// refused is refused here, before any call that changes the array.
    async fn prepare_target(
        &self,
        desired: &DesiredTarget,
    ) -> Result<(CreateTarget, SetTarget, Option<String>), BackendError> {
        let api_call = call(API_TARGET, "create");
        if !desired.initiators.is_empty() {
            return Err(initiators_unsupported(&api_call));
        }
        let mut extra = convert::target_set_from(&api_call, &desired.settings)?;
        let auth = dsm_auth(&api_call, desired.chap.as_ref())?;
        let (iqn, chosen) = match extra.iqn.take() {
            Some(iqn) => (iqn, None),
            None => {
                let iqn = self.generated_iqn(&desired.name).await?;
                (iqn.clone(), Some(iqn))
            }
        };
        let req = CreateTarget {
            name: desired.name.clone(),
            iqn,
            auth,
            max_sessions: extra.max_sessions.take(),
        };
        Ok((req, extra, chosen))
    }

    /// See [`super::Backend::create_target_dry_run`].
    pub async fn create_target_dry_run(
        &self,
        desired: &DesiredTarget,
        id: String,
    ) -> Result<Created, BackendError> {
        let (_, _, chosen) = self.prepare_target(desired).await?;
        Ok(Created {
            id,
            incomplete: None,
            iqn: chosen,
            mapped_luns: Vec::new(),
            running: None,
        })
    }

    /// See [`super::Backend::create_target`].
    pub async fn create_target(&self, desired: &DesiredTarget) -> Result<Created, BackendError> {
        let (req, extra, chosen) = self.prepare_target(desired).await?;
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
            iqn: chosen,
            mapped_luns: Vec::new(),
            running: None,
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
            // One call for the whole set: DSM takes a list and numbers the
            // LUNs in its order. "Already mapped" settles a single LUN; for
            // a set it does not say the others were mapped, so it stays an
            // error and the next pass re-lists and maps what is missing.
            TargetOp::Map { lun_ids } => {
                let ids: Vec<&str> = lun_ids.iter().map(String::as_str).collect();
                match targets.map_lun(tid, &ids).await {
                    Err(e) if e.class() == ErrorClass::AlreadyExists && ids.len() == 1 => Ok(()),
                    other => other.map_err(vendor),
                }
            }
            TargetOp::Unmap { lun_ids } => {
                let ids: Vec<&str> = lun_ids.iter().map(String::as_str).collect();
                gone_is_ok(targets.unmap_lun(tid, &ids).await)
            }
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
}
