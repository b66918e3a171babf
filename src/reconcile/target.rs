//! The iSCSI target diff: settings, CHAP, allowed initiators and LUN
//! mappings. Pure: no I/O.
//!
//! Mappings: LUNs the spec no longer lists are unmapped first (it frees their
//! LUN numbers), then missing ones are mapped in spec order, each set in one
//! call. Existing
//! mappings are never remapped just to change their order: that would cut
//! the initiators' paths to a LUN in use.

use crate::model::{Chap, ObservedChap, ObservedTarget, TargetSettings};

use super::drift::Drift;

/// The target the spec asks for, with Lun names resolved to array ids and
/// CHAP read from its Secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredTarget {
    /// Array-side name.
    pub name: String,
    /// Accept logins.
    pub enabled: bool,
    /// Settings the spec sets, keyed by spec field (`iqn`, `maxSessions`,
    /// `headerDigest`, ...); unset ones are left alone.
    pub settings: TargetSettings,
    /// CHAP; `None` turns it off.
    pub chap: Option<Chap>,
    /// Allowed initiators (empty: any).
    pub initiators: Vec<String>,
    /// LUN ids to map, in order.
    pub luns: Vec<String>,
}

/// One call's worth of change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetOp {
    /// Create the target (with its settings, CHAP and initiators). Mappings
    /// follow as one [`TargetOp::Map`], unless the vendor binds the LUNs in
    /// the create itself (the created target then says so).
    Create(DesiredTarget),
    /// Rename it.
    Rename {
        /// The new name.
        to: String,
    },
    /// Change these settings (only the changed ones).
    SetSettings(TargetSettings),
    /// Set or clear CHAP.
    SetChap(Option<Chap>),
    /// Replace the allowed initiators.
    SetInitiators(Vec<String>),
    /// Accept logins.
    Enable,
    /// Refuse logins.
    Disable,
    /// Unmap these LUNs, in one call (both vendors take a list).
    Unmap {
        /// Array-side LUN ids; never empty.
        lun_ids: Vec<String>,
    },
    /// Map these LUNs in this order, in one call (both vendors take a list
    /// and number the LUNs in list order).
    Map {
        /// Array-side LUN ids; never empty.
        lun_ids: Vec<String>,
    },
    /// Delete the target.
    Delete {
        /// Array-side id.
        id: String,
    },
}

impl TargetOp {
    /// A short verb for plans, Events and metrics.
    pub fn verb(&self) -> &'static str {
        match self {
            TargetOp::Create(_) => "create",
            TargetOp::Rename { .. } => "rename",
            TargetOp::SetSettings(_) | TargetOp::SetChap(_) | TargetOp::SetInitiators(_) => "set",
            TargetOp::Enable => "enable",
            TargetOp::Disable => "disable",
            TargetOp::Unmap { .. } => "unmap",
            TargetOp::Map { .. } => "map",
            TargetOp::Delete { .. } => "delete",
        }
    }
}

impl TargetOp {
    /// The action word of its Event (`Map`, `SetChap`, ...).
    pub fn action(&self) -> &'static str {
        match self {
            TargetOp::Create(_) => "Create",
            TargetOp::Rename { .. } => "Rename",
            TargetOp::SetSettings(_) | TargetOp::SetInitiators(_) => "Update",
            TargetOp::SetChap(_) => "SetChap",
            TargetOp::Enable => "Enable",
            TargetOp::Disable => "Disable",
            TargetOp::Unmap { .. } => "Unmap",
            TargetOp::Map { .. } => "Map",
            TargetOp::Delete { .. } => "Delete",
        }
    }

    /// What it does, for a person; `lun` names a LUN id (`Lun db (id)`).
    /// User names only: CHAP secrets never reach the text.
    pub fn describe(&self, lun: impl Fn(&str) -> String) -> String {
        match self {
            TargetOp::Create(d) => format!("created target {:?}", d.name),
            TargetOp::Rename { to } => format!("renamed the target to {to}"),
            TargetOp::SetSettings(s) => format!(
                "set {}",
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TargetOp::SetChap(Some(c)) => format!(
                "set CHAP (user {}{})",
                c.initiator.username,
                c.mutual
                    .as_ref()
                    .map(|m| format!(", mutual user {}", m.username))
                    .unwrap_or_default()
            ),
            TargetOp::SetChap(None) => "turned CHAP off".to_string(),
            TargetOp::SetInitiators(i) => {
                format!("set the allowed initiators to [{}]", i.join(", "))
            }
            TargetOp::Enable => "enabled the target".to_string(),
            TargetOp::Disable => "disabled the target".to_string(),
            TargetOp::Unmap { lun_ids } => format!("unmapped {}", list(lun_ids, &lun)),
            TargetOp::Map { lun_ids } => format!("mapped {}", list(lun_ids, &lun)),
            TargetOp::Delete { id } => format!("deleted target {id}"),
        }
    }
}

