//! The NGXStorage adapter of the vendor-neutral Backend, against the
//! simulator over real HTTPS on loopback, once per dialect. Convergence goes
//! through the pure core: observe, diff, apply, observe, diff again (empty).

#[path = "ngx_support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use array_operator::array::backend::{Backend, BackendConfig, BackendError, Credentials};
use array_operator::array::error::ErrorClass;
use array_operator::array::ngxstorage::{Dialect, Endpoint};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::model::{
    Chap, ChapCredential, ObservedLun, ObservedTarget, Placement, SecretString,
};
use array_operator::reconcile::lun::{self, CloneSource, DesiredLun, LunOp};
use array_operator::reconcile::target::{self, DesiredTarget, TargetOp};
use array_operator::sim::faults::{FaultAction, FaultRule};
use array_operator::sim::ngx::NgxSim;
use array_operator::sim::ngx::seed::{DEFAULT_AUTH_GROUP_ID, PORTAL_GROUP_ID};
use array_operator::sim::ngx::state::SimPortalGroup;
use support::{GIB, MIB, TOKEN, sim};

both_dialects!(
    info_reports_model_dialect_and_pools,
    lun_create_grow_set_converge,
    target_with_two_luns_map_unmap_rename,
    chap_on_changed_off,
    initiators_with_and_without_chap,
    out_of_band_changes_are_found_and_corrected,
    delete_target_then_luns_and_again,
    observation_is_one_list_call_per_object_type,
    an_interrupted_create_is_unreachable_and_not_resent,
    bad_input_is_refused_before_any_call,
    portal_groups_resolve_by_id_or_name,
    what_ngx_cannot_do_is_unsupported,
    a_snapshot_clone_creates_a_lun,
    secrets_never_reach_errors_or_debug,
    a_target_create_cut_before_its_auth_group_is_attached_is_completed,
);

const CHAP_SECRET: &str = "Chap-S3cret-4f1a";
const CHAP_SECRET_2: &str = "Chap-S3cret-77b0";

fn backend_config(sim: &NgxSim) -> BackendConfig {
    BackendConfig {
        vendor: Vendor::NgxStorage,
        endpoint: sim.base_url(),
        secondary_endpoint: None,
        credentials: Credentials::Token(SecretString::new(TOKEN)),
        transport: support::config(sim).transport,
        ngx_owner: Some(sim.owners()[0].clone()),
        resize_mode: match sim.dialect() {
            Dialect::Document => ResizeMode::Absolute,
            Dialect::Sdk => ResizeMode::Delta,
        },
        session_name: "backend-ngx-test".into(),
    }
}

async fn backend(sim: &NgxSim) -> Backend {
    Backend::connect(backend_config(sim))
        .await
        .expect("backend connects")
}

fn desired_lun(name: &str, size_bytes: u64) -> DesiredLun {
    DesiredLun {
        name: name.into(),
        size_bytes,
        placement: Placement::Pool("pool1".into()),
        thin: true,
        description: None,
        settings: BTreeMap::new(),
        source: None,
        fixed_settings: Vec::new(),
        type_word: None,
    }
}

fn desired_target(name: &str, luns: &[&str]) -> DesiredTarget {
    DesiredTarget {
        name: name.into(),
        enabled: true,
        settings: BTreeMap::new(),
        chap: None,
        initiators: Vec::new(),
        luns: luns.iter().map(|l| l.to_string()).collect(),
    }
}

fn chap(user: &str, secret: &str) -> Chap {
    Chap {
        initiator: ChapCredential {
            username: user.into(),
            password: SecretString::new(secret),
        },
        mutual: None,
    }
}

async fn observe_lun(b: &Backend, name: &str) -> Option<ObservedLun> {
    b.list_luns()
        .await
        .expect("list luns")
        .into_iter()
        .find(|l| l.name == name)
}

async fn observe_target_by_id(b: &Backend, id: &str) -> Option<ObservedTarget> {
    b.list_targets()
        .await
        .expect("list targets")
        .into_iter()
        .find(|t| t.id == id)
}

async fn observe_target(b: &Backend, name: &str) -> Option<ObservedTarget> {
    b.list_targets()
        .await
        .expect("list targets")
        .into_iter()
        .find(|t| t.name == name)
}

