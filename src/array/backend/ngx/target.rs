//! iSCSI targets: observation, create, settings, CHAP and allowed
//! initiators (through auth groups), LUN mappings, delete.
//!
//! NGX holds CHAP and the allowed initiators on an auth group, which a
//! target points at. A target whose spec asks for CHAP or initiators gets a
//! group of its own, named [`own_group_name`] (from the target id, so a
//! rename keeps it); a target that asks for neither points at the default
//! group `1`. A group not named after the target (the default, or one an
//! administrator shares between targets) is never changed or deleted: the
//! adapter gives the target its own group instead.
//!
//! NGX targets have no enable switch (always accepting logins, reported as
//! enabled) and no IQN field (the array derives it from the name).

use crate::array::ngxstorage::{AuthGroup, Chap as NgxChap, Endpoint, NgxClient, TargetCreate};
use crate::model::{Chap, ObservedChap, ObservedTarget};
use crate::reconcile::target::{DesiredTarget, TargetOp};

use super::{misrouted, vendor};
use crate::array::backend::{BackendError, Created};

/// The default auth group's id (the document's "1"): no CHAP, any initiator.
pub const DEFAULT_AUTH_GROUP_ID: &str = "1";
/// Settings key of the portal group (its id as the array reports it).
pub const PORTAL_GROUP: &str = "portalGroup";
/// Settings key of the IQN (compared against the observed IQN).
pub const IQN: &str = "iqn";

const OWN_GROUP_PREFIX: &str = "arrayop";

/// The API call an error names, in the dialect the array speaks.
fn call(client: &NgxClient, endpoint: Endpoint) -> String {
    endpoint.op_key(client.dialect())
}

/// The name of the auth group the operator makes for target `target_id`:
/// `arrayop` and the first 23 characters of the id (auth group names are
/// 1-30 letters or numbers; 23 hex characters are 92 bits, unique enough).
pub fn own_group_name(target_id: &str) -> String {
    let tail: String = target_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(30 - OWN_GROUP_PREFIX.len())
        .collect();
    format!("{OWN_GROUP_PREFIX}{tail}")
}

fn observed_chap(g: &AuthGroup) -> Option<ObservedChap> {
    g.chap_username.as_ref().map(|u| ObservedChap {
        username: u.clone(),
        password: g.chap_password.clone(),
        mutual_username: None,
        mutual_password: None,
    })
}

/// Every target: the detailed target list and the detailed auth group list,
/// two calls whatever the number of targets.
pub(crate) async fn list(client: &NgxClient) -> Result<Vec<ObservedTarget>, BackendError> {
    let targets = client.targets_detailed().await.map_err(vendor)?;
    let groups = client.auth_groups_detailed().await.map_err(vendor)?;
    Ok(observe_all(targets, &groups))
}

/// The vendor-neutral view of listed targets and auth groups.
pub(crate) fn observe_all(
    targets: Vec<crate::array::ngxstorage::Target>,
    groups: &[crate::array::ngxstorage::AuthGroup],
) -> Vec<ObservedTarget> {
    targets
        .into_iter()
        .map(|t| {
            let group = t
                .auth_group_id
                .as_ref()
                .and_then(|id| groups.iter().find(|g| &g.id == id));
            let mut settings = std::collections::BTreeMap::new();
            if let Some(pg) = &t.portal_group_id {
                settings.insert(PORTAL_GROUP.to_string(), pg.clone());
            }
            let mut luns = t.luns;
            // LUN-number order; a mapping without a number goes last, in
            // the array's order.
            luns.sort_by_key(|m| m.number.unwrap_or(u32::MAX));
            ObservedTarget {
                id: t.id,
                name: t.name,
                iqn: t.iqn.unwrap_or_default(),
                enabled: true,
                settings,
                chap: group.and_then(observed_chap),
                initiators: group
                    .map(|g| g.initiators.iter().map(|i| i.iqn.clone()).collect())
                    .unwrap_or_default(),
                mapped_luns: luns.into_iter().map(|m| m.vol_id).collect(),
                connected_sessions: None,
                status: None,
            }
        })
        .collect()
}

