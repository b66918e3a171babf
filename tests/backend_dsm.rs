//! The DSM adapter of the vendor-neutral Backend against the DSM simulator
//! over HTTPS on loopback. Most tests converge through the pure core:
//! observe, diff, apply the ops through the backend, observe again, and the
//! second diff must have no ops.

mod dsm_support;

use array_operator::array::backend::{Backend, BackendConfig, BackendError, Credentials};
use array_operator::array::error::ErrorClass;
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::model::{
    Chap, ChapCredential, ObservedLun, ObservedTarget, Placement, SecretString,
};
use array_operator::reconcile::lun::{self, CloneSource, DesiredLun, LunOp};
use array_operator::reconcile::target::{self, DesiredTarget, TargetOp};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim};
use array_operator::sim::faults::{FaultAction, FaultRule};

const GIB: u64 = 1 << 30;
const LUN_LIST: &str = "SYNO.Core.ISCSI.LUN.list";
const TARGET_LIST: &str = "SYNO.Core.ISCSI.Target.list";

fn config(sim: &DsmSim, password: &str) -> BackendConfig {
    BackendConfig {
        vendor: Vendor::Synology,
        endpoint: sim.base_url(),
        secondary_endpoint: None,
        credentials: Credentials::UserPassword {
            username: DEFAULT_USERNAME.into(),
            password: SecretString::new(password),
        },
        transport: dsm_support::transport(sim.ca_pem(), false),
        ngx_owner: None,
        resize_mode: ResizeMode::Absolute,
        session_name: "array-operator-test".into(),
    }
}

async fn backend(sim: &DsmSim) -> Backend {
    Backend::connect(config(sim, DEFAULT_PASSWORD))
        .await
        .expect("connect")
}

fn desired_lun(name: &str, size: u64, thin: bool) -> DesiredLun {
    DesiredLun {
        name: name.into(),
        size_bytes: size,
        placement: Placement::Volume("/volume1".into()),
        thin,
        description: Some(format!("{name} by the operator")),
        settings: Default::default(),
        source: None,
        fixed_settings: Vec::new(),
        type_word: None,
    }
}

fn desired_target(name: &str, luns: Vec<String>) -> DesiredTarget {
    DesiredTarget {
        name: name.into(),
        enabled: true,
        settings: Default::default(),
        chap: None,
        initiators: Vec::new(),
        luns,
    }
}

fn chap(user: &str, secret: &str, mutual: Option<(&str, &str)>) -> Chap {
    Chap {
        initiator: ChapCredential {
            username: user.into(),
            password: SecretString::new(secret),
        },
        mutual: mutual.map(|(u, p)| ChapCredential {
            username: u.into(),
            password: SecretString::new(p),
        }),
    }
}

async fn find_lun(b: &Backend, id: Option<&str>, name: &str) -> Option<ObservedLun> {
    b.list_luns()
        .await
        .expect("list luns")
        .into_iter()
        .find(|l| id.map_or(l.name == name, |id| l.id == id))
}

async fn find_target(b: &Backend, id: Option<&str>, name: &str) -> Option<ObservedTarget> {
    b.list_targets()
        .await
        .expect("list targets")
        .into_iter()
        .find(|t| id.map_or(t.name == name, |id| t.id == id))
}

/// Applies LUN ops the way the engine does; returns the LUN id.
async fn apply_lun_ops(b: &Backend, mut id: Option<String>, ops: &[LunOp]) -> Option<String> {
    for op in ops {
        match op {
            LunOp::Create(d) => id = Some(b.create_lun(d).await.map(|c| c.id).expect("create lun")),
            LunOp::Delete { id: del } => {
                b.delete_lun(del).await.expect("delete lun");
                id = None;
            }
            other => {
                let lun = id.as_deref().expect("id for update");
                b.update_lun(lun, other).await.expect("update lun");
            }
        }
    }
    id
}

