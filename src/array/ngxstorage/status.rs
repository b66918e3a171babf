//! Status endpoints: system info, capacity, pools, cluster, license.

use super::client::NgxClient;
use super::dialect::Endpoint;
use super::dialect::Field;
use super::error::NgxError;
use super::listing;
use super::lun::decode_err;
use super::types::{ClusterStatus, License, PoolCapacity, PoolHealth, SystemInfo};

impl NgxClient {
    /// Model, version, serial.
    pub async fn system_info(&self) -> Result<SystemInfo, NgxError> {
        let v = self
            .call(Endpoint::StatusSystemInfo, None, &[], None)
            .await?;
        Ok(SystemInfo::decode(&v))
    }

    /// Capacity per pool.
    pub async fn capacity(&self) -> Result<Vec<PoolCapacity>, NgxError> {
        let v = self.call(Endpoint::StatusCapacity, None, &[], None).await?;
        PoolCapacity::decode_status(&v).map_err(|e| decode_err(Endpoint::StatusCapacity, self, e))
    }

    /// Health per pool.
    pub async fn pool_health(&self) -> Result<Vec<PoolHealth>, NgxError> {
        listing::fetch(
            self,
            Endpoint::StatusPools,
            &[],
            Field::PoolId,
            PoolHealth::decode,
        )
        .await?
        .into_strict()
    }

    /// The answering controller's cluster status.
    pub async fn cluster(&self) -> Result<ClusterStatus, NgxError> {
        let v = self.call(Endpoint::StatusCluster, None, &[], None).await?;
        ClusterStatus::decode(&v).map_err(|e| decode_err(Endpoint::StatusCluster, self, e))
    }

    /// License validity and features.
    pub async fn license(&self) -> Result<License, NgxError> {
        let v = self.call(Endpoint::StatusLicense, None, &[], None).await?;
        License::decode(&v).map_err(|e| decode_err(Endpoint::StatusLicense, self, e))
    }
}
