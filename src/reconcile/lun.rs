//! The LUN diff: desired spec against the observed array LUN, to an ordered
//! list of operations. Pure: no I/O, no clock.

use crate::model::{LunSettings, ObservedLun, Placement};

use super::drift::Drift;

/// Where a clone comes from (create-time only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloneSource {
    /// Another LUN, by array-side id.
    Lun(String),
    /// An NGX snapshot, by id.
    Snapshot(String),
}

/// The LUN the spec asks for, with references already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredLun {
    /// Array-side name.
    pub name: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Volume or pool.
    pub placement: Placement,
    /// Thin provisioning.
    pub thin: bool,
    /// Description; `None` leaves the array's alone.
    pub description: Option<String>,
    /// Vendor settings the spec sets (unset ones are left alone).
    pub settings: LunSettings,
    /// Clone source, for create only.
    pub source: Option<CloneSource>,
    /// Settings the vendor fixes at create (the adapter says which): a
    /// difference there is reported, never "corrected".
    pub fixed_settings: Vec<String>,
    /// The array's type word a create makes (DSM `BLUN`, NGX `thin`), so
    /// the status shows it before the next list.
    pub type_word: Option<String>,
}

/// One call's worth of change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LunOp {
    /// Create the LUN (or clone it, when `source` is set).
    Create(DesiredLun),
    /// Rename it.
    Rename {
        /// The new name.
        to: String,
    },
    /// Grow it.
    Grow {
        /// Current size.
        from_bytes: u64,
        /// New size.
        to_bytes: u64,
    },
    /// Change its description.
    SetDescription(String),
    /// Change these vendor settings (only the changed ones).
    SetSettings(LunSettings),
    /// Unmap it from a target (before a delete).
    Unmap {
        /// Array-side target id.
        target_id: String,
    },
    /// Delete it.
    Delete {
        /// Array-side id.
        id: String,
    },
}

impl LunOp {
    /// A short verb for plans, Events and metrics.
    pub fn verb(&self) -> &'static str {
        match self {
            LunOp::Create(d) if d.source.is_some() => "clone",
            LunOp::Create(_) => "create",
            LunOp::Rename { .. } => "rename",
            LunOp::Grow { .. } => "resize",
            LunOp::SetDescription(_) | LunOp::SetSettings(_) => "set",
            LunOp::Unmap { .. } => "unmap",
            LunOp::Delete { .. } => "delete",
        }
    }
}

/// The result of a diff: what to call, and every difference found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LunPlan {
    /// Calls that make the array match, in order.
    pub ops: Vec<LunOp>,
    /// Every difference (correctable or not).
    pub drift: Vec<Drift>,
}

impl LunPlan {
    /// The differences no call can fix.
    pub fn uncorrectable(&self) -> impl Iterator<Item = &Drift> {
        self.drift.iter().filter(|d| !d.correctable)
    }
}

