//! Every client operation against the simulator over HTTPS on loopback, with
//! the resulting state checked through the client and the state accessor.

mod dsm_support;

use array_operator::array::synology::lun::LunType;
use array_operator::array::synology::vmm::{Autorun, NewVdisk, NewVnic};
use array_operator::array::synology::{
    Chap, CreateGuest, CreateLun, CreateTarget, DevAttribs, GuestCreate, SetGuest, SetLun,
    SetTarget, SyncOptions, TakeSnapshot, TargetAuth,
};
use array_operator::sim::dsm::state::Power;

fn thin_lun(name: &str, size: u64) -> CreateLun {
    CreateLun {
        name: name.into(),
        lun_type: LunType::Blun,
        location: "/volume1".into(),
        size,
        description: Some(format!("{name} (test)")),
        dev_attribs: DevAttribs {
            emulate_caw: Some(true),
            emulate_fua_write: Some(false),
            can_snapshot: Some(true),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn lun_lifecycle_create_get_set_clone_delete() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    const GIB: u64 = 1 << 30;

    let created = client
        .luns()
        .create(&thin_lun("pvc-1", 10 * GIB))
        .await
        .expect("create");
    let thick = client
        .luns()
        .create(&CreateLun {
            lun_type: LunType::BlunThick,
            dev_attribs: DevAttribs::default(),
            ..thin_lun("pvc-thick", 2 * GIB)
        })
        .await
        .expect("create thick");

    let listed = client.luns().list().await.expect("list");
    assert_eq!(listed.len(), 2);
    let lun = client.luns().get(&created.uuid).await.expect("get");
    assert_eq!(lun.name, "pvc-1");
    assert_eq!(lun.size, 10 * GIB);
    assert_eq!(lun.type_str.as_deref(), Some("BLUN"));
    assert_eq!(lun.allocated_size, Some(0), "thin LUNs start unallocated");
    assert_eq!(lun.flags().emulate_caw, Some(true));
    assert_eq!(lun.flags().emulate_fua_write, Some(false));
    assert_eq!(lun.is_mapped, Some(false));
    assert_eq!(lun.status_text().as_deref(), Some("normal"));
    let thick_lun = client.luns().get(&thick.uuid).await.expect("get thick");
    assert_eq!(thick_lun.allocated_size, Some(2 * GIB));

    client
        .luns()
        .set(
            &created.uuid,
            &SetLun {
                new_size: Some(20 * GIB),
                new_name: Some("pvc-1-renamed".into()),
                description: Some("grown".into()),
                dev_attribs: DevAttribs {
                    emulate_fua_write: Some(true),
                    ..Default::default()
                },
            },
        )
        .await
        .expect("set");
    let after = sim.state().lun_by_name("pvc-1-renamed").expect("renamed");
    assert_eq!(after.size, 20 * GIB);
    assert_eq!(after.description, "grown");
    assert_eq!(after.flag("emulate_fua_write"), Some(true));

    let clone = client
        .luns()
        .clone_lun(&created.uuid, "pvc-1-clone", "/volume1")
        .await
        .expect("clone");
    let cloned = client.luns().get(&clone.uuid).await.expect("get clone");
    assert_eq!(cloned.size, 20 * GIB);
    assert_eq!(cloned.name, "pvc-1-clone");

    for uuid in [&created.uuid, &thick.uuid, &clone.uuid] {
        client.luns().delete(uuid).await.expect("delete");
    }
    assert!(client.luns().list().await.expect("list").is_empty());
    assert!(sim.state().luns().is_empty());
}

#[tokio::test]
async fn mappings_show_on_both_sides_from_either_api() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let a = client
        .luns()
        .create(&thin_lun("map-a", 1 << 30))
        .await
        .expect("a");
    let b = client
        .luns()
        .create(&thin_lun("map-b", 1 << 30))
        .await
        .expect("b");
    let tid = client
        .targets()
        .create(&CreateTarget {
            name: "tgt-1".into(),
            iqn: "iqn.2000-01.com.synology:nas01.tgt-1".into(),
            auth: TargetAuth::None,
            max_sessions: Some(1),
        })
        .await
        .expect("target");

    // From the LUN side.
    client
        .luns()
        .map_target(&a.uuid, &[tid])
        .await
        .expect("map_target");
    // From the target side.
    client
        .targets()
        .map_lun(tid, &[&b.uuid])
        .await
        .expect("map_lun");

    let t = client.targets().get(tid).await.expect("get");
    let mapped: Vec<&str> = t.mapped_luns.iter().map(|m| m.lun_uuid.as_str()).collect();
    assert_eq!(mapped, vec![a.uuid.as_str(), b.uuid.as_str()], "order kept");
    assert_eq!(t.mapped_luns[1].mapping_index, Some(2));
    assert_eq!(
        client.luns().get(&a.uuid).await.expect("a").is_mapped,
        Some(true)
    );
    let listed = client.luns().list().await.expect("list");
    assert!(listed.iter().all(|l| l.is_mapped == Some(true)));
    let for_lun = client
        .targets()
        .list_for_lun(&b.uuid)
        .await
        .expect("filter");
    assert_eq!(for_lun.len(), 1);
    assert_eq!(for_lun[0].target_id, tid);

    client
        .luns()
        .unmap_target(&a.uuid, &[tid])
        .await
        .expect("unmap_target");
    client
        .targets()
        .unmap_lun(tid, &[&b.uuid])
        .await
        .expect("unmap_lun");
    assert!(
        client
            .targets()
            .get(tid)
            .await
            .expect("get")
            .mapped_luns
            .is_empty()
    );
    assert_eq!(
        client.luns().get(&b.uuid).await.expect("b").is_mapped,
        Some(false)
    );
    assert!(sim.state().targets()[0].mapped.is_empty());
}

#[tokio::test]
async fn target_lifecycle_with_chap_enable_disable_set_delete() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let tid = client
        .targets()
        .create(&CreateTarget {
            name: "chap-tgt".into(),
            iqn: "iqn.2000-01.com.synology:nas01.chap-tgt".into(),
            auth: TargetAuth::Mutual {
                initiator: Chap {
                    user: "init".into(),
                    password: "initsecret12".into(),
                },
                target: Chap {
                    user: "tgt".into(),
                    password: "tgtsecret123".into(),
                },
            },
            max_sessions: Some(2),
        })
        .await
        .expect("create");
    let t = client.targets().get(tid).await.expect("get");
    assert_eq!(t.auth_type, 2);
    assert_eq!(t.user, "init");
    assert_eq!(t.mutual_user, "tgt");
    assert_eq!(t.max_sessions, Some(2));
    assert!(t.is_enabled);
    assert_eq!(t.status.as_deref(), Some("online"));
    assert_eq!(sim.state().targets()[0].mutual_password, "tgtsecret123");

    client.targets().disable(tid).await.expect("disable");
    let t = client.targets().get(tid).await.expect("get");
    assert!(!t.is_enabled);
    assert_eq!(t.status.as_deref(), Some("offline"));
    client.targets().enable(tid).await.expect("enable");
    assert!(client.targets().get(tid).await.expect("get").is_enabled);

    client
        .targets()
        .set(
            tid,
            &SetTarget {
                name: Some("chap-tgt-2".into()),
                max_sessions: Some(0),
                auth: Some(TargetAuth::Chap(Chap {
                    user: "u2".into(),
                    password: "another-pass".into(),
                })),
                has_header_checksum: Some(true),
                has_data_checksum: Some(false),
                max_recv_seg_bytes: Some(65536),
                ..Default::default()
            },
        )
        .await
        .expect("set");
    let t = client
        .targets()
        .find_by_name("chap-tgt-2")
        .await
        .expect("list")
        .expect("renamed");
    assert_eq!(t.auth_type, 1);
    assert_eq!(t.user, "u2");
    assert_eq!(t.max_sessions, Some(0));
    assert!(t.has_header_checksum);
    assert_eq!(t.max_recv_seg_bytes, Some(65536));

    client.targets().delete(tid).await.expect("delete");
    assert!(client.targets().list().await.expect("list").is_empty());
}

