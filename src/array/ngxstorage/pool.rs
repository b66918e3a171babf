//! Pool endpoints (list, detail, overview) and portal groups (list, detail).

use super::client::NgxClient;
use super::dialect::Endpoint;
use super::error::NgxError;
use super::lun::{decode_err, list};
use super::types::{Pool, PoolCapacity, PortalGroup};

impl NgxClient {
    /// Every pool.
    pub async fn pools(&self) -> Result<Vec<Pool>, NgxError> {
        let v = self.call(Endpoint::PoolList, None, &[], None).await?;
        list(&v)
            .iter()
            .map(|p| Pool::decode(p, self.dialect()))
            .collect::<Result<_, _>>()
            .map_err(|e| decode_err(Endpoint::PoolList, self, e))
    }

    /// One pool in detail.
    pub async fn pool(&self, id: &str) -> Result<Pool, NgxError> {
        let v = self.call(Endpoint::PoolDetail, Some(id), &[], None).await?;
        Pool::decode(&v, self.dialect()).map_err(|e| decode_err(Endpoint::PoolDetail, self, e))
    }

    /// Capacity of every pool.
    pub async fn pool_overview(&self) -> Result<Vec<PoolCapacity>, NgxError> {
        let v = self.call(Endpoint::PoolOverview, None, &[], None).await?;
        PoolCapacity::decode_overview(&v).map_err(|e| decode_err(Endpoint::PoolOverview, self, e))
    }

    /// Every portal group.
    pub async fn portal_groups(&self) -> Result<Vec<PortalGroup>, NgxError> {
        let v = self
            .call(Endpoint::PortalGroupList, None, &[], None)
            .await?;
        list(&v)
            .iter()
            .map(|p| PortalGroup::decode(p, self.dialect()))
            .collect::<Result<_, _>>()
            .map_err(|e| decode_err(Endpoint::PortalGroupList, self, e))
    }

    /// One portal group in detail.
    pub async fn portal_group(&self, id: &str) -> Result<PortalGroup, NgxError> {
        let v = self
            .call(Endpoint::PortalGroupDetail, Some(id), &[], None)
            .await?;
        PortalGroup::decode(&v, self.dialect())
            .map_err(|e| decode_err(Endpoint::PortalGroupDetail, self, e))
    }
}
