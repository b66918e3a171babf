//! The NGXStorage client against the simulator over real HTTPS on loopback,
//! every endpoint, once per dialect.

#[path = "ngx_support/mod.rs"]
mod support;

use array_operator::array::error::{ArrayError, ErrorClass};
use array_operator::array::ngxstorage::{
    Chap, Dialect, Endpoint, LunChanges, NgxClient, NgxError, ResizeMode, TargetCreate,
};
use array_operator::sim::faults::{FaultAction, FaultRule};
use array_operator::sim::ngx::seed::{DEFAULT_AUTH_GROUP_ID, POOL1_ID, PORTAL_GROUP_ID};
use support::{GIB, MIB, client, config, lun, sim};

both_dialects!(
    connect_detects_the_dialect_and_reads_every_status_endpoint,
    pools_and_portal_groups,
    lun_lifecycle_moves_pool_capacity,
    duplicate_lun_name_is_already_exists,
    resize_is_verified_in_each_mode,
    target_lifecycle,
    auth_group_lifecycle,
    snapshot_lifecycle,
    snapshot_schedule_lifecycle,
    unknown_ids_are_not_found_with_the_vendor_code,
    busy_is_retried_with_bounded_backoff,
    a_post_cut_after_applying_is_not_replayed,
    a_dropped_read_is_replayed_and_5xx_is_reported,
    one_client_serves_concurrent_callers,
    a_restarted_array_keeps_its_state,
);

async fn connect_detects_the_dialect_and_reads_every_status_endpoint(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    assert_eq!(c.dialect(), d);
    // The probe asked the SDK's path first, then (document) the document's.
    assert_eq!(
        sim.calls()
            .count_where(|call| call.operation.ends_with("/target/iscsi/list")),
        1
    );
    assert_eq!(sim.count(Endpoint::TargetDetailList), 1);

    let info = c.system_info().await.expect("system_info");
    let tag = sim.state().read(|s| s.service_tag.clone());
    assert_eq!(info.service_tag.as_deref(), Some(tag.as_str()));
    assert!(info.app_version.is_some());

    let capacity = c.capacity().await.expect("capacity");
    let free1 = sim.state().pool_free_by_name("pool1").expect("pool1");
    let pool1 = capacity
        .iter()
        .find(|p| p.pool == "pool1")
        .expect("pool1 capacity");
    assert_eq!(pool1.logical_available_bytes, Some(free1));
    assert_eq!(capacity.len(), 2);

    let health = c.pool_health().await.expect("status/pools");
    assert!(
        health.iter().all(|p| p.status.as_deref() == Some("ONLINE")),
        "{health:?}"
    );

    let cluster = c.cluster().await.expect("cluster");
    assert!(cluster.is_master() && cluster.connected);
    assert_eq!(cluster.peers, sim.owners().to_vec());

    let license = c.license().await.expect("license");
    assert!(license.has("snapshot") && license.has("clone"));
    assert!(license.expire_time > license.start_time);
}

async fn pools_and_portal_groups(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let pools = c.pools().await.expect("pools");
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"pool1") && names.contains(&"pool2"),
        "{names:?}"
    );
    let p = c.pool(POOL1_ID).await.expect("pool detail");
    assert_eq!(
        (p.name.as_str(), p.status.as_deref()),
        ("pool1", Some("ONLINE"))
    );
    let overview = c.pool_overview().await.expect("overview");
    let total = overview
        .iter()
        .find(|o| o.pool == "pool1")
        .and_then(|o| o.total_bytes);
    assert_eq!(
        total,
        sim.state()
            .read(|s| s.pools.get(POOL1_ID).map(|p| p.total_bytes))
    );

    let groups = c.portal_groups().await.expect("portal groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].id, PORTAL_GROUP_ID);
    let g = c.portal_group(PORTAL_GROUP_ID).await.expect("portal group");
    assert_eq!(g.listen_ips, vec!["127.0.0.1".to_string()]);
    assert_eq!(g.name.as_deref(), Some("pg1"));
}