/// Applies LUN ops as the engine would; returns the LUN id.
async fn apply_lun_ops(b: &Backend, mut id: Option<String>, ops: &[LunOp]) -> Option<String> {
    for op in ops {
        match op {
            LunOp::Create(d) => id = Some(b.create_lun(d).await.map(|c| c.id).expect("create lun")),
            LunOp::Delete { id: gone } => {
                b.delete_lun(gone).await.expect("delete lun");
                id = None;
            }
            other => {
                let lun = id.as_deref().expect("an id for an update");
                b.update_lun(lun, other)
                    .await
                    .unwrap_or_else(|e| panic!("{other:?}: {e}"));
            }
        }
    }
    id
}

/// Applies target ops as the engine would; returns the target id.
async fn apply_target_ops(b: &Backend, mut id: Option<String>, ops: &[TargetOp]) -> Option<String> {
    for op in ops {
        match op {
            TargetOp::Create(d) => {
                id = Some(
                    b.create_target(d)
                        .await
                        .map(|c| c.id)
                        .expect("create target"),
                )
            }
            TargetOp::Delete { id: gone } => {
                b.delete_target(gone).await.expect("delete target");
                id = None;
            }
            other => {
                let t = id.as_deref().expect("an id for an update");
                b.update_target(t, other)
                    .await
                    .unwrap_or_else(|e| panic!("{other:?}: {e}"));
            }
        }
    }
    id
}

/// One reconcile pass of a LUN, then checks a second diff is empty. Returns
/// the ops of the first pass and the LUN id.
async fn converge_lun(b: &Backend, d: &DesiredLun) -> (Vec<LunOp>, String) {
    let observed = observe_lun(b, &d.name).await;
    let plan = lun::diff(d, observed.as_ref());
    let id = apply_lun_ops(b, observed.map(|o| o.id), &plan.ops)
        .await
        .expect("the LUN exists");
    let again = observe_lun(b, &d.name).await;
    let second = lun::diff(d, again.as_ref());
    assert!(second.ops.is_empty(), "second pass: {:?}", second.ops);
    assert_eq!(second.drift, Vec::new());
    (plan.ops, id)
}

/// One reconcile pass of a target (looked up by name), then checks a second
/// diff is empty.
async fn converge_target(b: &Backend, d: &DesiredTarget) -> (Vec<TargetOp>, String) {
    let observed = observe_target(b, &d.name).await;
    let plan = target::diff(d, observed.as_ref(), false);
    let id = apply_target_ops(b, observed.map(|o| o.id), &plan.ops)
        .await
        .expect("the target exists");
    let again = observe_target_by_id(b, &id).await;
    let second = target::diff(d, again.as_ref(), false);
    assert!(second.ops.is_empty(), "second pass: {:?}", second.ops);
    (plan.ops, id)
}

fn assert_class(e: &BackendError, class: ErrorClass, needle: &str) {
    assert_eq!(e.class, class, "{e}");
    assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
}

async fn info_reports_model_dialect_and_pools(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let info = b.info().await.expect("info");
    assert_eq!(info.dialect.as_deref(), Some(d.as_str()));
    assert_eq!(
        info.active_endpoint.as_deref(),
        Some(sim.base_url().as_str())
    );
    assert!(info.serial.is_some(), "{info:?}");
    let pool1 = info
        .pools
        .iter()
        .find(|p| p.0 == "pool1")
        .expect("pool1 listed");
    assert_eq!(pool1.1, Some(10 << 40));
    assert_eq!(pool1.2, Some(10 << 40));
    assert_eq!(b.vendor(), Vendor::NgxStorage);
    b.close().await;
}