/// One diff-and-apply pass, then a second diff that must be empty.
async fn converge_lun(
    b: &Backend,
    id: Option<String>,
    desired: &DesiredLun,
) -> (String, ObservedLun) {
    let observed = find_lun(b, id.as_deref(), &desired.name).await;
    let plan = lun::diff(desired, observed.as_ref());
    let id = apply_lun_ops(b, observed.map(|o| o.id).or(id), &plan.ops)
        .await
        .expect("lun exists");
    let again = find_lun(b, Some(&id), &desired.name)
        .await
        .expect("observed");
    let second = lun::diff(desired, Some(&again));
    assert!(
        second.ops.is_empty(),
        "second pass not empty: {:?}",
        second.ops
    );
    assert_eq!(second.uncorrectable().count(), 0, "{:?}", second.drift);
    (id, again)
}

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
            TargetOp::Delete { id: del } => {
                b.delete_target(del).await.expect("delete target");
                id = None;
            }
            other => {
                let t = id.as_deref().expect("id for update");
                b.update_target(t, other).await.expect("update target");
            }
        }
    }
    id
}

async fn converge_target(
    b: &Backend,
    id: Option<String>,
    desired: &DesiredTarget,
    chap_rotated: bool,
) -> (String, ObservedTarget, Vec<TargetOp>) {
    let observed = find_target(b, id.as_deref(), &desired.name).await;
    let plan = target::diff(desired, observed.as_ref(), chap_rotated);
    let id = apply_target_ops(b, observed.map(|o| o.id).or(id), &plan.ops)
        .await
        .expect("target exists");
    let again = find_target(b, Some(&id), &desired.name)
        .await
        .expect("observed");
    let second = target::diff(desired, Some(&again), false);
    assert!(
        second.ops.is_empty(),
        "second pass not empty: {:?}",
        second.ops
    );
    (id, again, plan.ops)
}

#[tokio::test]
async fn lun_create_thin_and_thick_grow_settings_and_noop() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;

    let mut thin = desired_lun("pvc-thin", 10 * GIB, true);
    thin.settings
        .insert("synology.emulateCaw".into(), "false".into());
    thin.settings
        .insert("synology.canSnapshot".into(), "true".into());
    let (thin_id, o) = converge_lun(&b, None, &thin).await;
    assert_eq!(o.lun_type.as_deref(), Some("BLUN"));
    assert_eq!(o.thin, Some(true));
    assert_eq!(o.placement, Some(Placement::Volume("/volume1".into())));
    assert_eq!(o.allocated_bytes, Some(0));
    assert_eq!(o.status.as_deref(), Some("normal"));
    assert_eq!(o.settings["synology.type"], "BLUN");
    assert_eq!(o.settings["synology.emulateCaw"], "false");
    assert_eq!(o.settings["synology.canSnapshot"], "true");
    assert_eq!(
        o.settings["synology.emulateTpws"], "true",
        "DSM reports every flag"
    );

    let thick = desired_lun("pvc-thick", 2 * GIB, false);
    let (_, o) = converge_lun(&b, None, &thick).await;
    assert_eq!(o.lun_type.as_deref(), Some("BLUN_THICK"));
    assert_eq!(o.thin, Some(false));
    assert_eq!(o.allocated_bytes, Some(2 * GIB));

    // An explicit type wins over the thin flag's default.
    let mut adv = desired_lun("pvc-adv", GIB, true);
    adv.settings.insert("synology.type".into(), "ADV".into());
    let (_, o) = converge_lun(&b, None, &adv).await;
    assert_eq!(o.lun_type.as_deref(), Some("ADV"));

    // Grow, settings change, description change.
    let mut grown = thin.clone();
    grown.size_bytes = 20 * GIB;
    grown
        .settings
        .insert("synology.emulateCaw".into(), "true".into());
    grown
        .settings
        .insert("synology.emulateFuaWrite".into(), "true".into());
    grown.description = Some("grown".into());
    let plan = lun::diff(&grown, find_lun(&b, Some(&thin_id), "").await.as_ref());
    assert_eq!(plan.ops.len(), 3, "{:?}", plan.ops);
    let (_, o) = converge_lun(&b, Some(thin_id.clone()), &grown).await;
    assert_eq!(o.size_bytes, 20 * GIB);
    assert_eq!(o.settings["synology.emulateFuaWrite"], "true");
    assert_eq!(o.description.as_deref(), Some("grown"));

    // A no-op pass sends no write.
    sim.calls().clear();
    converge_lun(&b, Some(thin_id.clone()), &grown).await;
    let writes = sim.calls().count_where(|c| !c.operation.ends_with(".list"));
    assert_eq!(writes, 0, "{:?}", sim.calls().calls());

    // Rename through the diff keeps the id.
    let mut renamed = grown.clone();
    renamed.name = "pvc-thin-2".into();
    let (id, o) = converge_lun(&b, Some(thin_id.clone()), &renamed).await;
    assert_eq!(id, thin_id);
    assert_eq!(o.name, "pvc-thin-2");
}