/// Diffs the spec against the array.
pub fn diff(desired: &DesiredLun, observed: Option<&ObservedLun>) -> LunPlan {
    let Some(o) = observed else {
        return LunPlan {
            ops: vec![LunOp::Create(desired.clone())],
            drift: Vec::new(),
        };
    };
    let mut plan = LunPlan::default();

    if o.name != desired.name {
        plan.drift
            .push(Drift::correctable("spec.name", &desired.name, &o.name));
        plan.ops.push(LunOp::Rename {
            to: desired.name.clone(),
        });
    }
    if let Some(p) = &o.placement
        && *p != desired.placement
    {
        let field = match desired.placement {
            Placement::Volume(_) => "spec.location",
            Placement::Pool(_) => "spec.pool",
        };
        plan.drift.push(Drift::fixed(
            field,
            &desired.placement,
            p,
            "a LUN cannot be moved by the operator",
        ));
    }
    if let Some(thin) = o.thin
        && thin != desired.thin
    {
        plan.drift.push(Drift::fixed(
            "spec.thinProvisioning",
            desired.thin,
            thin,
            "provisioning is fixed at create",
        ));
    }
    if o.size_bytes < desired.size_bytes {
        plan.drift.push(Drift::correctable(
            "spec.size",
            desired.size_bytes,
            o.size_bytes,
        ));
        plan.ops.push(LunOp::Grow {
            from_bytes: o.size_bytes,
            to_bytes: desired.size_bytes,
        });
    } else if o.size_bytes > desired.size_bytes {
        plan.drift.push(Drift::fixed(
            "spec.size",
            desired.size_bytes,
            o.size_bytes,
            "a LUN cannot shrink without losing data",
        ));
    }
    if let Some(want) = &desired.description
        && o.description.as_deref().unwrap_or("") != want
    {
        plan.drift.push(Drift::correctable(
            "spec.description",
            want,
            o.description.as_deref().unwrap_or(""),
        ));
        plan.ops.push(LunOp::SetDescription(want.clone()));
    }
    let mut changed = LunSettings::new();
    for (key, want) in &desired.settings {
        let have = o.settings.get(key);
        if have == Some(want) {
            continue;
        }
        let field = format!("spec.{key}");
        let have_text = have.map(String::as_str).unwrap_or("<unset>");
        if desired.fixed_settings.iter().any(|k| k == key) {
            plan.drift
                .push(Drift::fixed(field, want, have_text, "fixed at create"));
        } else {
            plan.drift.push(Drift::correctable(field, want, have_text));
            changed.insert(key.clone(), want.clone());
        }
    }
    if !changed.is_empty() {
        plan.ops.push(LunOp::SetSettings(changed));
    }
    plan
}

/// The calls that remove the LUN: unmap from every target still holding it,
/// then delete. Nothing when it is already gone ("already gone" is success).
pub fn delete_ops(observed: Option<&ObservedLun>) -> Vec<LunOp> {
    let Some(o) = observed else {
        return Vec::new();
    };
    let mut ops: Vec<LunOp> = o
        .mapped_targets
        .iter()
        .map(|t| LunOp::Unmap {
            target_id: t.clone(),
        })
        .collect();
    ops.push(LunOp::Delete { id: o.id.clone() });
    ops
}