async fn lun_create_grow_set_converge(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let mut want = desired_lun("data1", GIB);
    want.thin = false;
    for (k, v) in [
        ("ngxstorage.blocksize", "16k"),
        ("ngxstorage.compression", "true"),
        ("ngxstorage.deduplication", "false"),
        ("ngxstorage.ioType", "sequential"),
        ("ngxstorage.qosPriority", "32"),
    ] {
        want.settings.insert(k.into(), v.into());
    }
    let (ops, id) = converge_lun(&b, &want).await;
    assert!(matches!(ops.as_slice(), [LunOp::Create(_)]), "{ops:?}");
    let on_array = sim.state().lun(&id).expect("on the array");
    assert_eq!(on_array.blocksize_bytes, 16 * 1024);
    assert!(on_array.compress && !on_array.dedup && !on_array.thin);
    assert_eq!(on_array.qos_priority, 32);
    let o = observe_lun(&b, "data1").await.expect("observed");
    assert_eq!(o.placement, Some(Placement::Pool("pool1".into())));
    assert_eq!(o.thin, Some(false));
    assert_eq!(o.size_bytes, GIB);
    assert!(o.allocated_bytes.is_some());
    assert_eq!(o.settings.len(), 5, "{:?}", o.settings);

    // Grow.
    want.size_bytes = 2 * GIB + 512 * MIB;
    let (ops, _) = converge_lun(&b, &want).await;
    assert!(matches!(ops.as_slice(), [LunOp::Grow { .. }]), "{ops:?}");
    assert_eq!(
        sim.state().lun(&id).map(|l| l.size_bytes),
        Some(2 * GIB + 512 * MIB)
    );

    // Settings: only the changed keys are sent.
    want.settings
        .insert("ngxstorage.compression".into(), "false".into());
    want.settings
        .insert("ngxstorage.qosPriority".into(), "128".into());
    sim.calls().clear();
    let (ops, _) = converge_lun(&b, &want).await;
    assert_eq!(ops.len(), 1, "{ops:?}");
    let patches: Vec<_> = sim
        .calls()
        .calls()
        .into_iter()
        .filter(|c| c.operation == sim.op(Endpoint::LunModify))
        .collect();
    assert_eq!(patches.len(), 1);
    let body = patches[0].body.clone().expect("a body");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["compression", "qos_priority"]);

    // A no-op pass sends nothing that changes the array.
    sim.calls().clear();
    let (ops, _) = converge_lun(&b, &want).await;
    assert!(ops.is_empty(), "{ops:?}");
    assert_eq!(
        sim.calls().count_where(|c| c.http_method != "GET"),
        0,
        "no mutation on a no-op pass"
    );
}

