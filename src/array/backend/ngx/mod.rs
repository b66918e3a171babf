//! The NGXStorage adapter of [`super::Backend`]: translates the
//! vendor-neutral views and operations to [`NgxClient`] calls.
//!
//! - LUNs: [`lun`] (settings keys `ngxstorage.*`, see [`lun::SETTING_KEYS`]).
//! - Targets: [`target`]. NGX keeps CHAP and allowed initiators on an *auth
//!   group* a target points at, not on the target. A target that needs
//!   either gets a group of its own, named from its id
//!   ([`target::own_group_name`]); a target that needs neither uses the
//!   array's default group. The name is the only mark of ownership the API
//!   offers, and deriving it from the id (not the name) survives renames.

pub mod lun;
pub mod rules;
pub mod snapshot;
pub mod target;

use crate::array::error::ErrorClass;
use crate::array::ngxstorage::{self, NgxClient, NgxConfig, NgxError, Token};
use crate::crd::storage_array::ResizeMode;
use crate::model::{ObservedLun, ObservedTarget};
use crate::reconcile::lun::{DesiredLun, LunOp};
use crate::reconcile::target::{DesiredTarget, TargetOp};

use super::{ArrayInfo, BackendConfig, BackendError, Created, Credentials, Observation};

/// A portal group's id and, when it has one, its name.
type PortalGroupName = (String, Option<String>);