/// Refuses CHAP NGX cannot hold: one pair per group, no mutual CHAP.
fn check_chap(call: &str, chap: Option<&Chap>) -> Result<Option<NgxChap>, BackendError> {
    let Some(c) = chap else { return Ok(None) };
    if c.mutual.is_some() {
        return Err(BackendError::unsupported(
            call,
            "spec.chap.mutual: an NGXStorage auth group holds one CHAP pair; mutual CHAP is not offered",
        ));
    }
    if c.initiator.username.trim().is_empty() || c.initiator.password.expose().trim().is_empty() {
        return Err(BackendError::invalid(
            call,
            "spec.chap: the CHAP user name and secret must not be empty",
        ));
    }
    Ok(Some(NgxChap {
        username: c.initiator.username.clone(),
        password: c.initiator.password.expose().to_string(),
    }))
}

fn unsupported_setting(call: &str, key: &str) -> BackendError {
    match key {
        IQN => BackendError::unsupported(
            call,
            "spec.iqn: NGXStorage derives a target's IQN from its name; it cannot be set",
        ),
        other => BackendError::unsupported(
            call,
            format!("spec.{other}: NGXStorage targets have no such setting"),
        ),
    }
}

/// The portal group id for `want` (an id or a name); without one, the only
/// portal group of the array.
async fn resolve_portal_group(
    client: &NgxClient,
    call: &str,
    want: Option<&str>,
) -> Result<String, BackendError> {
    let groups = client.portal_groups().await.map_err(vendor)?;
    match want {
        Some(w) => groups
            .iter()
            .find(|g| g.id == w)
            .or_else(|| groups.iter().find(|g| g.name.as_deref() == Some(w)))
            .map(|g| g.id.clone())
            .ok_or_else(|| {
                let known: Vec<String> = groups
                    .iter()
                    .map(|g| match &g.name {
                        Some(n) => format!("{n} ({})", g.id),
                        None => g.id.clone(),
                    })
                    .collect();
                BackendError::invalid(
                    call,
                    format!(
                        "spec.portalGroup: no portal group has the id or name {w:?} (the array has: {})",
                        known.join(", ")
                    ),
                )
            }),
        None if groups.len() == 1 => Ok(groups[0].id.clone()),
        None => Err(BackendError::invalid(
            call,
            format!(
                "spec.portalGroup is required: the array has {} portal groups, so none can be chosen for you",
                groups.len()
            ),
        )),
    }
}

/// Creates the target (without mappings; the diff maps LUNs next) and, when
/// the spec asks for CHAP or initiators, its own auth group.
/// Creates the target. `known_portal` is a portal group id the caller has
/// already resolved (from its cache); without it the groups are listed.
/// The IQN an NGX array gives a target named `name`, by the rule
/// [`iqn_rule`] learned.
pub(crate) fn derived_iqn(prefix: &str, name: &str) -> String {
    format!("{prefix}:{name}")
}

/// The prefix every listed target's IQN has before `:<target name>`, when
/// they all share one: the array derives IQNs that way, so a new target's
/// IQN is known without listing it again. `None` when the array has no
/// target yet or any target breaks the rule (then every create is followed
/// by a list, as before).
pub(crate) fn iqn_rule(targets: &[ObservedTarget]) -> Option<String> {
    let mut prefix: Option<&str> = None;
    for t in targets {
        let p = t.iqn.strip_suffix(&format!(":{}", t.name))?;
        if p.is_empty() || prefix.is_some_and(|q| q != p) {
            return None;
        }
        prefix = Some(p);
    }
    prefix.map(str::to_string)
}

/// The refusals a target create makes before its first call, and the CHAP
/// it will set.
fn check_create(client: &NgxClient, d: &DesiredTarget) -> Result<Option<NgxChap>, BackendError> {
    let create_call = call(client, Endpoint::TargetCreate);
    let chap = check_chap(&create_call, d.chap.as_ref())?;
    if !d.enabled {
        return Err(disable_unsupported(&create_call));
    }
    for key in d.settings.keys() {
        // The IQN is not sent: the array derives it, and a differing spec
        // IQN shows up as drift the next diff reports.
        if key != PORTAL_GROUP && key != IQN {
            return Err(unsupported_setting(&create_call, key));
        }
    }
    Ok(chap)
}

