//! Auth group endpoints: create, delete, rename, CHAP, initiator IQNs,
//! detail, detail list, list.

use serde_json::json;

use super::client::NgxClient;
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::listing::{self, Listing};
use super::lun::decode_err;
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

    /// Deletes an auth group. Already gone counts as success: a not-found
    /// code, or a code-less 404 when a fresh list no longer holds the group.
    pub async fn delete_auth_group(&self, id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::AuthGroupDelete, Some(id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => {
                let still_there = self.auth_groups().await?.iter().any(|g| g.id == id);
                if still_there { Err(e) } else { Ok(()) }
            }
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

    /// Removes the group's CHAP credentials. None set counts as success: a
    /// not-found code, or a code-less 404 when the group read afresh has no
    /// CHAP (or is gone).
    pub async fn delete_auth_group_chap(&self, id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::AuthGroupDeleteChap, Some(id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => match self.auth_group(id).await {
                Ok(g) if g.chap_enabled || g.chap_username.is_some() => Err(e),
                Ok(_) => Ok(()),
                Err(gone) if gone.is_not_found() => Ok(()),
                Err(other) => Err(other),
            },
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

    /// Removes an initiator entry by its id. Already gone counts as
    /// success: a not-found code, or a code-less 404 when no auth group
    /// read afresh holds the entry.
    pub async fn delete_auth_group_iqn(&self, iqn_id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::AuthGroupDeleteIqn, Some(iqn_id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => {
                let still_there = self
                    .auth_groups_detailed()
                    .await?
                    .iter()
                    .any(|g| g.initiators.iter().any(|i| i.id == iqn_id));
                if still_there { Err(e) } else { Ok(()) }
            }
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

    /// Every auth group in detail; fails on a malformed record.
    pub async fn auth_groups_detailed(&self) -> Result<Vec<AuthGroup>, NgxError> {
        self.auth_groups_detailed_listing().await?.into_strict()
    }

    /// Every auth group in detail, a malformed record reported on its own.
    pub async fn auth_groups_detailed_listing(&self) -> Result<Listing<AuthGroup>, NgxError> {
        listing::fetch(
            self,
            Endpoint::AuthGroupDetailList,
            &[],
            Field::GroupId,
            AuthGroup::decode,
        )
        .await
    }

    /// Every auth group, short form; fails on a malformed record.
    pub async fn auth_groups(&self) -> Result<Vec<AuthGroupSummary>, NgxError> {
        listing::fetch(
            self,
            Endpoint::AuthGroupList,
            &[],
            Field::GroupId,
            |g, d| {
                let r = Rec::new(g, d);
                Ok(AuthGroupSummary {
                    id: r.need_str(Field::GroupId)?,
                    name: r.need_str(Field::GroupName)?,
                    owner: r.str(Field::GroupOwner),
                })
            },
        )
        .await?
        .into_strict()
    }
}