async fn lun_lifecycle_moves_pool_capacity(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let free_before = sim.state().pool_free_by_name("pool1").expect("pool1");

    let mut spec = lun("data01", 3 * GIB, false);
    spec.blocksize = Some("32k".into());
    spec.io_type = Some("sequential".into());
    spec.qos_priority = Some(32);
    spec.compression = Some(true);
    let created = c.create_lun(&spec).await.expect("create");
    assert!(created.scsi_lunid.is_some());
    // The size went as 3 G.
    let body = sim
        .calls()
        .calls()
        .into_iter()
        .rev()
        .find(|call| call.operation == sim.op(Endpoint::LunCreate))
        .and_then(|call| call.body)
        .expect("body");
    assert_eq!(
        (body["size"].as_u64(), body["sing"].as_str()),
        (Some(3), Some("G"))
    );

    let overview = c.pool_overview().await.expect("overview");
    let free = overview
        .iter()
        .find(|o| o.pool == "pool1")
        .and_then(|o| o.free_bytes);
    assert_eq!(free, Some(free_before - 3 * GIB));

    let detail = c.lun(&created.id).await.expect("detail");
    assert_eq!(detail.name, "data01");
    assert_eq!(detail.size_bytes, 3 * GIB);
    assert_eq!(detail.pool.as_deref(), Some("pool1"));
    assert_eq!(detail.thin, Some(false));
    assert_eq!(detail.blocksize.as_deref(), Some("32768"));
    assert_eq!(detail.io_type.as_deref(), Some("sequential"));
    assert_eq!(detail.qos_priority, Some(32));
    assert_eq!(detail.compression, Some(true));

    let thin = c
        .create_lun(&lun("thin01", 5 * GIB + 7 * MIB, true))
        .await
        .expect("thin");
    assert_eq!(
        c.lun(&thin.id).await.expect("thin detail").size_bytes,
        5 * GIB + 7 * MIB
    );
    assert!(sim.state().pool_free_by_name("pool1").expect("pool1") > free_before - 4 * GIB);

    let list = c.luns().await.expect("list");
    assert_eq!(list.len(), 2);
    assert!(
        list.iter().any(|l| l.id == created.id
            && l.name == "data01"
            && l.pool.as_deref() == Some("pool1"))
    );
    let detailed = c.luns_detailed().await.expect("detail list");
    assert_eq!(
        detailed.iter().find(|l| l.id == thin.id).map(|l| l.thin),
        Some(Some(true))
    );
    assert_eq!(
        c.find_lun_by_name("thin01")
            .await
            .expect("find")
            .map(|l| l.id),
        Some(thin.id.clone())
    );

    c.modify_lun(
        &created.id,
        &LunChanges {
            qos_priority: Some(64),
            deduplication: Some(true),
            ..LunChanges::default()
        },
    )
    .await
    .expect("modify");
    let after = c.lun(&created.id).await.expect("detail");
    assert_eq!(
        (after.qos_priority, after.deduplication),
        (Some(64), Some(true))
    );

    c.delete_lun(&created.id).await.expect("delete");
    assert!(sim.state().lun(&created.id).is_none());
    assert_eq!(
        sim.state()
            .pool_free_by_name("pool1")
            .map(|f| f >= free_before - GIB),
        Some(true)
    );
    // Deleting again: the array says not found; that is success.
    c.delete_lun(&created.id).await.expect("delete again");
    assert_eq!(sim.count(Endpoint::LunDelete), 2);
}

async fn duplicate_lun_name_is_already_exists(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    c.create_lun(&lun("dup", GIB, true)).await.expect("first");
    let err = c
        .create_lun(&lun("dup", GIB, true))
        .await
        .expect_err("duplicate");
    assert_eq!(err.class(), ErrorClass::AlreadyExists);
    assert_eq!(err.vendor_code(), Some(710));
    assert!(
        err.api_call().starts_with("POST /lun"),
        "{}",
        err.api_call()
    );
    assert_eq!(sim.state().count_luns_named("dup"), 1);
}