#[tokio::test]
async fn lun_clone_into_the_same_volume() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let (src, _) = converge_lun(&b, None, &desired_lun("golden", 4 * GIB, true)).await;

    let mut clone = desired_lun("golden-copy", 8 * GIB, true);
    clone.source = Some(CloneSource::Lun(src.clone()));
    clone
        .settings
        .insert("synology.emulate3pc".into(), "false".into());
    let (id, o) = converge_lun(&b, None, &clone).await;
    assert_ne!(id, src);
    assert_eq!(
        o.size_bytes,
        8 * GIB,
        "grown past the source in the same pass"
    );
    assert_eq!(o.settings["synology.emulate3pc"], "false");
    let parent = sim
        .state()
        .read(|s| s.lun(&id).and_then(|l| l.parent_uuid.clone()));
    assert_eq!(parent.as_deref(), Some(src.as_str()));

    let mut from_snapshot = desired_lun("from-snap", GIB, true);
    from_snapshot.source = Some(CloneSource::Snapshot("snap-1".into()));
    let err = b
        .create_lun(&from_snapshot)
        .await
        .map(|c| c.id)
        .expect_err("unsupported");
    assert_eq!(err.class, ErrorClass::Unsupported);
}

#[tokio::test]
async fn target_with_two_luns_map_and_unmap() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let (a, _) = converge_lun(&b, None, &desired_lun("lun-a", GIB, true)).await;
    let (c, _) = converge_lun(&b, None, &desired_lun("lun-b", GIB, true)).await;
    let (d, _) = converge_lun(&b, None, &desired_lun("lun-c", GIB, true)).await;

    let mut want = desired_target("pvc-target", vec![a.clone(), c.clone()]);
    want.settings.insert("maxSessions".into(), "4".into());
    want.settings.insert("headerDigest".into(), "true".into());
    want.settings
        .insert("maxRecvSegBytes".into(), "65536".into());
    let (tid, o, _) = converge_target(&b, None, &want, false).await;
    assert_eq!(o.mapped_luns, vec![a.clone(), c.clone()]);
    assert_eq!(o.iqn, "iqn.2000-01.com.synology:dsm.pvc-target");
    assert_eq!(o.settings["maxSessions"], "4");
    assert_eq!(o.settings["headerDigest"], "true");
    assert_eq!(o.settings["dataDigest"], "false");
    assert_eq!(o.settings["maxRecvSegBytes"], "65536");
    assert_eq!(o.settings["maxSendSegBytes"], "262144");
    assert_eq!(o.connected_sessions, Some(0));
    assert_eq!(o.status.as_deref(), Some("online"));
    assert!(o.initiators.is_empty());
    for lun in [&a, &c] {
        let l = find_lun(&b, Some(lun), "").await.expect("lun");
        assert_eq!(
            l.mapped_targets,
            vec![tid.clone()],
            "seen from the LUN side"
        );
    }

    // Swap lun-b for lun-c: one unmap, one map.
    want.luns = vec![a.clone(), d.clone()];
    let (_, o, ops) = converge_target(&b, Some(tid.clone()), &want, false).await;
    assert_eq!(
        ops,
        vec![
            TargetOp::Unmap {
                lun_ids: vec![c.clone()]
            },
            TargetOp::Map {
                lun_ids: vec![d.clone()]
            }
        ]
    );
    assert_eq!(o.mapped_luns, vec![a.clone(), d.clone()]);
    assert!(
        find_lun(&b, Some(&c), "")
            .await
            .expect("b")
            .mapped_targets
            .is_empty()
    );

    // Map of a mapped LUN and unmap of an unmapped one both succeed.
    b.update_target(
        &tid,
        &TargetOp::Map {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("map again");
    b.update_target(
        &tid,
        &TargetOp::Unmap {
            lun_ids: vec![c.clone()],
        },
    )
    .await
    .expect("unmap again");
    b.update_lun(
        &c,
        &LunOp::Unmap {
            target_id: tid.clone(),
        },
    )
    .await
    .expect("unmap from the LUN side");

    // Rename and a new IQN through the diff keep the id and the mappings.
    let mut renamed = want.clone();
    renamed.name = "pvc-target-renamed".into();
    renamed
        .settings
        .insert("iqn".into(), "iqn.2000-01.com.synology:dsm.renamed".into());
    let (id, o, ops) = converge_target(&b, Some(tid.clone()), &renamed, false).await;
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(id, tid);
    assert_eq!(o.name, "pvc-target-renamed");
    assert_eq!(o.iqn, "iqn.2000-01.com.synology:dsm.renamed");
    assert_eq!(o.mapped_luns, vec![a.clone(), d.clone()]);

    // A second target on the same host takes its host name from the first
    // IQN DSM-style; an explicit IQN is kept as given.
    let mut other = desired_target("other", vec![]);
    other
        .settings
        .insert("iqn".into(), "iqn.2000-01.com.synology:nas01.custom".into());
    let (_, o, _) = converge_target(&b, None, &other, false).await;
    assert_eq!(o.iqn, "iqn.2000-01.com.synology:nas01.custom");
    let (_, o, _) = converge_target(&b, None, &desired_target("Third_One", vec![]), false).await;
    assert_eq!(o.iqn, "iqn.2000-01.com.synology:nas01.third-one");
}

#[tokio::test]
async fn chap_on_changed_mutual_off_and_enable_disable() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let mut want = desired_target("chap-target", vec![]);
    want.chap = Some(chap("alice", "alice-secret-1", None));
    want.enabled = false;
    let (tid, o, _) = converge_target(&b, None, &want, false).await;
    let c = o.chap.expect("chap on");
    assert_eq!(c.username, "alice");
    assert_eq!(c.password, None, "DSM never returns CHAP secrets");
    assert!(!o.enabled);
    assert_eq!(o.status.as_deref(), Some("offline"));
    let id: i64 = tid.parse().expect("numeric id");
    let stored = sim.state().read(|s| s.target(id).cloned()).expect("target");
    assert_eq!(stored.auth_type, 1);
    assert_eq!(stored.password, "alice-secret-1");

    // Password rotated (same user): only chap_rotated shows it.
    want.chap = Some(chap("alice", "alice-secret-2", None));
    let (_, _, ops) = converge_target(&b, Some(tid.clone()), &want, true).await;
    assert_eq!(ops.len(), 1);
    let stored = sim.state().read(|s| s.target(id).cloned()).expect("target");
    assert_eq!(stored.password, "alice-secret-2");

    // Mutual.
    want.chap = Some(chap(
        "bob",
        "bob-secret-123",
        Some(("array", "array-secret-1")),
    ));
    want.enabled = true;
    let (_, o, _) = converge_target(&b, Some(tid.clone()), &want, false).await;
    let c = o.chap.expect("chap");
    assert_eq!(c.username, "bob");
    assert_eq!(c.mutual_username.as_deref(), Some("array"));
    assert!(o.enabled);
    let stored = sim.state().read(|s| s.target(id).cloned()).expect("target");
    assert_eq!(stored.auth_type, 2);
    assert_eq!(stored.mutual_password, "array-secret-1");

    // Off, and disabled again.
    want.chap = None;
    want.enabled = false;
    let (_, o, _) = converge_target(&b, Some(tid.clone()), &want, false).await;
    assert_eq!(o.chap, None);
    assert!(!o.enabled);
    b.update_target(&tid, &TargetOp::Enable)
        .await
        .expect("enable");
    assert!(find_target(&b, Some(&tid), "").await.expect("t").enabled);

    // A secret DSM would refuse is refused first, naming the rule.
    want.chap = Some(chap("carol", "short", None));
    let err = b
        .update_target(&tid, &TargetOp::SetChap(want.chap.clone()))
        .await
        .expect_err("short secret");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    assert!(err.message.contains("12 to 16"), "{err}");
}