/// What [`create`] would answer, with no call that changes the array: its
/// refusals, the portal group it resolves (a read), the IQN it derives and
/// the LUNs it binds (the create binds every listed LUN).
pub(crate) async fn create_dry_run(
    client: &NgxClient,
    d: &DesiredTarget,
    known_portal: Option<String>,
    iqn_rule: Option<String>,
    id: String,
) -> Result<Created, BackendError> {
    let create_call = call(client, Endpoint::TargetCreate);
    check_create(client, d)?;
    if known_portal.is_none() {
        resolve_portal_group(
            client,
            &create_call,
            d.settings.get(PORTAL_GROUP).map(String::as_str),
        )
        .await?;
    }
    Ok(Created {
        iqn: iqn_rule.map(|prefix| derived_iqn(&prefix, &d.name)),
        id,
        incomplete: None,
        mapped_luns: d.luns.clone(),
        running: None,
    })
}

pub(crate) async fn create(
    client: &NgxClient,
    d: &DesiredTarget,
    known_portal: Option<String>,
    iqn_rule: Option<String>,
) -> Result<Created, BackendError> {
    // Everything that can be refused is refused before the first call.
    let create_call = call(client, Endpoint::TargetCreate);
    let chap = check_create(client, d)?;
    let portal = match known_portal {
        Some(id) => id,
        None => {
            resolve_portal_group(
                client,
                &create_call,
                d.settings.get(PORTAL_GROUP).map(String::as_str),
            )
            .await?
        }
    };
    let created = client
        .create_target(&TargetCreate {
            name: d.name.clone(),
            auth_group_id: DEFAULT_AUTH_GROUP_ID.to_string(),
            portal_group_id: portal,
            // Bound in the create itself: one call instead of a map after.
            lun_ids: d.luns.clone(),
        })
        .await
        .map_err(vendor)?;
    // What the answer lists as bound, in the spec's order; a LUN it does
    // not list is mapped by the diff that follows.
    let mapped_luns: Vec<String> = d
        .luns
        .iter()
        .filter(|id| created.luns.iter().any(|m| &m.vol_id == *id))
        .cloned()
        .collect();
    let mut incomplete = None;
    if chap.is_some() || !d.initiators.is_empty() {
        // The group is made after the target because its name comes from
        // the target id. A failure here leaves a target on the default
        // group, which the next diff finds (CHAP or initiators missing) and
        // completes through `update`.
        let rest = async {
            let group = own_group(client, &created.id).await?;
            apply(client, &group, ChapChange::Set(chap), Some(&d.initiators)).await?;
            client
                .set_target_auth_group(&created.id, &group.id)
                .await
                .map_err(vendor)
        };
        incomplete = rest.await.err();
    }
    Ok(Created {
        iqn: iqn_rule.map(|prefix| derived_iqn(&prefix, &d.name)),
        id: created.id,
        incomplete,
        mapped_luns,
        running: None,
    })
}

fn disable_unsupported(call: &str) -> BackendError {
    BackendError::unsupported(
        call,
        "spec.enabled: NGXStorage targets have no enable switch; they always accept logins",
    )
}