async fn resize_is_verified_in_each_mode(d: Dialect) {
    let sim = sim(d).await;
    let right = client(&sim).await;
    let mut wrong_cfg = config(&sim);
    wrong_cfg.resize_mode = match right.resize_mode() {
        ResizeMode::Absolute => ResizeMode::Delta,
        ResizeMode::Delta => ResizeMode::Absolute,
        ResizeMode::Auto => unreachable!("the helper configures each dialect's own mode"),
    };
    let wrong = NgxClient::connect(wrong_cfg).await.expect("connect");

    let a = right
        .create_lun(&lun("grow_a", GIB, true))
        .await
        .expect("a");
    let grown = right
        .resize_lun(&a.id, 2 * GIB + 512 * MIB)
        .await
        .expect("resize in the array's mode");
    assert_eq!(grown.size_bytes, 2 * GIB + 512 * MIB);
    let patch = sim
        .calls()
        .calls()
        .into_iter()
        .rev()
        .find(|call| call.operation == sim.op(Endpoint::LunModify))
        .and_then(|call| call.body)
        .expect("patch body");
    let expected_number = if d == Dialect::Sdk { 1536 } else { 2560 };
    assert_eq!(
        (patch["size"].as_u64(), patch["sing"].as_str()),
        (Some(expected_number), Some("M"))
    );

    let b = right
        .create_lun(&lun("grow_b", GIB, true))
        .await
        .expect("b");
    let patches_before = sim.count(Endpoint::LunModify);
    let err = wrong
        .resize_lun(&b.id, 2 * GIB)
        .await
        .expect_err("mode mismatch");
    match &err {
        NgxError::ResizeMismatch {
            expected, observed, ..
        } => {
            assert_eq!(*expected, 2 * GIB);
            let wrong_size = if d == Dialect::Sdk { 3 * GIB } else { GIB };
            assert_eq!(*observed, wrong_size);
        }
        other => panic!("expected ResizeMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("resizeMode"), "{err}");
    // Exactly one PATCH: never a second resize.
    assert_eq!(sim.count(Endpoint::LunModify) - patches_before, 1);

    // Shrinking and a same-size resize send nothing.
    let before = sim.count(Endpoint::LunModify);
    assert!(matches!(
        right.resize_lun(&a.id, GIB).await,
        Err(NgxError::Shrink { .. })
    ));
    right
        .resize_lun(&a.id, 2 * GIB + 512 * MIB)
        .await
        .expect("no-op");
    assert_eq!(sim.count(Endpoint::LunModify), before);
}

async fn target_lifecycle(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let l1 = c.create_lun(&lun("t_l1", GIB, true)).await.expect("l1").id;
    let l2 = c.create_lun(&lun("t_l2", GIB, true)).await.expect("l2").id;

    let created = c
        .create_target(&TargetCreate {
            name: "tgt1".into(),
            auth_group_id: DEFAULT_AUTH_GROUP_ID.into(),
            portal_group_id: PORTAL_GROUP_ID.into(),
            lun_ids: vec![l1.clone()],
        })
        .await
        .expect("create target");
    assert_eq!(created.luns.len(), 1);
    assert_eq!(
        (created.luns[0].vol_id.as_str(), created.luns[0].number),
        (l1.as_str(), Some(0))
    );

    let t = c.target(&created.id).await.expect("detail");
    assert_eq!(t.name, "tgt1");
    assert!(
        t.iqn.as_deref().is_some_and(|i| i.ends_with(":tgt1")),
        "{:?}",
        t.iqn
    );
    assert_eq!(t.auth_group_id.as_deref(), Some(DEFAULT_AUTH_GROUP_ID));
    assert_eq!(t.portal_group_id.as_deref(), Some(PORTAL_GROUP_ID));
    assert_eq!(t.owner.as_deref(), Some(c.owner()));

    c.add_target_luns(&created.id, std::slice::from_ref(&l2))
        .await
        .expect("add l2");
    // Adding it again: the array says already exists; that is success.
    c.add_target_luns(&created.id, std::slice::from_ref(&l2))
        .await
        .expect("add l2 again");
    assert_eq!(sim.count(Endpoint::TargetAddLun), 2);
    let t = c.target(&created.id).await.expect("detail");
    let mapped: Vec<(String, Option<u32>)> = t
        .luns
        .iter()
        .map(|m| (m.vol_id.clone(), m.number))
        .collect();
    assert_eq!(mapped, vec![(l1.clone(), Some(0)), (l2.clone(), Some(1))]);
    assert_eq!(
        c.lun(&l1).await.expect("lun").iscsi_target.as_deref(),
        Some("tgt1")
    );

    // A mapped LUN cannot be deleted.
    let err = c.delete_lun(&l1).await.expect_err("attached");
    assert_eq!(
        (err.class(), err.vendor_code()),
        (ErrorClass::InUse, Some(534))
    );

    c.rename_target(&created.id, "tgt1-renamed")
        .await
        .expect("rename");
    let group = c.create_auth_group("tgtgroup").await.expect("group");
    c.set_target_auth_group(&created.id, &group)
        .await
        .expect("auth group");
    c.set_target_portal_group(&created.id, PORTAL_GROUP_ID)
        .await
        .expect("portal group");
    let t = c.target(&created.id).await.expect("detail");
    assert_eq!(t.name, "tgt1-renamed");
    assert_eq!(t.auth_group_id.as_deref(), Some(group.as_str()));

    let summaries = c.targets().await.expect("list");
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        (summaries[0].id.as_str(), summaries[0].name.as_str()),
        (created.id.as_str(), "tgt1-renamed")
    );
    let detailed = c.targets_detailed().await.expect("detail list");
    assert_eq!(detailed[0].luns.len(), 2);

    c.remove_target_luns(&created.id, std::slice::from_ref(&l1))
        .await
        .expect("unmap");
    c.remove_target_luns(&created.id, std::slice::from_ref(&l1))
        .await
        .expect("unmap again");
    assert_eq!(
        sim.state().target(&created.id).map(|t| t.luns.len()),
        Some(1)
    );
    c.delete_lun(&l1).await.expect("delete the unmapped LUN");

    let dup = c
        .create_target(&TargetCreate {
            name: "tgt1-renamed".into(),
            auth_group_id: DEFAULT_AUTH_GROUP_ID.into(),
            portal_group_id: PORTAL_GROUP_ID.into(),
            lun_ids: vec![],
        })
        .await
        .expect_err("duplicate target");
    assert_eq!(
        (dup.class(), dup.vendor_code()),
        (ErrorClass::AlreadyExists, Some(525))
    );

    c.delete_target(&created.id).await.expect("delete");
    c.delete_target(&created.id).await.expect("delete again");
    assert!(sim.state().target(&created.id).is_none());
}

async fn auth_group_lifecycle(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let id = c.create_auth_group("hosts01").await.expect("create");
    let dup = c.create_auth_group("hosts01").await.expect_err("duplicate");
    assert_eq!(
        (dup.class(), dup.vendor_code()),
        (ErrorClass::AlreadyExists, Some(519))
    );

    c.rename_auth_group(&id, "hosts02").await.expect("rename");
    let secret = "chap-secret-77x";
    c.set_auth_group_chap(
        &id,
        &Chap {
            username: "chapuser".into(),
            password: secret.into(),
        },
    )
    .await
    .expect("chap");
    let g = c.auth_group(&id).await.expect("detail");
    assert_eq!(g.name, "hosts02");
    assert!(g.chap_enabled);
    assert_eq!(g.chap_username.as_deref(), Some("chapuser"));
    assert!(!format!("{g:?}").contains(secret));

    let iqn = "iqn.1993-08.org.debian:01:abc";
    let entry = c
        .add_auth_group_iqn(&id, iqn, "node1")
        .await
        .expect("iqn")
        .expect("new entry id");
    // Adding it again: already exists counts as success.
    assert_eq!(
        c.add_auth_group_iqn(&id, iqn, "node1")
            .await
            .expect("again"),
        None
    );
    let alias_key = if d == Dialect::Sdk {
        "alias"
    } else {
        "iqn_alias"
    };
    let sent = sim
        .calls()
        .calls()
        .into_iter()
        .find(|call| call.operation == sim.op(Endpoint::AuthGroupAddIqn))
        .and_then(|call| call.body)
        .expect("body");
    assert_eq!(sent[alias_key].as_str(), Some("node1"));
    let g = c.auth_group(&id).await.expect("detail");
    assert_eq!(g.initiators.len(), 1);
    assert_eq!(
        (
            g.initiators[0].iqn.as_str(),
            g.initiators[0].alias.as_deref()
        ),
        (iqn, Some("node1"))
    );

    let all = c.auth_groups().await.expect("list");
    assert!(
        all.iter()
            .any(|g| g.id == DEFAULT_AUTH_GROUP_ID && g.name == "DefaultAuthGroup")
    );
    assert!(all.iter().any(|g| g.id == id));
    let detailed = c.auth_groups_detailed().await.expect("detail list");
    assert_eq!(
        detailed
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.initiators.len()),
        Some(1)
    );

    c.delete_auth_group_iqn(&entry).await.expect("delete iqn");
    c.delete_auth_group_iqn(&entry)
        .await
        .expect("delete iqn again");
    c.delete_auth_group_chap(&id).await.expect("delete chap");
    let g = c.auth_group(&id).await.expect("detail");
    assert!(!g.chap_enabled && g.initiators.is_empty());
    c.delete_auth_group(&id).await.expect("delete");
    c.delete_auth_group(&id).await.expect("delete again");
    assert!(sim.state().read(|s| !s.auth_groups.contains_key(&id)));
}