#[tokio::test]
async fn out_of_band_changes_are_found_and_corrected() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let mut lun_want = desired_lun("drifty", 4 * GIB, true);
    lun_want
        .settings
        .insert("synology.emulateCaw".into(), "true".into());
    let (lun_id, _) = converge_lun(&b, None, &lun_want).await;
    let (other, _) = converge_lun(&b, None, &desired_lun("drifty-2", GIB, true)).await;
    let want = desired_target("drifty-target", vec![lun_id.clone(), other.clone()]);
    let (tid, _, _) = converge_target(&b, None, &want, false).await;
    let id: i64 = tid.parse().expect("id");

    // Behind the operator's back: unmap, shrink (an admin's mistake), a flag
    // off, a setting changed, CHAP switched on.
    assert!(sim.state().drop_mapping(id, &lun_id));
    assert!(sim.state().resize_lun(&lun_id, 2 * GIB));
    sim.state().update(|s| {
        if let Some(l) = s.luns.iter_mut().find(|l| l.uuid == lun_id) {
            for (name, enable) in &mut l.dev_attribs {
                if name == "emulate_caw" {
                    *enable = 0;
                }
            }
        }
    });
    assert!(sim.state().edit_target(id, |t| {
        t.max_sessions = 7;
        t.auth_type = 1;
        t.user = "intruder".into();
        t.password = "intruder-pass1".into();
    }));

    let observed = find_lun(&b, Some(&lun_id), "").await.expect("lun");
    let plan = lun::diff(&lun_want, Some(&observed));
    assert!(plan.ops.contains(&LunOp::Grow {
        from_bytes: 2 * GIB,
        to_bytes: 4 * GIB
    }));
    assert!(
        plan.ops
            .iter()
            .any(|o| matches!(o, LunOp::SetSettings(s) if s["synology.emulateCaw"] == "true"))
    );
    converge_lun(&b, Some(lun_id.clone()), &lun_want).await;

    let mut want_sessions = want.clone();
    want_sessions
        .settings
        .insert("maxSessions".into(), "1".into());
    let (_, o, ops) = converge_target(&b, Some(tid.clone()), &want_sessions, false).await;
    assert!(
        ops.contains(&TargetOp::Map {
            lun_ids: vec![lun_id.clone()]
        }),
        "{ops:?}"
    );
    assert!(ops.contains(&TargetOp::SetChap(None)), "{ops:?}");
    assert_eq!(
        o.mapped_luns,
        vec![other.clone(), lun_id.clone()],
        "remapped after the survivor"
    );
    assert_eq!(o.settings["maxSessions"], "1");
    assert_eq!(o.chap, None);
}