#[tokio::test]
async fn snapshots_take_list_delete() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let lun = client
        .luns()
        .create(&thin_lun("snap-src", 1 << 30))
        .await
        .expect("lun");
    let taken = client
        .snapshots()
        .take(
            &lun.uuid,
            &TakeSnapshot {
                description: "array-operator: nightly".into(),
                locked: true,
                app_consistent: false,
            },
        )
        .await
        .expect("take");
    let second = client
        .snapshots()
        .take(&lun.uuid, &TakeSnapshot::default())
        .await
        .expect("take 2");
    let snaps = client.snapshots().list(&lun.uuid).await.expect("list");
    assert_eq!(snaps.len(), 2);
    let first = snaps
        .iter()
        .find(|s| s.uuid == taken.snapshot_uuid)
        .expect("listed");
    assert_eq!(first.description, "array-operator: nightly");
    assert!(first.is_user_locked);
    assert_eq!(first.taken_by, "user");
    assert_eq!(first.status.as_ref().map(|s| s.kind()), Some("Healthy"));
    assert_eq!(first.name, "SnapShot-1");

    // The LUN listing shows them too, with the object-shaped status.
    let listed = client.luns().list().await.expect("luns");
    assert_eq!(listed[0].snapshots.len(), 2);
    assert_eq!(
        listed[0].snapshots[0].status.as_ref().map(|s| s.kind()),
        Some("Healthy")
    );

    client
        .snapshots()
        .delete(&[&taken.snapshot_uuid, &second.snapshot_uuid])
        .await
        .expect("delete");
    assert!(
        client
            .snapshots()
            .list(&lun.uuid)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn replication_plan_list_and_sync_moves_the_report() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let plans = client.replication().list().await.expect("list");
    assert_eq!(plans.len(), 1);
    let plan = &plans[0];
    assert_eq!(plan.role_text().as_deref(), Some("mainsite"));
    let report = plan.additional.sync_report.clone().expect("report");
    assert_eq!(report.recent_records.len(), 1);
    let policy = plan.additional.sync_policy.clone().expect("policy");
    let before_next = policy.next_trigger_time.expect("next");

    client
        .replication()
        .sync(
            &plan.plan_id,
            &SyncOptions {
                description: "manual token 1".into(),
                lock_snapshot: true,
                send_encrypted: Some(policy.is_send_encrypted),
            },
        )
        .await
        .expect("sync");

    // Asynchronous: first a running record with its progress.
    let running = &client.replication().list().await.expect("list")[0];
    let report = running.additional.sync_report.clone().expect("report");
    let syncing = report.syncing_record.expect("a running sync");
    assert!(!syncing.is_done);
    assert_eq!(report.recent_records.len(), 1);
    sim.state().advance_plan_clock(30);
    let halfway = &client.replication().list().await.expect("list")[0];
    let percent = halfway
        .additional
        .op_info
        .as_ref()
        .and_then(|o| o.op_progress.as_ref())
        .and_then(|p| p.percentage)
        .expect("progress");
    assert!((40..=60).contains(&percent), "progress {percent}");
    sim.state().advance_plan_clock(31);

    let after = &client.replication().list().await.expect("list")[0];
    let report = after.additional.sync_report.clone().expect("report");
    assert!(report.syncing_record.is_none());
    assert_eq!(report.recent_records.len(), 2);
    assert_eq!(report.success_sync_count, Some(2));
    let last = report.recent_records.last().expect("record");
    assert!(last.is_success && last.is_done);
    let next = after
        .additional
        .sync_policy
        .clone()
        .and_then(|p| p.next_trigger_time)
        .expect("next");
    assert!(next > before_next, "next sync time moved on");
    assert!(
        after
            .additional
            .last_op_info
            .as_ref()
            .and_then(|o| o.update_time)
            .expect("update time")
            >= last.finish_time.expect("finish")
    );
    assert_eq!(
        sim.state().plans()[0].records[1].description,
        "manual token 1"
    );
}

