//! iSCSI target endpoints: create, delete, rename, change portal group,
//! change auth group, add and remove LUNs, detail, detail list, list.

use serde_json::json;

use super::client::NgxClient;
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::listing::{self, Listing};
use super::lun::decode_err;
use super::types::{MappedLun, Rec, Target, TargetCreated};

/// What to create: the body of `POST target/iscsi/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetCreate {
    /// Target name (1-30 letters, numbers, `_`, `-`).
    pub name: String,
    /// Auth group id (`1` is the default group).
    pub auth_group_id: String,
    /// Portal group id.
    pub portal_group_id: String,
    /// LUN `vol_id`s to map at creation.
    pub lun_ids: Vec<String>,
}

/// A short target record from `GET iscsi_target/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSummary {
    /// Target id.
    pub id: String,
    /// Target name.
    pub name: String,
    /// Owner.
    pub owner: Option<String>,
}

impl NgxClient {
    /// Creates a target.
    pub async fn create_target(&self, spec: &TargetCreate) -> Result<TargetCreated, NgxError> {
        let mut body = json!({
            "name": spec.name,
            "auth_group_id": spec.auth_group_id,
            "portal_group_id": spec.portal_group_id,
            "owner": self.owner(),
        });
        if !spec.lun_ids.is_empty() {
            body["lun_ids"] = json!(spec.lun_ids);
        }
        let v = self
            .call(Endpoint::TargetCreate, None, &[], Some(body))
            .await?;
        let r = Rec::new(&v, self.dialect());
        let id = r.str(Field::CreatedId).ok_or_else(|| {
            decode_err(Endpoint::TargetCreate, self, "no `id` in the answer".into())
        })?;
        let luns = MappedLun::decode_all(r.array(Field::TargetLuns), self.dialect())
            .map_err(|e| decode_err(Endpoint::TargetCreate, self, e))?;
        Ok(TargetCreated { id, luns })
    }

    /// Deletes a target. Already gone counts as success: a not-found code,
    /// or a code-less 404 when a fresh list no longer holds the target.
    pub async fn delete_target(&self, id: &str) -> Result<(), NgxError> {
        match self.call(Endpoint::TargetDelete, Some(id), &[], None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => {
                let still_there = self.targets().await?.iter().any(|t| t.id == id);
                if still_there { Err(e) } else { Ok(()) }
            }
            Err(e) => Err(e),
        }
    }

    /// Renames a target.
    pub async fn rename_target(&self, id: &str, name: &str) -> Result<(), NgxError> {
        let body = json!({"name": name, "owner": self.owner()});
        self.call(Endpoint::TargetRename, Some(id), &[], Some(body))
            .await
            .map(|_| ())
    }

    /// Moves a target to another portal group.
    pub async fn set_target_portal_group(
        &self,
        id: &str,
        portal_group_id: &str,
    ) -> Result<(), NgxError> {
        let body = json!({"portal_group_id": portal_group_id, "owner": self.owner()});
        self.call(Endpoint::TargetPortalGroup, Some(id), &[], Some(body))
            .await
            .map(|_| ())
    }

    /// Moves a target to another auth group.
    pub async fn set_target_auth_group(
        &self,
        id: &str,
        auth_group_id: &str,
    ) -> Result<(), NgxError> {
        let body = json!({"auth_group_id": auth_group_id, "owner": self.owner()});
        self.call(Endpoint::TargetAuthGroup, Some(id), &[], Some(body))
            .await
            .map(|_| ())
    }

    /// Maps LUNs to a target. A LUN already mapped counts as success.
    pub async fn add_target_luns(&self, id: &str, lun_ids: &[String]) -> Result<(), NgxError> {
        let body = json!({"lun_ids": lun_ids, "owner": self.owner()});
        match self
            .call(Endpoint::TargetAddLun, Some(id), &[], Some(body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Unmaps LUNs from a target. A LUN not mapped (or gone) counts as
    /// success: a not-found code, or a code-less 404 when the target read
    /// afresh maps none of them (or is gone itself).
    pub async fn remove_target_luns(&self, id: &str, lun_ids: &[String]) -> Result<(), NgxError> {
        let body = json!({"lun_ids": lun_ids, "owner": self.owner()});
        match self
            .call(Endpoint::TargetRemoveLun, Some(id), &[], Some(body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => match self.target(id).await {
                Ok(t) if t.luns.iter().any(|m| lun_ids.contains(&m.vol_id)) => Err(e),
                Ok(_) => Ok(()),
                Err(gone) if gone.is_not_found() => Ok(()),
                Err(other) => Err(other),
            },
            Err(e) => Err(e),
        }
    }

    /// One target in detail.
    pub async fn target(&self, id: &str) -> Result<Target, NgxError> {
        let v = self
            .call(Endpoint::TargetDetail, Some(id), &[], None)
            .await?;
        Target::decode(&v, self.dialect()).map_err(|e| decode_err(Endpoint::TargetDetail, self, e))
    }

    /// Every target in detail; fails on a malformed record (see
    /// [`NgxClient::targets_detailed_listing`] for the partial view).
    pub async fn targets_detailed(&self) -> Result<Vec<Target>, NgxError> {
        self.targets_detailed_listing().await?.into_strict()
    }

    /// Every target in detail, a malformed record reported on its own.
    pub async fn targets_detailed_listing(&self) -> Result<Listing<Target>, NgxError> {
        listing::fetch(
            self,
            Endpoint::TargetDetailList,
            &[],
            Field::TargetId,
            Target::decode,
        )
        .await
    }

    /// Every target, short form; fails on a malformed record.
    pub async fn targets(&self) -> Result<Vec<TargetSummary>, NgxError> {
        listing::fetch(self, Endpoint::TargetList, &[], Field::TargetId, |t, d| {
            let r = Rec::new(t, d);
            Ok(TargetSummary {
                id: r.need_str(Field::TargetId)?,
                name: r.need_str(Field::TargetName)?,
                owner: r.str(Field::TargetOwner),
            })
        })
        .await?
        .into_strict()
    }
}