#[tokio::test]
async fn delete_target_then_luns_and_already_gone() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let (a, _) = converge_lun(&b, None, &desired_lun("del-a", GIB, true)).await;
    let (c, _) = converge_lun(&b, None, &desired_lun("del-b", GIB, false)).await;
    let (tid, _, _) = converge_target(
        &b,
        None,
        &desired_target("del-t", vec![a.clone(), c.clone()]),
        false,
    )
    .await;

    let observed = find_target(&b, Some(&tid), "").await;
    apply_target_ops(
        &b,
        Some(tid.clone()),
        &target::delete_ops(observed.as_ref()),
    )
    .await;
    assert!(find_target(&b, Some(&tid), "").await.is_none());
    for id in [&a, &c] {
        let observed = find_lun(&b, Some(id), "").await;
        assert!(observed.as_ref().expect("lun").mapped_targets.is_empty());
        apply_lun_ops(&b, Some(id.clone()), &lun::delete_ops(observed.as_ref())).await;
    }
    assert!(b.list_luns().await.expect("list").is_empty());
    assert!(sim.state().luns().is_empty() && sim.state().targets().is_empty());

    // Already gone: success, and the core asks for nothing.
    b.delete_target(&tid).await.expect("gone target");
    b.delete_lun(&a).await.expect("gone lun");
    b.update_lun(
        &a,
        &LunOp::Unmap {
            target_id: tid.clone(),
        },
    )
    .await
    .expect("unmap of gone");
    b.update_target(
        &tid,
        &TargetOp::Unmap {
            lun_ids: vec![a.clone()],
        },
    )
    .await
    .expect("unmap from gone target");
    assert!(lun::delete_ops(None).is_empty());
}