#[tokio::test]
async fn vmm_guest_lifecycle_async_create_power_set_delete_and_lists() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let vmm = client.vmm();

    let storages = vmm.storages().await.expect("storages");
    let networks = vmm.networks().await.expect("networks");
    let hosts = vmm.hosts().await.expect("hosts");
    let images = vmm.images().await.expect("images");
    assert_eq!(storages.len(), 1);
    assert_eq!(networks.len(), 1);
    assert_eq!(hosts.len(), 1);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].kind.as_deref(), Some("disk"));

    let started = vmm
        .create(&CreateGuest {
            guest_name: "vm-1".into(),
            storage_name: storages[0].storage_name.clone(),
            vcpu_num: 2,
            vram_size: 4096,
            autorun: Autorun::On,
            description: "test vm".into(),
            vnics: vec![NewVnic {
                network_name: networks[0].network_name.clone(),
                mac: None,
            }],
            vdisks: vec![
                NewVdisk {
                    create_type: 0,
                    vdisk_size: Some(10240),
                    image_name: None,
                    controller: Some(1),
                    unmap: Some(true),
                },
                NewVdisk {
                    create_type: 1,
                    vdisk_size: None,
                    image_name: Some(images[0].image_name.clone()),
                    controller: None,
                    unmap: None,
                },
            ],
            iso_images: vec!["unmounted".into()],
            auto_clean_task: false,
        })
        .await
        .expect("create");
    let GuestCreate::Started { task_id } = started;
    // Asynchronous: not listed until the task finishes.
    assert!(vmm.list().await.expect("list").is_empty());
    let mut polls = 0;
    let guest_id = loop {
        polls += 1;
        let info = vmm.task(&task_id).await.expect("task");
        if info.finish {
            assert_eq!(info.task_info.progress, Some(100));
            break info.task_info.guest_id.expect("guest id");
        }
        assert!(info.task_info.progress.unwrap_or(0) < 100);
        assert!(polls < 10, "task never finished");
    };
    assert!(polls >= 2, "progress was reported before the finish");

    let g = vmm.get(&guest_id).await.expect("get");
    assert_eq!(g.guest_name, "vm-1");
    assert_eq!(g.status, "shutdown");
    assert_eq!(g.vdisks.len(), 2);
    assert_eq!(g.vdisks[1].vdisk_size, Some(10240), "cloned from the image");
    assert_eq!(g.vnics[0].network_name, "default");
    assert!(g.vnics[0].mac.starts_with("02:11:32:"));

    vmm.power_on(&guest_id).await.expect("poweron");
    assert_eq!(vmm.get(&guest_id).await.expect("get").status, "running");
    let host = &vmm.hosts().await.expect("hosts")[0];
    assert_eq!(host.free_cpu_core, Some(2));
    vmm.shutdown(&guest_id).await.expect("shutdown");
    assert_eq!(vmm.get(&guest_id).await.expect("get").status, "shutdown");
    let err = vmm
        .power_on_at(&guest_id, "no-such-host")
        .await
        .expect_err("unknown host");
    assert_eq!(err.code(), Some(401));
    vmm.power_on_at(&guest_id, "nas01")
        .await
        .expect("poweron on a named host");
    assert_eq!(
        vmm.get(&guest_id).await.expect("get").host_id.as_deref(),
        Some(host.host_id.as_str())
    );
    vmm.power_off(&guest_id).await.expect("poweroff");
    assert_eq!(sim.state().guests()[0].power, Power::Shutdown);

    vmm.set(
        &guest_id,
        &SetGuest {
            new_guest_name: Some("vm-1b".into()),
            autorun: Some(Autorun::Off),
            description: Some("renamed".into()),
            vcpu_num: Some(4),
            vram_size: Some(8192),
        },
    )
    .await
    .expect("set");
    let listed = vmm.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].guest_name, "vm-1b");
    assert_eq!(listed[0].vcpu_num, Some(4));
    assert_eq!(listed[0].vram_size, Some(8192));
    assert_eq!(listed[0].autorun, Some(0));

    vmm.delete(&guest_id).await.expect("delete");
    assert!(vmm.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn logout_ends_the_session_on_the_array() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client.luns().list().await.expect("list");
    assert_eq!(sim.state().session_count(), 1);
    client.logout().await.expect("logout");
    assert_eq!(sim.state().session_count(), 0);
    let logout = sim
        .calls()
        .calls()
        .into_iter()
        .find(|c| c.operation == "SYNO.API.Auth.logout")
        .expect("logout call");
    assert_eq!(
        logout.params.get("session").map(String::as_str),
        Some("array-operator-test-install")
    );
}