async fn snapshot_lifecycle(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let vol = c
        .create_lun(&lun("snapsrc", 2 * GIB, true))
        .await
        .expect("lun")
        .id;
    let s1 = c.create_snapshot(&vol, "s1").await.expect("snapshot");
    let dup = c.create_snapshot(&vol, "s1").await.expect_err("duplicate");
    assert_eq!(
        (dup.class(), dup.vendor_code()),
        (ErrorClass::AlreadyExists, Some(522))
    );

    let detail = c.snapshot(&s1.id).await.expect("detail");
    assert_eq!(detail.name.as_deref(), Some("s1"));
    assert_eq!(detail.volume_id.as_deref(), Some(vol.as_str()));
    assert_eq!(detail.volume_name.as_deref(), Some("snapsrc"));
    assert_eq!(detail.bound, Some(false));

    let s2 = c.create_snapshot(&vol, "s2").await.expect("s2");
    let listed = c.snapshots(Some(&vol)).await.expect("list");
    assert_eq!(listed.len(), 2);
    let detailed = c.snapshots_detailed(Some(&vol)).await.expect("detail list");
    assert!(
        detailed
            .iter()
            .any(|s| s.id == s2.id && s.reserved_bytes.is_some())
    );
    assert_eq!(c.snapshots_detailed(None).await.expect("all").len(), 2);

    // Restore rolls the size back.
    sim.state().set_lun_size(&vol, 4 * GIB);
    c.restore_snapshot(&s1.id).await.expect("restore");
    assert_eq!(c.lun(&vol).await.expect("lun").size_bytes, 2 * GIB);

    let clone = c.clone_snapshot(&s1.id, "clone1").await.expect("clone");
    let cl = c.lun(&clone).await.expect("clone lun");
    assert_eq!((cl.name.as_str(), cl.size_bytes), ("clone1", 2 * GIB));
    assert_eq!(c.snapshot(&s1.id).await.expect("detail").bound, Some(true));
    let err = c.delete_snapshot(&s1.id).await.expect_err("bound");
    assert_eq!(err.class(), ErrorClass::InUse);

    let warning = c.delete_all_snapshots(&vol).await.expect("delete all");
    assert!(warning.is_some_and(|w| w.contains('1')));
    assert_eq!(c.snapshots(Some(&vol)).await.expect("list").len(), 1);
    c.delete_snapshot(&s2.id)
        .await
        .expect("already gone counts as success");
}