#[tokio::test]
async fn deleting_a_mapped_lun_unmaps_it_first() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let (lun_id, _) = converge_lun(&b, None, &desired_lun("mapped", GIB, true)).await;
    let (t1, _, _) =
        converge_target(&b, None, &desired_target("t1", vec![lun_id.clone()]), false).await;
    let (t2, _, _) =
        converge_target(&b, None, &desired_target("t2", vec![lun_id.clone()]), false).await;

    // A bare delete is refused while mapped.
    let err = b.delete_lun(&lun_id).await.expect_err("mapped");
    assert_eq!(err.class, ErrorClass::InUse);
    assert_eq!(err.api_call, "SYNO.Core.ISCSI.LUN.delete");
    assert!(err.vendor_code.is_some());

    let observed = find_lun(&b, Some(&lun_id), "").await.expect("lun");
    assert_eq!(observed.mapped_targets, vec![t1.clone(), t2.clone()]);
    let ops = lun::delete_ops(Some(&observed));
    assert_eq!(ops.len(), 3);
    apply_lun_ops(&b, Some(lun_id.clone()), &ops).await;
    assert!(find_lun(&b, Some(&lun_id), "").await.is_none());
    for t in [&t1, &t2] {
        assert!(
            find_target(&b, Some(t), "")
                .await
                .expect("t")
                .mapped_luns
                .is_empty()
        );
    }
}

#[tokio::test]
async fn lists_are_batched() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            b.create_lun(&desired_lun(&format!("batch-{i}"), GIB, true))
                .await
                .map(|c| c.id)
                .expect("create"),
        );
    }
    for (name, luns) in [("batch-t1", &ids[..3]), ("batch-t2", &ids[3..])] {
        let mut want = desired_target(name, luns.to_vec());
        want.settings.insert(
            "iqn".into(),
            format!("iqn.2000-01.com.synology:nas01.{name}"),
        );
        converge_target(&b, None, &want, false).await;
    }

    sim.calls().clear();
    let luns = b.list_luns().await.expect("luns");
    assert_eq!(luns.len(), 5);
    assert!(luns.iter().all(|l| l.mapped_targets.len() == 1));
    assert_eq!(sim.calls().count(LUN_LIST), 1);
    assert_eq!(sim.calls().count(TARGET_LIST), 1);
    assert_eq!(sim.calls().calls().len(), 2, "{:?}", sim.calls().calls());

    sim.calls().clear();
    let targets = b.list_targets().await.expect("targets");
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].mapped_luns, ids[..3].to_vec());
    assert_eq!(sim.calls().count(TARGET_LIST), 1);
    assert_eq!(sim.calls().calls().len(), 1, "{:?}", sim.calls().calls());
}

#[tokio::test]
async fn create_interrupted_after_apply_leaves_one_lun() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.LUN.create",
        1,
        FaultAction::DropAfterApply,
    ));
    let want = desired_lun("interrupted", GIB, true);
    let id = match b.create_lun(&want).await.map(|c| c.id) {
        Ok(id) => id,
        // If the look-up could not tell, the adapter must say Unreachable
        // and the caller re-observes; it must never create a second LUN.
        Err(e) => {
            assert_eq!(e.class, ErrorClass::Unreachable, "{e}");
            find_lun(&b, None, "interrupted").await.expect("exists").id
        }
    };
    let named = sim
        .state()
        .luns()
        .into_iter()
        .filter(|l| l.name == "interrupted")
        .collect::<Vec<_>>();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].uuid, id);
    assert_eq!(sim.calls().count("SYNO.Core.ISCSI.LUN.create"), 1);
    converge_lun(&b, Some(id), &want).await;
}