/// A connected NGXStorage array (or HA pair). Cheap to clone: clones share
/// the client's connection pool, concurrency limit and Master choice.
#[derive(Clone, Debug)]
pub struct NgxBackend {
    client: NgxClient,
    /// Portal groups as `(id, name)`: they change rarely, and the engine
    /// needs them on every target reconcile to read a spec that names a
    /// group by name, so they are listed once and again only on a miss.
    portal_groups: std::sync::Arc<tokio::sync::Mutex<Option<Vec<PortalGroupName>>>>,
    /// The rule the array's target IQNs follow (`<prefix>:<name>`), learned
    /// from the last observation in which every target followed it; see
    /// [`target::iqn_rule`].
    iqn_prefix: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// Converts a client error, keeping class, code and API call.
pub(crate) fn vendor(e: NgxError) -> BackendError {
    BackendError::from_vendor(&e)
}

impl NgxBackend {
    /// Builds the client configuration from a StorageArray's view. Refuses
    /// a wrong credential kind and a missing owner before any call.
    pub fn client_config(config: &BackendConfig) -> Result<NgxConfig, BackendError> {
        let token = match &config.credentials {
            Credentials::Token(t) => Token::new(t.expose()),
            Credentials::UserPassword { .. } => {
                return Err(BackendError::invalid(
                    "connect",
                    "spec.credentialsSecretRef: an NGXStorage array takes a bearer token: the Secret needs the key `token`",
                ));
            }
        };
        let owner = config
            .ngx_owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                BackendError::invalid(
                    "connect",
                    "spec.ngxstorage.owner is required for an NGXStorage array: the controller id (for example <serial>_A) every change carries",
                )
            })?;
        let mut c = NgxConfig::new(config.endpoint.clone(), token, owner);
        c.secondary_endpoint = config.secondary_endpoint.clone();
        c.resize_mode = match config.resize_mode {
            ResizeMode::Auto => ngxstorage::ResizeMode::Auto,
            ResizeMode::Absolute => ngxstorage::ResizeMode::Absolute,
            ResizeMode::Delta => ngxstorage::ResizeMode::Delta,
        };
        c.transport = config.transport.clone();
        Ok(c)
    }

    /// Connects: checks the configuration, picks the Master controller and
    /// detects the dialect.
    pub async fn connect(config: BackendConfig) -> Result<Self, BackendError> {
        let c = Self::client_config(&config)?;
        Self::connect_with(c).await
    }

    /// Connects with a client configuration built by the caller (tests use
    /// it to shorten the busy backoff).
    pub async fn connect_with(config: NgxConfig) -> Result<Self, BackendError> {
        let client = NgxClient::connect(config).await.map_err(vendor)?;
        Ok(NgxBackend {
            client,
            portal_groups: Default::default(),
            iqn_prefix: Default::default(),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &NgxClient {
        &self.client
    }

    /// See [`super::Backend::normalize_target`]: a `portalGroup` given by
    /// name becomes the id the array reports, so the diff compares like
    /// with like. An unknown name is left as written; create and update
    /// then refuse it with the list of groups.
    pub async fn normalize_target(&self, desired: &mut DesiredTarget) -> Result<(), BackendError> {
        let Some(want) = desired.settings.get(target::PORTAL_GROUP).cloned() else {
            return Ok(());
        };
        if let Some(id) = self.portal_group_id(Some(&want)).await? {
            desired
                .settings
                .insert(target::PORTAL_GROUP.to_string(), id);
        }
        Ok(())
    }

    /// See [`super::Backend::info`].
    pub async fn info(&self) -> Result<ArrayInfo, BackendError> {
        let system = self.client.system_info().await.map_err(vendor)?;
        let pools = self.client.pool_overview().await.map_err(vendor)?;
        Ok(ArrayInfo {
            model: system.product,
            version: system.app_version,
            serial: system.service_tag,
            dialect: Some(self.client.dialect().as_str().to_string()),
            active_endpoint: self.client.active_endpoint().await,
            resize_mode: self
                .client
                .effective_resize_mode()
                .map(|m| m.as_str().to_string()),
            pools: pools
                .into_iter()
                .map(|p| (p.pool, p.total_bytes, p.free_bytes))
                .collect(),
        })
    }

    /// See [`super::Backend::list_luns`].
    pub async fn list_luns(&self) -> Result<Vec<ObservedLun>, BackendError> {
        lun::list(&self.client).await
    }

    /// See [`super::Backend::observe`]: LUNs, targets and auth groups, one
    /// list call each.
    pub async fn observe(&self) -> Result<Observation, BackendError> {
        let luns = self.client.luns_detailed_listing().await.map_err(vendor)?;
        let targets = self
            .client
            .targets_detailed_listing()
            .await
            .map_err(vendor)?;
        // A group the operator cannot read would hide CHAP state of some
        // target: that one stays strict.
        let groups = self.client.auth_groups_detailed().await.map_err(vendor)?;
        // Portal groups are listed with the rest, once per observation, so
        // a target create needs no list of its own.
        let portals = self.client.portal_groups().await.map_err(vendor)?;
        *self.portal_groups.lock().await =
            Some(portals.into_iter().map(|g| (g.id, g.name)).collect());
        let malformed = |m: Vec<crate::array::ngxstorage::listing::Malformed>| {
            m.into_iter()
                .map(|m| (m.id, vendor(m.error)))
                .collect::<Vec<_>>()
        };
        let by_lun = lun::targets_by_lun(&targets.items);
        let observed_luns = luns
            .items
            .into_iter()
            .map(|l| lun::observe(l, &by_lun))
            .collect();
        let targets_seen = target::observe_all(targets.items, &groups);
        *self.iqn_prefix.lock().unwrap_or_else(|p| p.into_inner()) =
            target::iqn_rule(&targets_seen);
        Ok(Observation {
            luns: observed_luns,
            malformed_luns: malformed(luns.malformed),
            malformed_targets: malformed(targets.malformed),
            targets: targets_seen,
        })
    }

    /// See [`super::Backend::list_targets`].
    pub async fn list_targets(&self) -> Result<Vec<ObservedTarget>, BackendError> {
        target::list(&self.client).await
    }

    /// See [`super::Backend::create_lun`].
    pub async fn create_lun(&self, desired: &DesiredLun) -> Result<String, BackendError> {
        lun::create(&self.client, desired).await
    }

    /// See [`super::Backend::update_lun`].
    pub async fn update_lun(&self, id: &str, op: &LunOp) -> Result<(), BackendError> {
        lun::update(&self.client, id, op).await
    }

    /// See [`super::Backend::delete_lun`].
    pub async fn delete_lun(&self, id: &str) -> Result<(), BackendError> {
        self.client.delete_lun(id).await.map_err(vendor)
    }

    /// See [`super::Backend::create_target_dry_run`].
    pub async fn create_target_dry_run(
        &self,
        desired: &DesiredTarget,
        id: String,
    ) -> Result<Created, BackendError> {
        let want = desired
            .settings
            .get(target::PORTAL_GROUP)
            .map(String::as_str);
        let known = self.portal_group_id(want).await?;
        let rule = self
            .iqn_prefix
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        target::create_dry_run(&self.client, desired, known, rule, id).await
    }

    /// See [`super::Backend::create_target`].
    pub async fn create_target(&self, desired: &DesiredTarget) -> Result<Created, BackendError> {
        // A group the spec names is taken from the portal groups already
        // listed for this array, so a burst of creates costs no read each.
        // An unknown or ambiguous choice falls back to the listing, which
        // explains itself.
        let want = desired
            .settings
            .get(target::PORTAL_GROUP)
            .map(String::as_str);
        let known = self.portal_group_id(want).await?;
        let rule = self
            .iqn_prefix
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        target::create(&self.client, desired, known, rule).await
    }

    /// The portal group id for `want` (an id or a name) or, without one,
    /// the array's only group: from the groups the last observation listed
    /// (at most `resyncInterval` old, like everything the engine decides
    /// from), listed again on a miss.
    async fn portal_group_id(&self, want: Option<&str>) -> Result<Option<String>, BackendError> {
        let pick = |groups: &[PortalGroupName]| match want {
            Some(w) => groups
                .iter()
                .find(|(id, _)| id == w)
                .or_else(|| groups.iter().find(|(_, name)| name.as_deref() == Some(w)))
                .map(|(id, _)| id.clone()),
            None if groups.len() == 1 => Some(groups[0].0.clone()),
            None => None,
        };
        let mut cache = self.portal_groups.lock().await;
        if let Some(found) = cache.as_deref().and_then(pick) {
            return Ok(Some(found));
        }
        let groups = self.client.portal_groups().await.map_err(vendor)?;
        let pairs: Vec<PortalGroupName> = groups.into_iter().map(|g| (g.id, g.name)).collect();
        let found = pick(&pairs);
        *cache = Some(pairs);
        Ok(found)
    }

    /// See [`super::Backend::update_target`].
    pub async fn update_target(&self, id: &str, op: &TargetOp) -> Result<(), BackendError> {
        target::update(&self.client, id, op).await
    }

    /// See [`super::Backend::delete_target`].
    pub async fn delete_target(&self, id: &str) -> Result<(), BackendError> {
        target::delete(&self.client, id).await
    }

    /// See [`super::Backend::close`]: NGX has no session (a bearer token per
    /// call), so there is nothing to end.
    pub async fn close(&self) {}
}

/// A programming error of the caller: an operation routed to the wrong
/// method. Reported, never a panic.
pub(crate) fn misrouted(call: &str, what: &str) -> BackendError {
    BackendError {
        class: ErrorClass::InvalidRequest,
        vendor_code: None,
        api_call: call.to_string(),
        message: format!("{what} is not applied through {call}; this is an operator bug"),
    }
}