/// Applies one target operation other than create and delete.
pub(crate) async fn update(
    client: &NgxClient,
    id: &str,
    op: &TargetOp,
) -> Result<(), BackendError> {
    match op {
        TargetOp::Rename { to } => client.rename_target(id, to).await.map_err(vendor),
        TargetOp::SetSettings(settings) => {
            for key in settings.keys() {
                if key != PORTAL_GROUP {
                    return Err(unsupported_setting(
                        &call(client, Endpoint::TargetRename),
                        key,
                    ));
                }
            }
            if let Some(want) = settings.get(PORTAL_GROUP) {
                let pg_call = call(client, Endpoint::TargetPortalGroup);
                let pg = resolve_portal_group(client, &pg_call, Some(want)).await?;
                client
                    .set_target_portal_group(id, &pg)
                    .await
                    .map_err(vendor)?;
            }
            Ok(())
        }
        TargetOp::SetChap(chap) => {
            let chap = check_chap(&call(client, Endpoint::AuthGroupAddChap), chap.as_ref())?;
            change_auth(client, id, ChapChange::Set(chap), None).await
        }
        TargetOp::SetInitiators(initiators) => {
            change_auth(client, id, ChapChange::Keep, Some(initiators)).await
        }
        // Always enabled: the state asked for already holds.
        TargetOp::Enable => Ok(()),
        TargetOp::Disable => Err(disable_unsupported(&call(client, Endpoint::TargetRename))),
        // One call for the whole set (`lun_ids[]`).
        TargetOp::Map { lun_ids } => client.add_target_luns(id, lun_ids).await.map_err(vendor),
        TargetOp::Unmap { lun_ids } => client.remove_target_luns(id, lun_ids).await.map_err(vendor),
        TargetOp::Create(_) => Err(misrouted("update_target", "a target create")),
        TargetOp::Delete { .. } => Err(misrouted("update_target", "a target delete")),
    }
}

/// Deletes the target, then the auth group the operator made for it (also
/// when the target was already gone, so an interrupted delete is finished).
pub(crate) async fn delete(client: &NgxClient, id: &str) -> Result<(), BackendError> {
    // The target's own group goes first, while the target still exists: a
    // delete cut after the target is gone would leave the group behind with
    // nothing left to retry it. Each step is safe to repeat.
    let name = own_group_name(id);
    let groups = client.auth_groups().await.map_err(vendor)?;
    let own: Vec<_> = groups.iter().filter(|g| g.name == name).collect();
    if !own.is_empty() {
        client
            .set_target_auth_group(id, DEFAULT_AUTH_GROUP_ID)
            .await
            .map_err(vendor)?;
        for g in own {
            client.delete_auth_group(&g.id).await.map_err(vendor)?;
        }
    }
    client.delete_target(id).await.map_err(vendor)
}

/// What to do with CHAP on the target's own group.
enum ChapChange {
    /// Leave it as it is.
    Keep,
    /// Set it (`Some`) or clear it (`None`).
    Set(Option<NgxChap>),
}

/// The target's own group, as it is now: created, or (made by an earlier,
/// interrupted attempt) found by name.
async fn own_group(client: &NgxClient, target_id: &str) -> Result<AuthGroup, BackendError> {
    let name = own_group_name(target_id);
    match client.create_auth_group(&name).await {
        Ok(id) => Ok(AuthGroup {
            id,
            name,
            owner: Some(client.owner().to_string()),
            chap_username: None,
            chap_password: None,
            chap_enabled: false,
            initiators: Vec::new(),
        }),
        Err(e) if e.is_already_exists() => {
            let found = client
                .auth_groups()
                .await
                .map_err(vendor)?
                .into_iter()
                .find(|g| g.name == name);
            match found {
                Some(g) => client.auth_group(&g.id).await.map_err(vendor),
                None => Err(vendor(e)),
            }
        }
        Err(e) => Err(vendor(e)),
    }
}