#[tokio::test]
async fn session_expiry_mid_sequence_is_survived() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let (id, _) = converge_lun(&b, None, &desired_lun("expiring", GIB, true)).await;
    let logins = sim.calls().count("SYNO.API.Auth.login");
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.LUN.set",
        1,
        FaultAction::ExpireSession,
    ));
    sim.faults()
        .arm(FaultRule::once(TARGET_LIST, 2, FaultAction::ExpireSession));
    let mut bigger = desired_lun("expiring", 3 * GIB, true);
    bigger.description = Some("after expiry".into());
    converge_lun(&b, Some(id.clone()), &bigger).await;
    converge_target(&b, None, &desired_target("expiring-t", vec![id]), false).await;
    assert_eq!(
        sim.calls().count("SYNO.API.Auth.login"),
        logins + 2,
        "one login per expiry"
    );

    // A whole-DSM logout (reboot, admin) is survived too.
    sim.state().expire_all_sessions();
    assert_eq!(b.list_luns().await.expect("after logout").len(), 1);
}

#[tokio::test]
async fn refused_before_any_call() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    sim.calls().clear();

    let mut pool = desired_lun("pooled", GIB, true);
    pool.placement = Placement::Pool("pool-a".into());
    let err = b.create_lun(&pool).await.map(|c| c.id).expect_err("pool");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    assert!(err.message.contains("spec.location"), "{err}");

    let mut bad_flag = desired_lun("flagged", GIB, true);
    bad_flag
        .settings
        .insert("synology.emulateCaw".into(), "yes".into());
    assert_eq!(
        b.create_lun(&bad_flag)
            .await
            .map(|c| c.id)
            .expect_err("flag")
            .class,
        ErrorClass::InvalidRequest
    );

    let mut contradiction = desired_lun("contradiction", GIB, true);
    contradiction
        .settings
        .insert("synology.type".into(), "BLUN_THICK".into());
    let err = b
        .create_lun(&contradiction)
        .await
        .map(|c| c.id)
        .expect_err("thick type, thin flag");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    assert!(err.message.contains("spec.synology.type"), "{err}");

    let mut t = desired_target("acl", vec![]);
    t.initiators = vec!["iqn.1993-08.org.debian:01:abc".into()];
    assert_eq!(
        b.create_target(&t)
            .await
            .map(|c| c.id)
            .expect_err("acl")
            .class,
        ErrorClass::Unsupported
    );
    let err = b
        .update_target("1", &TargetOp::SetInitiators(vec!["iqn.x".into()]))
        .await
        .expect_err("initiators");
    assert_eq!(err.class, ErrorClass::Unsupported);
    b.update_target("1", &TargetOp::SetInitiators(Vec::new()))
        .await
        .expect("empty list is nothing to do");

    let mut type_change = array_operator::model::LunSettings::new();
    type_change.insert("synology.type".into(), "BLUN_THICK".into());
    let err = b
        .update_lun("u", &LunOp::SetSettings(type_change))
        .await
        .expect_err("type");
    assert_eq!(err.class, ErrorClass::Unsupported);
    let err = b
        .update_lun("u", &LunOp::Delete { id: "u".into() })
        .await
        .expect_err("delete is not an update");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    let err = b
        .update_target("1", &TargetOp::Create(desired_target("x", vec![])))
        .await
        .expect_err("create is not an update");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    let err = b.delete_target("not-a-number").await.expect_err("bad id");
    assert_eq!(err.class, ErrorClass::InvalidRequest);

    assert_eq!(sim.calls().calls().len(), 0, "{:?}", sim.calls().calls());
}

#[tokio::test]
async fn connect_checks_credentials() {
    let sim = dsm_support::sim().await;
    let mut token = config(&sim, DEFAULT_PASSWORD);
    token.credentials = Credentials::Token(SecretString::new("tok"));
    let err = Backend::connect(token).await.expect_err("token");
    assert_eq!(err.class, ErrorClass::InvalidRequest);
    assert!(err.message.contains("spec.credentialsSecretRef"), "{err}");
    assert!(err.message.contains("username") && err.message.contains("password"));

    let err = Backend::connect(config(&sim, "wrong-password-42"))
        .await
        .expect_err("bad password");
    assert_eq!(err.class, ErrorClass::Unauthorized);
    assert_eq!(err.api_call, "SYNO.API.Auth.login");

    let b = backend(&sim).await;
    assert_eq!(sim.state().session_count(), 1, "logged in at connect");
    b.close().await;
    assert_eq!(sim.state().session_count(), 0, "logged out at close");
}

