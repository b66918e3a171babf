//! Pool endpoints (list, detail, overview) and portal groups (list, detail).

use super::client::NgxClient;
use super::dialect::Endpoint;
use super::dialect::Field;
use super::error::NgxError;
use super::listing;
use super::lun::decode_err;
use super::types::{Pool, PoolCapacity, PortalGroup};

impl NgxClient {
    /// Every pool.
    pub async fn pools(&self) -> Result<Vec<Pool>, NgxError> {
        listing::fetch(self, Endpoint::PoolList, &[], Field::PoolId, Pool::decode)
            .await?
            .into_strict()
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
        listing::fetch(
            self,
            Endpoint::PortalGroupList,
            &[],
            Field::PortalId,
            PortalGroup::decode,
        )
        .await?
        .into_strict()
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