async fn snapshot_schedule_lifecycle(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let vol = c
        .create_lun(&lun("sched", GIB, true))
        .await
        .expect("lun")
        .id;
    assert_eq!(c.snapshot_schedule(&vol).await.expect("none"), None);
    let readable = c
        .create_snapshot_schedule(&vol, "45 23 * * 6", 30)
        .await
        .expect("create");
    assert!(readable.is_some());
    let s = c
        .snapshot_schedule(&vol)
        .await
        .expect("detail")
        .expect("some");
    assert_eq!((s.cron.as_str(), s.keep_max), ("45 23 * * 6", 30));
    c.delete_snapshot_schedule(&vol).await.expect("delete");
    c.delete_snapshot_schedule(&vol)
        .await
        .expect("delete again");
    assert_eq!(c.snapshot_schedule(&vol).await.expect("none"), None);
}

async fn unknown_ids_are_not_found_with_the_vendor_code(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let cases: Vec<(NgxError, i64)> = vec![
        (c.lun("abcdef").await.expect_err("lun"), 5011),
        (c.target("abcdef").await.expect_err("target"), 521),
        (c.auth_group("abcdef").await.expect_err("group"), 611),
        (c.snapshot("abcdef").await.expect_err("snapshot"), 5011),
        (
            c.create_snapshot("abcdef", "x")
                .await
                .expect_err("snapshot of nothing"),
            5011,
        ),
    ];
    for (err, code) in cases {
        assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
        assert_eq!(err.vendor_code(), Some(code), "{err}");
        assert_eq!(err.http_status(), Some(404));
        assert!(
            err.to_string().contains("abcdef"),
            "names the object: {err}"
        );
    }
}