#[tokio::test]
async fn info_lists_volumes() {
    let sim = dsm_support::sim().await;
    let b = backend(&sim).await;
    let info = b.info().await.expect("info");
    // SYNO.DSM.Info (issue 11).
    assert_eq!(
        info.model.as_deref(),
        Some(array_operator::sim::dsm::seed::MODEL)
    );
    assert_eq!(
        info.version.as_deref(),
        Some(array_operator::sim::dsm::seed::VERSION_STRING)
    );
    assert_eq!(info.pools.len(), 1);
    assert_eq!(info.pools[0].0, "/volume1");
    assert_eq!(info.pools[0].1, Some(1 << 40));
    assert!(info.pools[0].2.is_some());
    assert_eq!(
        info.active_endpoint.as_deref(),
        Some(sim.base_url().as_str())
    );

    // Without VMM only the LUN locations are known.
    let sim2 = dsm_support::sim().await;
    sim2.state()
        .update(|s| s.missing_apis.push("SYNO.Virtualization.".into()));
    let b2 = backend(&sim2).await;
    b2.create_lun(&desired_lun("somewhere", GIB, true))
        .await
        .map(|c| c.id)
        .expect("create");
    let info = b2.info().await.expect("info");
    assert_eq!(info.pools, vec![("/volume1".to_string(), None, None)]);
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret leaked into: {text}");
    }
}

#[tokio::test]
async fn secrets_never_leak() {
    let sim = dsm_support::sim().await;
    let secrets = [
        DEFAULT_PASSWORD,
        "wrong-password-42",
        "leaky-secret-1",
        "mutual-secret-9",
        "tiny",
    ];
    let mut errors: Vec<BackendError> = Vec::new();
    errors.push(
        Backend::connect(config(&sim, "wrong-password-42"))
            .await
            .expect_err("bad login"),
    );
    let b = backend(&sim).await;
    let mut want = desired_target("secretive", vec![]);
    want.chap = Some(chap(
        "eve",
        "leaky-secret-1",
        Some(("array", "mutual-secret-9")),
    ));
    let (tid, _, _) = converge_target(&b, None, &want, false).await;

    // DSM errors, transport errors and the adapter's own refusals.
    errors.push(
        b.update_target("9999", &TargetOp::SetChap(want.chap.clone()))
            .await
            .expect_err("no such target"),
    );
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.Target.set",
        1,
        FaultAction::DropBeforeApply,
    ));
    errors.push(
        b.update_target(&tid, &TargetOp::SetChap(want.chap.clone()))
            .await
            .expect_err("dropped"),
    );
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.Target.create",
        1,
        FaultAction::ErrorCode(120),
    ));
    let mut second = want.clone();
    second.name = "secretive-2".into();
    errors.push(
        b.create_target(&second)
            .await
            .map(|c| c.id)
            .expect_err("refused create"),
    );
    errors.push(
        b.update_target(&tid, &TargetOp::SetChap(Some(chap("eve", "tiny", None))))
            .await
            .expect_err("short"),
    );
    assert_eq!(errors[2].class, ErrorClass::Unreachable);
    for e in &errors {
        assert_no_secret(&e.to_string(), &secrets);
        assert_no_secret(&format!("{e:?}"), &secrets);
    }
    assert_no_secret(&format!("{b:?}"), &secrets);
    assert_no_secret(&format!("{:?}", config(&sim, DEFAULT_PASSWORD)), &secrets);
    assert_no_secret(&format!("{want:?}"), &secrets);
    assert_no_secret(
        &format!("{:?}", TargetOp::SetChap(want.chap.clone())),
        &secrets,
    );
    let observed = find_target(&b, Some(&tid), "").await.expect("t");
    assert_no_secret(&format!("{observed:?}"), &secrets);
}
