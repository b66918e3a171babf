//! The Synology DSM adapter of [`super::Backend`] (being written).

use crate::array::types::{ObservedLun, ObservedTarget};
use crate::reconcile::lun::{DesiredLun, LunOp};
use crate::reconcile::target::{DesiredTarget, TargetOp};

use super::{ArrayInfo, BackendConfig, BackendError};

/// A connected Synology DSM array.
#[derive(Clone, Debug)]
pub struct DsmBackend {
    _private: (),
}

fn todo(call: &str) -> BackendError {
    BackendError::unsupported(call, "the Synology DSM adapter is not written yet")
}

impl DsmBackend {
    /// Connects and authenticates.
    pub async fn connect(_config: BackendConfig) -> Result<Self, BackendError> {
        Err(todo("connect"))
    }
    /// See [`super::Backend::info`].
    pub async fn info(&self) -> Result<ArrayInfo, BackendError> {
        Err(todo("info"))
    }
    /// See [`super::Backend::list_luns`].
    pub async fn list_luns(&self) -> Result<Vec<ObservedLun>, BackendError> {
        Err(todo("list_luns"))
    }
    /// See [`super::Backend::list_targets`].
    pub async fn list_targets(&self) -> Result<Vec<ObservedTarget>, BackendError> {
        Err(todo("list_targets"))
    }
    /// See [`super::Backend::create_lun`].
    pub async fn create_lun(&self, _desired: &DesiredLun) -> Result<String, BackendError> {
        Err(todo("create_lun"))
    }
    /// See [`super::Backend::update_lun`].
    pub async fn update_lun(&self, _id: &str, _op: &LunOp) -> Result<(), BackendError> {
        Err(todo("update_lun"))
    }
    /// See [`super::Backend::delete_lun`].
    pub async fn delete_lun(&self, _id: &str) -> Result<(), BackendError> {
        Err(todo("delete_lun"))
    }
    /// See [`super::Backend::create_target`].
    pub async fn create_target(&self, _desired: &DesiredTarget) -> Result<String, BackendError> {
        Err(todo("create_target"))
    }
    /// See [`super::Backend::update_target`].
    pub async fn update_target(&self, _id: &str, _op: &TargetOp) -> Result<(), BackendError> {
        Err(todo("update_target"))
    }
    /// See [`super::Backend::delete_target`].
    pub async fn delete_target(&self, _id: &str) -> Result<(), BackendError> {
        Err(todo("delete_target"))
    }
    /// See [`super::Backend::normalize_target`]: nothing to resolve on DSM.
    pub async fn normalize_target(&self, _desired: &mut DesiredTarget) -> Result<(), BackendError> {
        Ok(())
    }
    /// See [`super::Backend::observe`].
    pub async fn observe(&self) -> Result<(Vec<ObservedLun>, Vec<ObservedTarget>), BackendError> {
        Ok((self.list_luns().await?, self.list_targets().await?))
    }
    /// See [`super::Backend::close`].
    pub async fn close(&self) {}
}