/// `a, b and c`, each named by `lun`.
fn list(ids: &[String], lun: &impl Fn(&str) -> String) -> String {
    let names: Vec<String> = ids.iter().map(|id| lun(id)).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The result of a target diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPlan {
    /// Calls that make the array match, in order.
    pub ops: Vec<TargetOp>,
    /// Every difference found.
    pub drift: Vec<Drift>,
}

fn chap_matches(want: &Chap, have: &ObservedChap) -> bool {
    let secret_matches = |w: &crate::model::SecretString,
                          h: &Option<crate::model::SecretString>| {
        h.as_ref().is_none_or(|h| h == w)
    };
    want.initiator.username == have.username
        && secret_matches(&want.initiator.password, &have.password)
        && match (&want.mutual, &have.mutual_username) {
            (None, None) => true,
            (Some(m), Some(hu)) => {
                m.username == *hu && secret_matches(&m.password, &have.mutual_password)
            }
            _ => false,
        }
}

fn chap_text(chap: Option<&str>) -> String {
    // User names only: CHAP secrets never reach a message.
    chap.map(|u| format!("user {u}"))
        .unwrap_or_else(|| "off".into())
}

/// Diffs the spec against the array. `chap_rotated` says the CHAP Secret
/// changed since CHAP was last applied; it matters where the array does not
/// return CHAP secrets, so a new password is still sent.
pub fn diff(
    desired: &DesiredTarget,
    observed: Option<&ObservedTarget>,
    chap_rotated: bool,
) -> TargetPlan {
    let Some(o) = observed else {
        let mut ops = vec![TargetOp::Create(desired.clone())];
        if !desired.luns.is_empty() {
            ops.push(TargetOp::Map {
                lun_ids: desired.luns.clone(),
            });
        }
        return TargetPlan {
            ops,
            drift: Vec::new(),
        };
    };
    let mut plan = TargetPlan::default();

    if o.name != desired.name {
        plan.drift
            .push(Drift::correctable("spec.name", &desired.name, &o.name));
        plan.ops.push(TargetOp::Rename {
            to: desired.name.clone(),
        });
    }

    let mut changed = TargetSettings::new();
    for (key, want) in &desired.settings {
        let have = if key == "iqn" {
            Some(&o.iqn)
        } else {
            o.settings.get(key)
        };
        if have != Some(want) {
            let have_text = have.map(String::as_str).unwrap_or("<unset>");
            plan.drift
                .push(Drift::correctable(format!("spec.{key}"), want, have_text));
            changed.insert(key.clone(), want.clone());
        }
    }
    if !changed.is_empty() {
        plan.ops.push(TargetOp::SetSettings(changed));
    }

    let chap_ok = match (&desired.chap, &o.chap) {
        (None, None) => true,
        (Some(w), Some(h)) => chap_matches(w, h) && !chap_rotated,
        _ => false,
    };
    if !chap_ok {
        plan.drift.push(Drift::correctable(
            "spec.chap",
            chap_text(desired.chap.as_ref().map(|c| c.initiator.username.as_str())),
            chap_text(o.chap.as_ref().map(|c| c.username.as_str())),
        ));
        plan.ops.push(TargetOp::SetChap(desired.chap.clone()));
    }

    let mut want_initiators = desired.initiators.clone();
    let mut have_initiators = o.initiators.clone();
    want_initiators.sort();
    have_initiators.sort();
    if want_initiators != have_initiators {
        plan.drift.push(Drift::correctable(
            "spec.initiators",
            desired.initiators.join(","),
            o.initiators.join(","),
        ));
        plan.ops
            .push(TargetOp::SetInitiators(desired.initiators.clone()));
    }

    if o.enabled != desired.enabled {
        plan.drift.push(Drift::correctable(
            "spec.enabled",
            desired.enabled,
            o.enabled,
        ));
        plan.ops.push(if desired.enabled {
            TargetOp::Enable
        } else {
            TargetOp::Disable
        });
    }

    let extra: Vec<String> = o
        .mapped_luns
        .iter()
        .filter(|l| !desired.luns.contains(l))
        .cloned()
        .collect();
    let missing: Vec<String> = desired
        .luns
        .iter()
        .filter(|l| !o.mapped_luns.contains(l))
        .cloned()
        .collect();
    if !extra.is_empty() || !missing.is_empty() {
        plan.drift.push(Drift::correctable(
            "spec.luns",
            desired.luns.join(","),
            o.mapped_luns.join(","),
        ));
    }
    if !extra.is_empty() {
        plan.ops.push(TargetOp::Unmap { lun_ids: extra });
    }
    if !missing.is_empty() {
        plan.ops.push(TargetOp::Map { lun_ids: missing });
    }
    plan
}

/// The calls that remove the target: unmap every LUN (one call), then
/// delete. Nothing when it is already gone.
pub fn delete_ops(observed: Option<&ObservedTarget>) -> Vec<TargetOp> {
    let Some(o) = observed else {
        return Vec::new();
    };
    let mut ops = Vec::new();
    if !o.mapped_luns.is_empty() {
        ops.push(TargetOp::Unmap {
            lun_ids: o.mapped_luns.clone(),
        });
    }
    ops.push(TargetOp::Delete { id: o.id.clone() });
    ops
}

fn observed_chap(chap: &Chap) -> ObservedChap {
    ObservedChap {
        username: chap.initiator.username.clone(),
        password: Some(chap.initiator.password.clone()),
        mutual_username: chap.mutual.as_ref().map(|m| m.username.clone()),
        mutual_password: chap.mutual.as_ref().map(|m| m.password.clone()),
    }
}

/// What the array looks like after `ops`, as the diff assumes the calls
/// behave (mapping appends; unmapping removes).
pub fn apply_model(
    observed: Option<ObservedTarget>,
    ops: &[TargetOp],
    new_id: &str,
    new_iqn: &str,
) -> Option<ObservedTarget> {
    let mut target = observed;
    for op in ops {
        match op {
            TargetOp::Create(d) => {
                let mut settings = d.settings.clone();
                let iqn = settings
                    .remove("iqn")
                    .unwrap_or_else(|| new_iqn.to_string());
                target = Some(ObservedTarget {
                    id: new_id.to_string(),
                    name: d.name.clone(),
                    iqn,
                    enabled: d.enabled,
                    settings,
                    chap: d.chap.as_ref().map(observed_chap),
                    initiators: d.initiators.clone(),
                    mapped_luns: Vec::new(),
                    connected_sessions: None,
                    status: None,
                })
            }
            TargetOp::Delete { .. } => target = None,
            other => {
                let Some(t) = target.as_mut() else { continue };
                match other {
                    TargetOp::Rename { to } => t.name = to.clone(),
                    TargetOp::SetSettings(s) => {
                        for (k, v) in s {
                            if k == "iqn" {
                                t.iqn = v.clone();
                            } else {
                                t.settings.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    TargetOp::SetChap(c) => t.chap = c.as_ref().map(observed_chap),
                    TargetOp::SetInitiators(i) => t.initiators = i.clone(),
                    TargetOp::Enable => t.enabled = true,
                    TargetOp::Disable => t.enabled = false,
                    TargetOp::Unmap { lun_ids } => t.mapped_luns.retain(|l| !lun_ids.contains(l)),
                    TargetOp::Map { lun_ids } => {
                        for id in lun_ids {
                            if !t.mapped_luns.contains(id) {
                                t.mapped_luns.push(id.clone())
                            }
                        }
                    }
                    TargetOp::Create(_) | TargetOp::Delete { .. } => {}
                }
            }
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChapCredential, SecretString};
    use proptest::prelude::*;

    fn cred(u: &str, p: &str) -> ChapCredential {
        ChapCredential {
            username: u.into(),
            password: SecretString::new(p),
        }
    }

    fn desired() -> DesiredTarget {
        DesiredTarget {
            name: "t1".into(),
            enabled: true,
            settings: [("maxSessions".to_string(), "1".to_string())].into(),
            chap: Some(Chap {
                initiator: cred("ini", "secret-one-12"),
                mutual: None,
            }),
            initiators: vec![],
            luns: vec!["l1".into(), "l2".into()],
        }
    }

    fn created(d: &DesiredTarget) -> ObservedTarget {
        apply_model(
            None,
            &diff(d, None, false).ops,
            "tid",
            "iqn.2000-01.com.synology:gen",
        )
        .expect("created")
    }

    #[test]
    fn a_new_target_is_created_then_its_luns_mapped_in_order() {
        let d = desired();
        let ops = diff(&d, None, false).ops;
        assert_eq!(ops[0], TargetOp::Create(d.clone()));
        assert_eq!(
            &ops[1..],
            &[TargetOp::Map {
                lun_ids: vec!["l1".into(), "l2".into()]
            }]
        );
        assert_eq!(diff(&d, Some(&created(&d)), false), TargetPlan::default());
    }

    #[test]
    fn chap_on_changed_rotated_and_off() {
        let mut d = desired();
        let mut o = created(&d);
        // Changed password, observable.
        d.chap = Some(Chap {
            initiator: cred("ini", "secret-two-12"),
            mutual: None,
        });
        assert_eq!(
            diff(&d, Some(&o), false).ops,
            vec![TargetOp::SetChap(d.chap.clone())]
        );
        // Password not observable: only a rotation notice sends it again.
        o.chap.as_mut().expect("chap").password = None;
        assert!(diff(&d, Some(&o), false).ops.is_empty());
        assert_eq!(
            diff(&d, Some(&o), true).ops,
            vec![TargetOp::SetChap(d.chap.clone())]
        );
        // Mutual CHAP added.
        d.chap.as_mut().expect("chap").mutual = Some(cred("tgt", "secret-three-1"));
        assert_eq!(
            diff(&d, Some(&o), false).ops,
            vec![TargetOp::SetChap(d.chap.clone())]
        );
        // Off.
        d.chap = None;
        assert_eq!(diff(&d, Some(&o), false).ops, vec![TargetOp::SetChap(None)]);
    }

    #[test]
    fn drift_messages_never_carry_chap_secrets() {
        let mut d = desired();
        let o = created(&d);
        d.chap = Some(Chap {
            initiator: cred("ini", "brand-new-secret"),
            mutual: Some(cred("m", "mutual-secret-x")),
        });
        let plan = diff(&d, Some(&o), false);
        let text = format!(
            "{:?} {}",
            plan,
            plan.drift.iter().map(|d| d.to_string()).collect::<String>()
        );
        assert!(
            !text.contains("brand-new-secret")
                && !text.contains("mutual-secret-x")
                && !text.contains("secret-one-12"),
            "{text}"
        );
    }

    #[test]
    fn unmaps_before_maps_and_never_remaps_to_reorder() {
        let d = desired();
        let mut o = created(&d);
        o.mapped_luns = vec!["l2".into(), "l1".into()];
        assert!(diff(&d, Some(&o), false).ops.is_empty());
        o.mapped_luns = vec!["l9".into(), "l2".into()];
        assert_eq!(
            diff(&d, Some(&o), false).ops,
            vec![
                TargetOp::Unmap {
                    lun_ids: vec!["l9".into()]
                },
                TargetOp::Map {
                    lun_ids: vec!["l1".into()]
                }
            ]
        );
    }

    #[test]
    fn settings_iqn_and_enablement_are_corrected() {
        let mut d = desired();
        d.settings
            .insert("iqn".into(), "iqn.2000-01.com.synology:t1".into());
        d.enabled = false;
        let mut o = created(&d);
        o.iqn = "iqn.2000-01.com.synology:other".into();
        o.settings.insert("maxSessions".into(), "4".into());
        o.enabled = true;
        let plan = diff(&d, Some(&o), false);
        assert_eq!(
            plan.ops,
            vec![
                TargetOp::SetSettings(
                    [
                        ("iqn".to_string(), "iqn.2000-01.com.synology:t1".to_string()),
                        ("maxSessions".to_string(), "1".to_string())
                    ]
                    .into()
                ),
                TargetOp::Disable,
            ]
        );
    }

    #[test]
    fn delete_unmaps_every_lun_first_and_a_gone_target_needs_nothing() {
        let o = created(&desired());
        assert_eq!(
            delete_ops(Some(&o)),
            vec![
                TargetOp::Unmap {
                    lun_ids: vec!["l1".into(), "l2".into()]
                },
                TargetOp::Delete { id: "tid".into() }
            ]
        );
        assert!(delete_ops(None).is_empty());
    }

    fn arb_chap() -> impl Strategy<Value = Option<Chap>> {
        prop::option::of(
            (
                "[a-c]",
                "[x-z]{12}",
                prop::option::of(("[a-c]", "[x-z]{12}")),
            )
                .prop_map(|(u, p, m)| Chap {
                    initiator: cred(&u, &p),
                    mutual: m.map(|(u, p)| cred(&u, &p)),
                }),
        )
    }

    fn arb_settings() -> impl Strategy<Value = TargetSettings> {
        prop::collection::btree_map(
            prop::sample::select(vec!["maxSessions", "headerDigest", "dataDigest", "iqn"])
                .prop_map(str::to_string),
            "[0-9a-z]{1,3}",
            0..4,
        )
    }

    fn luns() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_set("l[0-5]", 0..5)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
    }

    prop_compose! {
        fn arb_desired()(name in "[a-z]{1,3}", enabled in any::<bool>(), settings in arb_settings(), chap in arb_chap(),
                         initiators in prop::collection::vec("iqn[0-3]", 0..3), luns in luns()) -> DesiredTarget {
            let mut initiators = initiators; initiators.sort(); initiators.dedup();
            DesiredTarget { name, enabled, settings, chap, initiators, luns }
        }
    }

    prop_compose! {
        fn arb_observed()(d in arb_desired(), hide_passwords in any::<bool>(), iqn in "[a-z]{3}") -> ObservedTarget {
            let mut o = apply_model(None, &[TargetOp::Create(d.clone())], "tid", &iqn).expect("created");
            o.mapped_luns = d.luns;
            if hide_passwords && let Some(c) = o.chap.as_mut() {
                c.password = None;
                c.mutual_password = None;
            }
            o
        }
    }

    proptest! {
        #[test]
        fn applying_the_plan_leaves_nothing_to_do(d in arb_desired(), o in prop::option::of(arb_observed()), rotated in any::<bool>()) {
            let plan = diff(&d, o.as_ref(), rotated);
            let after = apply_model(o, &plan.ops, "tid", "iqn.gen");
            let second = diff(&d, after.as_ref(), false);
            prop_assert!(second.ops.is_empty(), "{:?}", second.ops);
            prop_assert!(second.drift.is_empty(), "{:?}", second.drift);
            let after = after.expect("exists");
            let mut mapped = after.mapped_luns.clone(); mapped.sort();
            let mut wanted = d.luns.clone(); wanted.sort();
            prop_assert_eq!(mapped, wanted);
            prop_assert_eq!(after.enabled, d.enabled);
        }

        #[test]
        fn unmaps_always_come_before_maps(d in arb_desired(), o in arb_observed()) {
            let ops = diff(&d, Some(&o), false).ops;
            let first_map = ops.iter().position(|op| matches!(op, TargetOp::Map { .. })).unwrap_or(ops.len());
            let late_unmap = ops[first_map..].iter().any(|op| matches!(op, TargetOp::Unmap { .. }));
            prop_assert!(!late_unmap, "unmap after a map: {:?}", ops);
        }

        #[test]
        fn mappings_change_in_at_most_one_call_each_way(d in arb_desired(), o in prop::option::of(arb_observed())) {
            let ops = diff(&d, o.as_ref(), false).ops;
            let maps: Vec<&Vec<String>> = ops.iter().filter_map(|op| match op { TargetOp::Map { lun_ids } => Some(lun_ids), _ => None }).collect();
            let unmaps: Vec<&Vec<String>> = ops.iter().filter_map(|op| match op { TargetOp::Unmap { lun_ids } => Some(lun_ids), _ => None }).collect();
            prop_assert!(maps.len() <= 1 && unmaps.len() <= 1, "{:?}", ops);
            prop_assert!(maps.iter().chain(unmaps.iter()).all(|ids| !ids.is_empty()), "{:?}", ops);
            // The batch keeps spec order, so LUN numbers follow it.
            if let Some(ids) = maps.first() {
                let in_spec: Vec<&String> = d.luns.iter().filter(|l| ids.contains(l)).collect();
                prop_assert_eq!(ids.iter().collect::<Vec<_>>(), in_spec);
            }
        }
    }
}