async fn busy_is_retried_with_bounded_backoff(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let op = sim.op(Endpoint::LunCreate);
    sim.faults().arm(FaultRule {
        operation: op.clone(),
        nth: 0,
        times: Some(2),
        action: FaultAction::ErrorCode(725),
    });
    c.create_lun(&lun("busy1", GIB, true))
        .await
        .expect("succeeds on the third try");
    assert_eq!(sim.calls().count(&op), 3);
    assert_eq!(sim.state().count_luns_named("busy1"), 1);

    // Busy on every call: the client stops after max_attempts (4).
    sim.faults().arm(FaultRule::always(
        sim.op(Endpoint::LunList),
        FaultAction::ErrorCode(725),
    ));
    let err = c.luns().await.expect_err("busy");
    assert_eq!(
        (err.class(), err.vendor_code()),
        (ErrorClass::Busy, Some(725))
    );
    assert_eq!(sim.count(Endpoint::LunList), 4);
}

async fn a_post_cut_after_applying_is_not_replayed(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let op = sim.op(Endpoint::LunCreate);
    sim.faults()
        .arm(FaultRule::once(op.clone(), 1, FaultAction::DropAfterApply));
    let err = c
        .create_lun(&lun("cut1", GIB, true))
        .await
        .expect_err("ambiguous");
    assert!(matches!(err, NgxError::Ambiguous { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unreachable);
    assert!(err.to_string().contains("re-observe"), "{err}");
    assert_eq!(sim.calls().count(&op), 1, "the POST was sent once");
    assert_eq!(
        sim.state().count_luns_named("cut1"),
        1,
        "exactly one LUN exists"
    );
    // Re-observing finds it.
    assert!(c.find_lun_by_name("cut1").await.expect("find").is_some());

    // The same holds for PUT and PATCH.
    let vol = sim.state().lun_by_name("cut1").expect("lun").id;
    let t = c
        .create_target(&TargetCreate {
            name: "cut-t".into(),
            auth_group_id: "1".into(),
            portal_group_id: PORTAL_GROUP_ID.into(),
            lun_ids: vec![],
        })
        .await
        .expect("target");
    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::TargetAddLun),
        1,
        FaultAction::DropAfterApply,
    ));
    assert!(matches!(
        c.add_target_luns(&t.id, std::slice::from_ref(&vol)).await,
        Err(NgxError::Ambiguous { .. })
    ));
    assert_eq!(sim.count(Endpoint::TargetAddLun), 1);
    assert_eq!(sim.state().target(&t.id).map(|t| t.luns.len()), Some(1));

    // A resize cut after applying: asking again re-reads the LUN, sees the
    // size reached and sends nothing, so a delta is never applied twice.
    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::LunModify),
        1,
        FaultAction::DropAfterApply,
    ));
    let err = c.resize_lun(&vol, 2 * GIB).await.expect_err("ambiguous");
    assert!(matches!(err, NgxError::Ambiguous { .. }), "{err:?}");
    assert!(err.to_string().contains(&vol), "names the LUN: {err}");
    let again = c.resize_lun(&vol, 2 * GIB).await.expect("already done");
    assert_eq!(again.size_bytes, 2 * GIB);
    assert_eq!(sim.count(Endpoint::LunModify), 1);
}

async fn a_dropped_read_is_replayed_and_5xx_is_reported(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::LunList),
        1,
        FaultAction::DropBeforeApply,
    ));
    c.luns().await.expect("replayed read");
    assert_eq!(sim.count(Endpoint::LunList), 2);

    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::LunDetailList),
        1,
        FaultAction::HttpStatus(503),
    ));
    let err = c.luns_detailed().await.expect_err("503");
    assert_eq!(err.http_status(), Some(503));
    assert_eq!(err.class(), ErrorClass::Other);
    assert_eq!(sim.count(Endpoint::LunDetailList), 1);
}

async fn one_client_serves_concurrent_callers(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.create_lun(&lun(&format!("par{i}"), GIB, true)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("create");
    }
    assert_eq!(sim.state().read(|s| s.luns().len()), 8);
}

async fn a_restarted_array_keeps_its_state(d: Dialect) {
    let mut sim = sim(d).await;
    let c = client(&sim).await;
    let id = c
        .create_lun(&lun("persist", GIB, true))
        .await
        .expect("create")
        .id;
    sim.stop().await;
    let err = c.lun(&id).await.expect_err("down");
    assert_eq!(err.class(), ErrorClass::Unreachable);
    sim.restart(None)
        .await
        .expect("restart on the same address");
    assert_eq!(c.lun(&id).await.expect("back").name, "persist");
    // An out-of-band change is what the client sees next.
    sim.state().set_lun_size(&id, 5 * GIB);
    assert_eq!(c.lun(&id).await.expect("detail").size_bytes, 5 * GIB);
}