async fn target_with_two_luns_map_unmap_rename(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let (_, a) = converge_lun(&b, &desired_lun("lun-a", GIB)).await;
    let (_, c) = converge_lun(&b, &desired_lun("lun-b", GIB)).await;

    let mut want = desired_target("tgt1", &[&a, &c]);
    let (ops, t) = converge_target(&b, &want).await;
    assert!(matches!(ops[0], TargetOp::Create(_)), "{ops:?}");
    assert_eq!(ops.len(), 2, "create and one batched map: {ops:?}");
    let o = observe_target_by_id(&b, &t).await.expect("observed");
    assert_eq!(o.mapped_luns, vec![a.clone(), c.clone()]);
    assert!(o.enabled);
    assert!(o.iqn.starts_with("iqn."), "{}", o.iqn);
    assert_eq!(
        o.settings.get("portalGroup").map(String::as_str),
        Some(PORTAL_GROUP_ID)
    );
    assert_eq!(o.chap, None);
    assert!(o.initiators.is_empty());
    assert_eq!(
        sim.state().target(&t).map(|t| t.auth_group_id),
        Some(DEFAULT_AUTH_GROUP_ID.to_string())
    );
    // The LUN view knows its target.
    let la = observe_lun(&b, "lun-a").await.expect("lun-a");
    assert_eq!(la.mapped_targets, vec![t.clone()]);

    // Unmap one.
    want.luns = vec![c.clone()];
    let (ops, _) = converge_target(&b, &want).await;
    assert_eq!(
        ops,
        vec![TargetOp::Unmap {
            lun_ids: vec![a.clone()]
        }]
    );
    // Map it back; LUN-number order puts it first (number 0 is free again).
    want.luns = vec![c.clone(), a.clone()];
    let (ops, _) = converge_target(&b, &want).await;
    assert_eq!(
        ops,
        vec![TargetOp::Map {
            lun_ids: vec![a.clone()]
        }]
    );
    let o = observe_target_by_id(&b, &t).await.expect("observed");
    assert_eq!(o.mapped_luns, vec![a.clone(), c.clone()]);

    // Map and unmap of what is already there / already gone succeed.
    b.update_target(
        &t,
        &TargetOp::Map {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("already mapped");
    b.update_target(
        &t,
        &TargetOp::Unmap {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("unmap");
    b.update_target(
        &t,
        &TargetOp::Unmap {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("already unmapped");
    b.update_target(
        &t,
        &TargetOp::Map {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("map");

    // Rename.
    let mut renamed = want.clone();
    renamed.name = "tgt1-new".into();
    let observed = observe_target_by_id(&b, &t).await;
    let plan = target::diff(&renamed, observed.as_ref(), false);
    assert_eq!(
        plan.ops,
        vec![TargetOp::Rename {
            to: "tgt1-new".into()
        }]
    );
    apply_target_ops(&b, Some(t.clone()), &plan.ops).await;
    let (ops, same) = converge_target(&b, &renamed).await;
    assert!(ops.is_empty());
    assert_eq!(same, t);
}

async fn chap_on_changed_off(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let (_, l) = converge_lun(&b, &desired_lun("chap-lun", GIB)).await;
    let mut want = desired_target("chap1", &[&l]);

    // Created without CHAP, then CHAP on.
    let (_, t) = converge_target(&b, &want).await;
    want.chap = Some(chap("alice", CHAP_SECRET));
    let (ops, _) = converge_target(&b, &want).await;
    assert!(
        matches!(ops.as_slice(), [TargetOp::SetChap(Some(_))]),
        "{ops:?}"
    );
    let on_array = sim.state().target(&t).expect("target");
    assert_ne!(on_array.auth_group_id, DEFAULT_AUTH_GROUP_ID);
    let group = sim
        .state()
        .read(|s| s.auth_groups.get(&on_array.auth_group_id).cloned())
        .expect("own group");
    assert!(group.name.starts_with("arrayop"), "{}", group.name);
    assert_eq!(group.chap, Some(("alice".into(), CHAP_SECRET.into())));
    let o = observe_target_by_id(&b, &t).await.expect("observed");
    let observed_chap = o.chap.expect("chap observed");
    assert_eq!(observed_chap.username, "alice");
    assert_eq!(observed_chap.password, Some(SecretString::new(CHAP_SECRET)));

    // Password only: the array returns it, so the diff sees the change
    // without being told of a rotation.
    want.chap = Some(chap("alice", CHAP_SECRET_2));
    let (ops, _) = converge_target(&b, &want).await;
    assert!(
        matches!(ops.as_slice(), [TargetOp::SetChap(Some(_))]),
        "{ops:?}"
    );
    let group_after = sim
        .state()
        .read(|s| s.auth_groups.get(&group.id).cloned())
        .expect("same group");
    assert_eq!(
        group_after.chap,
        Some(("alice".into(), CHAP_SECRET_2.into()))
    );

    // Off: back to the default group, the own group deleted.
    want.chap = None;
    let (ops, _) = converge_target(&b, &want).await;
    assert_eq!(ops, vec![TargetOp::SetChap(None)]);
    assert_eq!(
        sim.state().target(&t).map(|t| t.auth_group_id),
        Some(DEFAULT_AUTH_GROUP_ID.to_string())
    );
    assert!(sim.state().read(|s| !s.auth_groups.contains_key(&group.id)));

    // A target created with CHAP gets its group at create.
    let mut with_chap = desired_target("chap2", &[]);
    with_chap.chap = Some(chap("bob", CHAP_SECRET));
    let (ops, t2) = converge_target(&b, &with_chap).await;
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_ne!(
        sim.state().target(&t2).map(|t| t.auth_group_id),
        Some(DEFAULT_AUTH_GROUP_ID.to_string())
    );
}

async fn initiators_with_and_without_chap(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let i1 = "iqn.1993-08.org.debian:01:node1".to_string();
    let i2 = "iqn.1993-08.org.debian:01:node2".to_string();
    let i3 = "iqn.1993-08.org.debian:01:node3".to_string();
    let mut want = desired_target("init1", &[]);
    want.initiators = vec![i1.clone(), i2.clone()];
    let (_, t) = converge_target(&b, &want).await;
    let o = observe_target_by_id(&b, &t).await.expect("observed");
    assert_eq!(o.initiators, vec![i1.clone(), i2.clone()]);
    assert_eq!(o.chap, None);

    want.initiators = vec![i2.clone(), i3.clone()];
    let (ops, _) = converge_target(&b, &want).await;
    assert!(
        matches!(ops.as_slice(), [TargetOp::SetInitiators(_)]),
        "{ops:?}"
    );

    // CHAP on top, then initiators cleared: the group stays (CHAP holds).
    want.chap = Some(chap("carol", CHAP_SECRET));
    converge_target(&b, &want).await;
    let group_id = sim.state().target(&t).expect("target").auth_group_id;
    want.initiators.clear();
    converge_target(&b, &want).await;
    assert_eq!(
        sim.state().target(&t).expect("target").auth_group_id,
        group_id
    );
    // CHAP off too: default group, own group gone.
    want.chap = None;
    converge_target(&b, &want).await;
    assert_eq!(
        sim.state().target(&t).map(|t| t.auth_group_id),
        Some(DEFAULT_AUTH_GROUP_ID.to_string())
    );
    assert!(sim.state().read(|s| !s.auth_groups.contains_key(&group_id)));
}

async fn out_of_band_changes_are_found_and_corrected(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let mut lun_want = desired_lun("oob", GIB);
    lun_want
        .settings
        .insert("ngxstorage.compression".into(), "true".into());
    let (_, l) = converge_lun(&b, &lun_want).await;
    let want = desired_target("oob-t", &[&l]);
    let (_, t) = converge_target(&b, &want).await;

    // An administrator unmaps the LUN and turns compression off.
    assert!(sim.state().unmap(&t, &l));
    sim.state().write(|s| {
        s.edit_lun(&l, |x| x.compress = false);
    });
    let (ops, _) = converge_lun(&b, &lun_want).await;
    let mut expected = BTreeMap::new();
    expected.insert("ngxstorage.compression".to_string(), "true".to_string());
    assert_eq!(ops, vec![LunOp::SetSettings(expected)]);
    let (ops, _) = converge_target(&b, &want).await;
    assert_eq!(
        ops,
        vec![TargetOp::Map {
            lun_ids: vec![l.clone()]
        }]
    );
    assert!(sim.state().lun(&l).expect("lun").compress);
}

async fn delete_target_then_luns_and_again(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let (_, a) = converge_lun(&b, &desired_lun("del-a", GIB)).await;
    let (_, c) = converge_lun(&b, &desired_lun("del-b", GIB)).await;
    let mut want = desired_target("del-t", &[&a, &c]);
    want.chap = Some(chap("dave", CHAP_SECRET));
    let (_, t) = converge_target(&b, &want).await;
    let group_id = sim.state().target(&t).expect("target").auth_group_id;

    // A LUN still mapped cannot go: the array says it is in use.
    let err = b.delete_lun(&a).await.expect_err("mapped");
    assert_eq!(err.class, ErrorClass::InUse, "{err}");

    let observed = observe_target_by_id(&b, &t).await;
    let ops = target::delete_ops(observed.as_ref());
    assert_eq!(ops.len(), 2, "one batched unmap, then the delete: {ops:?}");
    apply_target_ops(&b, Some(t.clone()), &ops).await;
    assert!(observe_target_by_id(&b, &t).await.is_none());
    assert!(
        sim.state().read(|s| !s.auth_groups.contains_key(&group_id)),
        "the operator's auth group went with the target"
    );
    for name in ["del-a", "del-b"] {
        let observed = observe_lun(&b, name).await;
        let ops = lun::delete_ops(observed.as_ref());
        assert_eq!(ops.len(), 1, "no mapping left: {ops:?}");
        apply_lun_ops(&b, None, &ops).await;
        assert!(observe_lun(&b, name).await.is_none());
    }
    assert!(
        sim.state()
            .read(|s| s.luns().is_empty() && s.targets.is_empty())
    );

    // Everything already gone: success.
    b.delete_target(&t).await.expect("target already gone");
    b.delete_lun(&a).await.expect("lun already gone");
    b.update_lun(
        &c,
        &LunOp::Unmap {
            target_id: t.clone(),
        },
    )
    .await
    .expect("unmap from a gone target");
    b.update_target(
        &t,
        &TargetOp::Unmap {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("unmap on a gone target");
}

async fn observation_is_one_list_call_per_object_type(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = b
            .create_lun(&desired_lun(&format!("many{i}"), GIB))
            .await
            .map(|c| c.id)
            .expect("create");
        ids.push(id);
    }
    for (i, luns) in [&ids[0..2], &ids[2..4]].iter().enumerate() {
        let mut want = desired_target(&format!("many-t{i}"), &[]);
        want.initiators = vec![format!("iqn.2000-01.com.example:h{i}")];
        let t = b
            .create_target(&want)
            .await
            .map(|c| c.id)
            .expect("create target");
        for l in luns.iter() {
            b.update_target(
                &t,
                &TargetOp::Map {
                    lun_ids: vec![l.clone()],
                },
            )
            .await
            .expect("map");
        }
    }

    sim.calls().clear();
    let luns = b.list_luns().await.expect("list luns");
    assert_eq!(luns.len(), 5);
    assert_eq!(
        luns.iter().filter(|l| l.mapped_targets.len() == 1).count(),
        4
    );
    assert_eq!(sim.count(Endpoint::LunDetailList), 1);
    assert_eq!(sim.count(Endpoint::TargetDetailList), 1);
    assert_eq!(sim.calls().calls().len(), 2, "{:?}", sim.calls().calls());

    sim.calls().clear();
    let targets = b.list_targets().await.expect("list targets");
    assert_eq!(targets.len(), 2);
    assert!(
        targets
            .iter()
            .all(|t| t.mapped_luns.len() == 2 && t.initiators.len() == 1)
    );
    assert_eq!(sim.count(Endpoint::TargetDetailList), 1);
    assert_eq!(sim.count(Endpoint::AuthGroupDetailList), 1);
    assert_eq!(sim.calls().calls().len(), 2, "{:?}", sim.calls().calls());
}

async fn an_interrupted_create_is_unreachable_and_not_resent(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let op = sim.op(Endpoint::LunCreate);
    sim.faults()
        .arm(FaultRule::once(op.clone(), 1, FaultAction::DropAfterApply));
    let err = b
        .create_lun(&desired_lun("cut", GIB))
        .await
        .map(|c| c.id)
        .expect_err("cut after applying");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
    assert_eq!(sim.calls().count(&op), 1, "sent once");
    assert_eq!(sim.state().count_luns_named("cut"), 1);
    // Re-observing finds it; the diff has nothing to create.
    let (ops, _) = converge_lun(&b, &desired_lun("cut", GIB)).await;
    assert!(ops.is_empty(), "{ops:?}");

    let op = sim.op(Endpoint::TargetCreate);
    sim.faults()
        .arm(FaultRule::once(op.clone(), 1, FaultAction::DropAfterApply));
    let err = b
        .create_target(&desired_target("cut-t", &[]))
        .await
        .map(|c| c.id)
        .expect_err("cut after applying");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
    assert_eq!(sim.calls().count(&op), 1, "sent once");
    assert_eq!(
        sim.state()
            .read(|s| s.targets.values().filter(|t| t.name == "cut-t").count()),
        1
    );
}

async fn bad_input_is_refused_before_any_call(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    sim.calls().clear();

    let mut on_volume = desired_lun("vol", GIB);
    on_volume.placement = Placement::Volume("/volume1".into());
    let err = b
        .create_lun(&on_volume)
        .await
        .map(|c| c.id)
        .expect_err("volume");
    assert_class(&err, ErrorClass::InvalidRequest, "spec.pool");

    let err = b
        .create_lun(&desired_lun("odd", GIB + 1))
        .await
        .map(|c| c.id)
        .expect_err("not whole MiB");
    assert_class(&err, ErrorClass::InvalidRequest, "spec.size");
    let err = b
        .update_lun(
            "ab12",
            &LunOp::Grow {
                from_bytes: GIB,
                to_bytes: GIB + 1000,
            },
        )
        .await
        .expect_err("not whole MiB");
    assert_class(&err, ErrorClass::InvalidRequest, "spec.size");

    let mut bad_setting = desired_lun("bad", GIB);
    bad_setting
        .settings
        .insert("ngxstorage.qosPriority".into(), "7".into());
    let err = b
        .create_lun(&bad_setting)
        .await
        .map(|c| c.id)
        .expect_err("bad qos");
    assert_class(
        &err,
        ErrorClass::InvalidRequest,
        "spec.ngxstorage.qosPriority",
    );

    let err = b
        .update_lun("ab12", &LunOp::Create(desired_lun("x", GIB)))
        .await
        .expect_err("misrouted");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    let err = b
        .update_target("ab12", &TargetOp::Delete { id: "ab12".into() })
        .await
        .expect_err("misrouted");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    assert_eq!(sim.calls().calls().len(), 0, "{:?}", sim.calls().calls());

    // Connect: a missing owner and the wrong kind of credentials.
    let mut no_owner = backend_config(&sim);
    no_owner.ngx_owner = None;
    let err = Backend::connect(no_owner).await.expect_err("no owner");
    assert_class(&err, ErrorClass::InvalidRequest, "spec.ngxstorage.owner");
    let mut wrong = backend_config(&sim);
    wrong.credentials = Credentials::UserPassword {
        username: "admin".into(),
        password: SecretString::new("pw"),
    };
    let err = Backend::connect(wrong)
        .await
        .expect_err("wrong credentials");
    assert_class(
        &err,
        ErrorClass::InvalidRequest,
        "spec.credentialsSecretRef",
    );
    assert!(err.to_string().contains("token"), "{err}");
    assert_eq!(sim.calls().calls().len(), 0, "{:?}", sim.calls().calls());
}

async fn portal_groups_resolve_by_id_or_name(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    // By name.
    let mut want = desired_target("pg-name", &[]);
    want.settings.insert("portalGroup".into(), "pg1".into());
    let t = b.create_target(&want).await.map(|c| c.id).expect("by name");
    assert_eq!(
        sim.state().target(&t).map(|t| t.portal_group_id),
        Some(PORTAL_GROUP_ID.to_string())
    );
    // An unknown one.
    want.name = "pg-unknown".into();
    want.settings.insert("portalGroup".into(), "nope".into());
    let err = b
        .create_target(&want)
        .await
        .map(|c| c.id)
        .expect_err("unknown");
    assert_class(&err, ErrorClass::InvalidRequest, "spec.portalGroup");

    // With two portal groups, none can be picked for the spec. The choice
    // is made on the groups the last observation listed (one list per
    // resync, not one per create), so the new group counts from the next.
    let second = "aaaabbbbccccddddeeeeffff0000111122223333";
    let owner = sim.owners()[0].clone();
    sim.state().write(|s| {
        s.portal_groups.insert(
            second.into(),
            SimPortalGroup {
                id: second.into(),
                name: "pg2".into(),
                owner,
                listen_ips: vec!["127.0.0.2".into()],
            },
        )
    });
    b.observe().await.expect("observe");
    let err = b
        .create_target(&desired_target("pg-none", &[]))
        .await
        .map(|c| c.id)
        .expect_err("ambiguous portal group");
    assert_class(&err, ErrorClass::InvalidRequest, "2 portal groups");

    // Moving a target: by id, through the diff.
    let mut want = desired_target("pg-name", &[]);
    want.settings.insert("portalGroup".into(), second.into());
    let (ops, _) = converge_target(&b, &want).await;
    assert!(
        matches!(ops.as_slice(), [TargetOp::SetSettings(_)]),
        "{ops:?}"
    );
    assert_eq!(
        sim.state().target(&t).map(|t| t.portal_group_id),
        Some(second.to_string())
    );
}

async fn what_ngx_cannot_do_is_unsupported(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let (_, l) = converge_lun(&b, &desired_lun("un", GIB)).await;
    let (_, t) = converge_target(&b, &desired_target("un-t", &[])).await;
    let cases: Vec<(Result<(), BackendError>, &str)> = vec![
        (
            b.update_lun(&l, &LunOp::Rename { to: "other".into() })
                .await,
            "spec.name",
        ),
        (
            b.update_lun(&l, &LunOp::SetDescription("d".into())).await,
            "spec.description",
        ),
        (
            b.update_target(&t, &TargetOp::Disable).await,
            "spec.enabled",
        ),
        (
            b.update_target(
                &t,
                &TargetOp::SetSettings(BTreeMap::from([(
                    "iqn".to_string(),
                    "iqn.2000-01.com.example:x".to_string(),
                )])),
            )
            .await,
            "spec.iqn",
        ),
        (
            b.update_target(
                &t,
                &TargetOp::SetChap(Some(Chap {
                    mutual: Some(ChapCredential {
                        username: "m".into(),
                        password: SecretString::new(CHAP_SECRET),
                    }),
                    ..chap("u", CHAP_SECRET)
                })),
            )
            .await,
            "spec.chap.mutual",
        ),
    ];
    for (result, field) in cases {
        let err = result.expect_err(field);
        assert_class(&err, ErrorClass::Unsupported, field);
    }
    let mut clone = desired_lun("from-lun", GIB);
    clone.source = Some(CloneSource::Lun(l.clone()));
    let err = b
        .create_lun(&clone)
        .await
        .map(|c| c.id)
        .expect_err("lun clone");
    assert_class(&err, ErrorClass::Unsupported, "spec.source");
    // Enable: NGX targets always accept logins, so it already holds.
    b.update_target(&t, &TargetOp::Enable)
        .await
        .expect("enable");
}

async fn a_snapshot_clone_creates_a_lun(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let (_, l) = converge_lun(&b, &desired_lun("origin", GIB)).await;
    let Backend::Ngx(ngx) = &b else {
        panic!("an NGX backend")
    };
    let snap = ngx
        .client()
        .create_snapshot(&l, "snap1")
        .await
        .expect("snapshot");
    let mut want = desired_lun("copy", GIB);
    want.source = Some(CloneSource::Snapshot(snap.id.clone()));
    let (ops, id) = converge_lun(&b, &want).await;
    assert!(matches!(ops.as_slice(), [LunOp::Create(_)]), "{ops:?}");
    assert_eq!(sim.state().lun(&id).and_then(|l| l.clone_of), Some(snap.id));
}

async fn secrets_never_reach_errors_or_debug(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let mut texts = Vec::new();
    texts.push(format!("{b:?}"));
    texts.push(format!("{:?}", backend_config(&sim)));

    let mut want = desired_target("leak", &[]);
    want.chap = Some(chap("eve", CHAP_SECRET));
    texts.push(format!("{want:?}"));
    texts.push(format!("{:?}", TargetOp::SetChap(want.chap.clone())));
    let t = b.create_target(&want).await.map(|c| c.id).expect("create");
    let observed = b.list_targets().await.expect("list");
    texts.push(format!("{observed:?}"));

    // Errors on the way: the array refusing the CHAP call, a missing
    // target, an unknown portal group, a wrong token.
    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::AuthGroupAddChap),
        1,
        FaultAction::ErrorCode(1),
    ));
    let err = b
        .update_target(&t, &TargetOp::SetChap(Some(chap("eve", CHAP_SECRET_2))))
        .await
        .expect_err("refused");
    assert_eq!(err.vendor_code, Some(1), "{err}");
    assert!(!err.api_call.is_empty());
    texts.push(format!("{err} {err:?}"));
    let err = b
        .update_target(
            "deadbeef",
            &TargetOp::SetChap(Some(chap("eve", CHAP_SECRET))),
        )
        .await
        .expect_err("no such target");
    assert_eq!(err.class, ErrorClass::NotFound);
    texts.push(format!("{err} {err:?}"));
    let mut bad_pg = want.clone();
    bad_pg.name = "leak2".into();
    bad_pg.settings.insert("portalGroup".into(), "nope".into());
    let err = b
        .create_target(&bad_pg)
        .await
        .map(|c| c.id)
        .expect_err("bad pg");
    texts.push(format!("{err} {err:?}"));
    let mut empty_user = want.clone();
    empty_user.name = "leak3".into();
    empty_user.chap = Some(chap("", CHAP_SECRET));
    let err = b
        .create_target(&empty_user)
        .await
        .map(|c| c.id)
        .expect_err("empty user");
    texts.push(format!("{err} {err:?}"));
    let mut wrong_token = backend_config(&sim);
    wrong_token.credentials = Credentials::Token(SecretString::new("wrong-token-secret"));
    let err = Backend::connect(wrong_token).await.expect_err("401");
    assert_eq!(err.class, ErrorClass::Unauthorized, "{err}");
    texts.push(format!("{err} {err:?}"));

    for text in &texts {
        for secret in [CHAP_SECRET, CHAP_SECRET_2, TOKEN, "wrong-token-secret"] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
    }
}

async fn a_target_create_cut_before_its_auth_group_is_attached_is_completed(d: Dialect) {
    let sim = sim(d).await;
    let b = backend(&sim).await;
    let mut want = desired_target("half", &[]);
    want.chap = Some(chap("frank", CHAP_SECRET));
    want.initiators = vec!["iqn.2000-01.com.example:half".into()];
    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::AuthGroupCreate),
        1,
        FaultAction::DropAfterApply,
    ));
    // The target itself was made: the create says so, with the cut step's
    // error, so the caller records it as its own.
    let created = b.create_target(&want).await.expect("the target was made");
    let err = created
        .incomplete
        .clone()
        .expect("the auth-group step was cut");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
    // The target is there on the default group; its group exists, unattached.
    let t = observe_target(&b, "half").await.expect("target made");
    assert_eq!(t.id, created.id);
    assert_eq!(
        sim.state().target(&t.id).map(|t| t.auth_group_id),
        Some(DEFAULT_AUTH_GROUP_ID.to_string())
    );
    // The next pass finds CHAP and initiators missing and completes the
    // group the cut attempt made, without making a second one.
    let (ops, id) = converge_target(&b, &want).await;
    assert_eq!(id, t.id);
    assert_eq!(ops.len(), 2, "{ops:?}");
    let groups = sim.state().read(|s| {
        s.auth_groups
            .values()
            .filter(|g| g.name.starts_with("arrayop"))
            .count()
    });
    assert_eq!(groups, 1);
    b.delete_target(&id).await.expect("delete");
    assert!(
        sim.state().read(|s| s.auth_groups.len() == 1),
        "only the default group is left"
    );
}