/// What the array looks like after `ops`, as the diff assumes the calls
/// behave. The property tests check the diff against it, and the simulator
/// tests check the arrays against the same expectations.
pub fn apply_model(
    observed: Option<ObservedLun>,
    ops: &[LunOp],
    new_id: &str,
) -> Option<ObservedLun> {
    let mut lun = observed;
    for op in ops {
        match op {
            LunOp::Create(d) => {
                lun = Some(ObservedLun {
                    id: new_id.to_string(),
                    name: d.name.clone(),
                    size_bytes: d.size_bytes,
                    allocated_bytes: None,
                    lun_type: d.type_word.clone(),
                    placement: Some(d.placement.clone()),
                    thin: Some(d.thin),
                    description: d.description.clone(),
                    settings: d.settings.clone(),
                    mapped_targets: Vec::new(),
                    status: None,
                })
            }
            LunOp::Delete { .. } => lun = None,
            other => {
                if let Some(l) = lun.as_mut() {
                    match other {
                        LunOp::Rename { to } => l.name = to.clone(),
                        LunOp::Grow { to_bytes, .. } => l.size_bytes = *to_bytes,
                        LunOp::SetDescription(d) => l.description = Some(d.clone()),
                        LunOp::SetSettings(s) => l.settings.extend(s.clone()),
                        LunOp::Unmap { target_id } => l.mapped_targets.retain(|t| t != target_id),
                        LunOp::Create(_) | LunOp::Delete { .. } => {}
                    }
                }
            }
        }
    }
    lun
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn desired() -> DesiredLun {
        DesiredLun {
            name: "db".into(),
            size_bytes: 10 << 30,
            placement: Placement::Volume("/volume1".into()),
            thin: true,
            description: Some("data".into()),
            settings: [("synology.emulateCaw".to_string(), "true".to_string())].into(),
            source: None,
            fixed_settings: vec!["synology.type".into(), "ngxstorage.blocksize".into()],
            type_word: Some("BLUN".into()),
        }
    }

    fn observed_matching(d: &DesiredLun) -> ObservedLun {
        apply_model(None, &[LunOp::Create(d.clone())], "id-1").expect("created")
    }

    #[test]
    fn a_missing_lun_is_created_and_a_matching_one_needs_nothing() {
        let d = desired();
        assert_eq!(diff(&d, None).ops, vec![LunOp::Create(d.clone())]);
        let plan = diff(&d, Some(&observed_matching(&d)));
        assert_eq!(plan, LunPlan::default());
    }

    #[test]
    fn a_bigger_spec_grows_the_lun_and_a_smaller_one_is_reported_not_shrunk() {
        let d = desired();
        let mut o = observed_matching(&d);
        o.size_bytes = 5 << 30;
        let plan = diff(&d, Some(&o));
        assert_eq!(
            plan.ops,
            vec![LunOp::Grow {
                from_bytes: 5 << 30,
                to_bytes: 10 << 30
            }]
        );
        o.size_bytes = 20 << 30;
        let plan = diff(&d, Some(&o));
        assert!(plan.ops.is_empty());
        let fixed: Vec<_> = plan.uncorrectable().collect();
        assert_eq!(fixed.len(), 1);
        assert_eq!(fixed[0].field, "spec.size");
        assert!(fixed[0].to_string().contains("cannot shrink"));
    }

    #[test]
    fn placement_provisioning_and_create_time_settings_are_only_reported() {
        let mut d = desired();
        d.settings.insert("synology.type".into(), "BLUN".into());
        let mut o = observed_matching(&d);
        o.placement = Some(Placement::Volume("/volume2".into()));
        o.thin = Some(false);
        o.settings.insert("synology.type".into(), "ADV".into());
        let plan = diff(&d, Some(&o));
        assert!(plan.ops.is_empty(), "{:?}", plan.ops);
        let fields: Vec<_> = plan.uncorrectable().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.location",
                "spec.thinProvisioning",
                "spec.synology.type"
            ]
        );
    }

    #[test]
    fn changed_settings_are_sent_together_and_only_those() {
        let mut d = desired();
        d.settings
            .insert("synology.emulateTpu".into(), "true".into());
        let mut o = observed_matching(&d);
        o.settings
            .insert("synology.emulateCaw".into(), "false".into());
        o.settings
            .insert("synology.emulateTpu".into(), "false".into());
        o.settings
            .insert("synology.emulate3pc".into(), "true".into());
        let plan = diff(&d, Some(&o));
        assert_eq!(
            plan.ops,
            vec![LunOp::SetSettings(
                [
                    ("synology.emulateCaw".to_string(), "true".to_string()),
                    ("synology.emulateTpu".to_string(), "true".to_string())
                ]
                .into()
            )]
        );
    }

    #[test]
    fn an_unset_description_leaves_the_arrays_alone() {
        let mut d = desired();
        d.description = None;
        let mut o = observed_matching(&d);
        o.description = Some("set by hand".into());
        assert!(diff(&d, Some(&o)).ops.is_empty());
    }

    #[test]
    fn delete_unmaps_first_and_a_gone_lun_needs_nothing() {
        let mut o = observed_matching(&desired());
        o.mapped_targets = vec!["t1".into(), "t2".into()];
        assert_eq!(
            delete_ops(Some(&o)),
            vec![
                LunOp::Unmap {
                    target_id: "t1".into()
                },
                LunOp::Unmap {
                    target_id: "t2".into()
                },
                LunOp::Delete { id: "id-1".into() },
            ]
        );
        assert!(delete_ops(None).is_empty());
        assert_eq!(
            apply_model(Some(o.clone()), &delete_ops(Some(&o)), "x"),
            None
        );
    }

    fn setting_key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "synology.emulateCaw",
            "synology.emulateTpu",
            "synology.canSnapshot",
            "synology.type",
            "ngxstorage.compression",
            "ngxstorage.blocksize",
        ])
        .prop_map(str::to_string)
    }

    fn settings() -> impl Strategy<Value = LunSettings> {
        prop::collection::btree_map(
            setting_key(),
            prop::sample::select(vec!["true", "false", "64k"]).prop_map(str::to_string),
            0..5,
        )
    }

    fn placement() -> impl Strategy<Value = Placement> {
        prop_oneof![
            Just(Placement::Volume("/volume1".into())),
            Just(Placement::Volume("/volume2".into())),
            Just(Placement::Pool("pool1".into())),
        ]
    }

    prop_compose! {
        fn arb_desired()(name in "[a-z]{1,4}", size in 1u64..1 << 40, placement in placement(), thin in any::<bool>(),
                         description in prop::option::of("[a-z ]{0,6}"), settings in settings()) -> DesiredLun {
            DesiredLun { name, size_bytes: size, placement, thin, description, settings, source: None,
                fixed_settings: vec!["synology.type".into(), "ngxstorage.blocksize".into()], type_word: None }
        }
    }

    prop_compose! {
        fn arb_observed()(name in "[a-z]{1,4}", size in 1u64..1 << 40, placement in prop::option::of(placement()),
                          thin in prop::option::of(any::<bool>()), description in prop::option::of("[a-z ]{0,6}"),
                          settings in settings(), targets in prop::collection::vec("t[0-9]", 0..3)) -> ObservedLun {
            ObservedLun { id: "id-0".into(), name, size_bytes: size, allocated_bytes: None, lun_type: None, placement, thin,
                          description, settings, mapped_targets: targets, status: None }
        }
    }

    proptest! {
        #[test]
        fn applying_the_plan_leaves_nothing_to_do(d in arb_desired(), o in prop::option::of(arb_observed())) {
            let plan = diff(&d, o.as_ref());
            let after = apply_model(o.clone(), &plan.ops, "id-new");
            let second = diff(&d, after.as_ref());
            // A second pass makes no call...
            prop_assert!(second.ops.is_empty(), "second pass: {:?}", second.ops);
            // ...and only what no call can fix is still reported.
            prop_assert!(second.drift.iter().all(|x| !x.correctable), "{:?}", second.drift);
            let before: Vec<_> = plan.uncorrectable().cloned().collect();
            let still: Vec<_> = second.uncorrectable().cloned().collect();
            prop_assert_eq!(before, still);
        }

        #[test]
        fn when_nothing_is_uncorrectable_the_array_ends_as_the_spec_says(d in arb_desired(), o in prop::option::of(arb_observed())) {
            let plan = diff(&d, o.as_ref());
            prop_assume!(plan.uncorrectable().next().is_none());
            let after = apply_model(o, &plan.ops, "id-new").expect("exists");
            prop_assert_eq!(&after.name, &d.name);
            prop_assert_eq!(after.size_bytes, d.size_bytes);
            if let Some(desc) = &d.description {
                // Arrays report "no description" as "", so the two are equal.
                prop_assert_eq!(after.description.as_deref().unwrap_or(""), desc.as_str());
            }
            for (k, v) in &d.settings {
                prop_assert_eq!(after.settings.get(k), Some(v));
            }
        }

        #[test]
        fn every_correctable_drift_has_an_op_and_ops_only_come_with_drift(d in arb_desired(), o in arb_observed()) {
            let plan = diff(&d, Some(&o));
            let correctable = plan.drift.iter().filter(|x| x.correctable).count();
            prop_assert_eq!(correctable == 0, plan.ops.is_empty());
            let stray = plan.ops.iter().any(|op| matches!(op, LunOp::Create(_) | LunOp::Delete { .. } | LunOp::Unmap { .. }));
            prop_assert!(!stray, "create/delete/unmap from a diff of an existing LUN: {:?}", plan.ops);
        }
    }
}
