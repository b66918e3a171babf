//! Auth group endpoints: create, delete, rename, CHAP, initiator IQNs,
//! detail, detail list, list.

use serde_json::json;

use super::client::NgxClient;
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::lun::{decode_err, list};
use super::types::{AuthGroup, Rec};

/// CHAP credentials. Debug never shows the password.
#[derive(Clone)]
pub struct Chap {
    /// User name.
    pub username: String,
    /// Secret.
    pub password: String,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chap")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A short auth group record from `GET auth_group/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthGroupSummary {
    /// Group id.
    pub id: String,
    /// Group name.
    pub name: String,
    /// Owner (absent on the default group).
    pub owner: Option<String>,
}

impl NgxClient {
    /// Creates an auth group; returns its id.
    pub async fn create_auth_group(&self, name: &str) -> Result<String, NgxError> {
        let body = json!({"name": name, "owner": self.owner()});
        let v = self
            .call(Endpoint::AuthGroupCreate, None, &[], Some(body))
            .await?;
        Rec::new(&v, self.dialect())
            .str(Field::CreatedId)
            .ok_or_else(|| {
                decode_err(
                    Endpoint::AuthGroupCreate,
                    self,
                    "no `id` in the answer".into(),
                )
            })
    }

    /// Deletes an auth group. Already gone counts as success.
    pub async fn delete_auth_group(&self, id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::AuthGroupDelete, Some(id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renames an auth group.
    pub async fn rename_auth_group(&self, id: &str, name: &str) -> Result<(), NgxError> {
        let body = json!({"name": name, "owner": self.owner()});
        self.call(Endpoint::AuthGroupRename, Some(id), &[], Some(body))
            .await
            .map(|_| ())
    }

    /// Sets (adds or replaces) the group's CHAP credentials.
    pub async fn set_auth_group_chap(&self, id: &str, chap: &Chap) -> Result<(), NgxError> {
        let body =
            json!({"username": chap.username, "password": chap.password, "owner": self.owner()});
        self.call(Endpoint::AuthGroupAddChap, Some(id), &[], Some(body))
            .await
            .map(|_| ())
    }

    /// Removes the group's CHAP credentials. None set counts as success.
    pub async fn delete_auth_group_chap(&self, id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::AuthGroupDeleteChap, Some(id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Allows an initiator. Returns the entry id, or `None` when the IQN was
    /// already allowed (already exists counts as success).
    pub async fn add_auth_group_iqn(
        &self,
        id: &str,
        iqn: &str,
        alias: &str,
    ) -> Result<Option<String>, NgxError> {
        let mut body = json!({"iqn": iqn, "owner": self.owner()});
        body[Field::ReqIqnAlias.name(self.dialect())] = json!(alias);
        match self
            .call(Endpoint::AuthGroupAddIqn, Some(id), &[], Some(body))
            .await
        {
            Ok(v) => Ok(Rec::new(&v, self.dialect()).str(Field::CreatedId)),
            Err(e) if e.is_already_exists() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes an initiator entry by its id. Already gone counts as success.
    pub async fn delete_auth_group_iqn(&self, iqn_id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::AuthGroupDeleteIqn, Some(iqn_id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One auth group in detail.
    pub async fn auth_group(&self, id: &str) -> Result<AuthGroup, NgxError> {
        let v = self
            .call(Endpoint::AuthGroupDetail, Some(id), &[], None)
            .await?;
        AuthGroup::decode(&v, self.dialect())
            .map_err(|e| decode_err(Endpoint::AuthGroupDetail, self, e))
    }

    /// Every auth group in detail.
    pub async fn auth_groups_detailed(&self) -> Result<Vec<AuthGroup>, NgxError> {
        let v = self
            .call(Endpoint::AuthGroupDetailList, None, &[], None)
            .await?;
        list(&v)
            .iter()
            .map(|g| AuthGroup::decode(g, self.dialect()))
            .collect::<Result<_, _>>()
            .map_err(|e| decode_err(Endpoint::AuthGroupDetailList, self, e))
    }

    /// Every auth group, short form.
    pub async fn auth_groups(&self) -> Result<Vec<AuthGroupSummary>, NgxError> {
        let v = self.call(Endpoint::AuthGroupList, None, &[], None).await?;
        list(&v)
            .iter()
            .map(|g| {
                let r = Rec::new(g, self.dialect());
                Ok(AuthGroupSummary {
                    id: r.need_str(Field::GroupId)?,
                    name: r.need_str(Field::GroupName)?,
                    owner: r.str(Field::GroupOwner),
                })
            })
            .collect::<Result<_, String>>()
            .map_err(|e| decode_err(Endpoint::AuthGroupList, self, e))
    }
}