/// Brings `group` to the CHAP and initiators asked for (`None`: leave the
/// initiators). Returns whether the group holds nothing afterwards.
async fn apply(
    client: &NgxClient,
    group: &AuthGroup,
    chap: ChapChange,
    initiators: Option<&[String]>,
) -> Result<bool, BackendError> {
    let has_chap = match chap {
        ChapChange::Keep => group.chap_username.is_some(),
        ChapChange::Set(Some(c)) => {
            client
                .set_auth_group_chap(&group.id, &c)
                .await
                .map_err(vendor)?;
            true
        }
        ChapChange::Set(None) => {
            if group.chap_username.is_some() || group.chap_enabled {
                client
                    .delete_auth_group_chap(&group.id)
                    .await
                    .map_err(vendor)?;
            }
            false
        }
    };
    let has_initiators = match initiators {
        None => !group.initiators.is_empty(),
        Some(want) => {
            for entry in group.initiators.iter().filter(|i| !want.contains(&i.iqn)) {
                client
                    .delete_auth_group_iqn(&entry.id)
                    .await
                    .map_err(vendor)?;
            }
            for iqn in want {
                if !group.initiators.iter().any(|i| &i.iqn == iqn) {
                    client
                        .add_auth_group_iqn(&group.id, iqn, &alias(iqn))
                        .await
                        .map_err(vendor)?;
                }
            }
            !want.is_empty()
        }
    };
    Ok(!has_chap && !has_initiators)
}

/// The alias the API requires with an initiator: the IQN's last part.
fn alias(iqn: &str) -> String {
    iqn.rsplit(':')
        .next()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(iqn)
        .to_string()
}

/// Changes CHAP or initiators of a target through its own group: made on
/// first need and attached; when it ends up empty the target goes back to
/// the default group and the own group is deleted.
async fn change_auth(
    client: &NgxClient,
    target_id: &str,
    chap: ChapChange,
    initiators: Option<&[String]>,
) -> Result<(), BackendError> {
    let target = client.target(target_id).await.map_err(vendor)?;
    let own_name = own_group_name(target_id);
    let current = match target.auth_group_id.as_deref() {
        Some(g) if g != DEFAULT_AUTH_GROUP_ID => Some(client.auth_group(g).await.map_err(vendor)?),
        _ => None,
    };
    if let Some(group) = current.as_ref().filter(|g| g.name == own_name) {
        let empty = apply(client, group, chap, initiators).await?;
        if empty {
            client
                .set_target_auth_group(target_id, DEFAULT_AUTH_GROUP_ID)
                .await
                .map_err(vendor)?;
            client.delete_auth_group(&group.id).await.map_err(vendor)?;
        }
        return Ok(());
    }
    // Not on its own group: the new group starts from what the current one
    // (an administrator's shared group) holds, so switching keeps what the
    // diff did not ask to change; CHAP only when the array returned its
    // secret (otherwise the next diff sets it).
    let chap = match chap {
        ChapChange::Keep => match current
            .as_ref()
            .and_then(|g| g.chap_username.clone().zip(g.chap_password.clone()))
        {
            Some((username, password)) => ChapChange::Set(Some(NgxChap {
                username,
                password: password.expose().to_string(),
            })),
            None => ChapChange::Keep,
        },
        set => set,
    };
    let carried: Vec<String> = current
        .as_ref()
        .map(|g| g.initiators.iter().map(|i| i.iqn.clone()).collect())
        .unwrap_or_default();
    let initiators = initiators.unwrap_or(&carried);
    let wants_chap = matches!(chap, ChapChange::Set(Some(_)));
    if !wants_chap && initiators.is_empty() {
        // Nothing to hold: the default group does, without making a group
        // that would be deleted straight away.
        if current.is_some() {
            client
                .set_target_auth_group(target_id, DEFAULT_AUTH_GROUP_ID)
                .await
                .map_err(vendor)?;
        }
        return Ok(());
    }
    let group = own_group(client, target_id).await?;
    apply(client, &group, chap, Some(initiators)).await?;
    client
        .set_target_auth_group(target_id, &group.id)
        .await
        .map_err(vendor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::ngxstorage::validate::Rule;

    #[test]
    fn own_group_names_follow_the_group_name_rule() {
        let id = "84904f58234656a66ede2075a38596003bb0013c";
        let name = own_group_name(id);
        assert!(Rule::GroupName.check_str(&name), "{name}");
        assert_eq!(name.len(), 30);
        assert_eq!(own_group_name("ab"), "arrayopab");
    }

    #[test]
    fn aliases_are_never_empty() {
        assert_eq!(alias("iqn.1993-08.org.debian:01:abc"), "abc");
        assert_eq!(alias("iqn.x:"), "iqn.x:");
    }
}
