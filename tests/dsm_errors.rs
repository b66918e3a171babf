//! Error paths: every refusal the simulator makes reaches the caller as a
//! typed error with the DSM code, the API call, a message naming the object,
//! and the class the reconcile engine acts on.

mod dsm_support;

use array_operator::array::error::{ArrayError, ErrorClass};
use array_operator::array::synology::error::{
    LUN_BUSY, LUN_LIMIT, LUN_NAME_TAKEN, NO_SUCH_LUN, NO_SUCH_SNAPSHOT, NO_SUCH_TARGET,
    OUT_OF_SPACE, SNAPSHOT_LIMIT, TARGET_LIMIT, TARGET_NAME_TAKEN,
};
use array_operator::array::synology::lun::LunType;
use array_operator::array::synology::vmm::{Autorun, NewVdisk, NewVnic};
use array_operator::array::synology::{
    Chap, CreateGuest, CreateLun, CreateTarget, DevAttribs, DsmClient, DsmError, GuestCreate,
    SetLun, SyncOptions, TargetAuth,
};
use array_operator::sim::faults::{FaultAction, FaultRule};

fn lun(name: &str, lun_type: LunType, size: u64) -> CreateLun {
    CreateLun {
        name: name.into(),
        lun_type,
        location: "/volume1".into(),
        size,
        description: None,
        dev_attribs: DevAttribs::default(),
    }
}

fn target(name: &str) -> CreateTarget {
    CreateTarget {
        name: name.into(),
        iqn: format!("iqn.2000-01.com.synology:nas01.{name}"),
        auth: TargetAuth::None,
        max_sessions: None,
    }
}

#[track_caller]
fn expect_code(err: &DsmError, code: i64, class: ErrorClass, api_call: &str) {
    assert_eq!(err.vendor_code(), Some(code), "{err}");
    assert_eq!(err.class(), class, "{err}");
    assert_eq!(err.api_call(), api_call, "{err}");
    let text = err.to_string();
    assert!(text.contains(&code.to_string()), "{text}");
    assert!(text.contains(api_call), "{text}");
}

#[tokio::test]
async fn lun_refusals_have_their_codes_and_classes() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let a = client
        .luns()
        .create(&lun("dup", LunType::Blun, 1 << 30))
        .await
        .expect("create");

    let err = client
        .luns()
        .create(&lun("dup", LunType::Blun, 1 << 30))
        .await
        .expect_err("duplicate");
    expect_code(
        &err,
        LUN_NAME_TAKEN,
        ErrorClass::AlreadyExists,
        "SYNO.Core.ISCSI.LUN.create",
    );
    assert!(
        err.to_string().contains("LUN \"dup\""),
        "names the object: {err}"
    );

    let err = client
        .luns()
        .get("no-such-uuid")
        .await
        .expect_err("missing");
    expect_code(
        &err,
        NO_SUCH_LUN,
        ErrorClass::NotFound,
        "SYNO.Core.ISCSI.LUN.get",
    );
    let err = client
        .luns()
        .delete("no-such-uuid")
        .await
        .expect_err("missing");
    expect_code(
        &err,
        NO_SUCH_LUN,
        ErrorClass::NotFound,
        "SYNO.Core.ISCSI.LUN.delete",
    );

    // Thick LUNs must fit in free space; thin ones may not exceed the volume.
    for lun_type in [LunType::BlunThick, LunType::Blun] {
        let err = client
            .luns()
            .create(&lun("huge", lun_type, 2 << 40))
            .await
            .expect_err("too big");
        expect_code(
            &err,
            OUT_OF_SPACE,
            ErrorClass::LimitReached,
            "SYNO.Core.ISCSI.LUN.create",
        );
    }

    // DSM only grows LUNs.
    let err = client
        .luns()
        .set(
            &a.uuid,
            &SetLun {
                new_size: Some(1 << 20),
                ..Default::default()
            },
        )
        .await
        .expect_err("shrink");
    expect_code(
        &err,
        120,
        ErrorClass::InvalidRequest,
        "SYNO.Core.ISCSI.LUN.set",
    );

    // can_snapshot is for thin LUNs only.
    let err = client
        .luns()
        .create(&CreateLun {
            dev_attribs: DevAttribs {
                can_snapshot: Some(true),
                ..Default::default()
            },
            ..lun("thick-snap", LunType::BlunThick, 1 << 30)
        })
        .await
        .expect_err("thick can_snapshot");
    expect_code(
        &err,
        120,
        ErrorClass::InvalidRequest,
        "SYNO.Core.ISCSI.LUN.create",
    );

    // A mapped LUN cannot be deleted.
    let tid = client.targets().create(&target("t")).await.expect("target");
    client
        .luns()
        .map_target(&a.uuid, &[tid])
        .await
        .expect("map");
    let err = client.luns().delete(&a.uuid).await.expect_err("mapped");
    expect_code(
        &err,
        LUN_BUSY,
        ErrorClass::InUse,
        "SYNO.Core.ISCSI.LUN.delete",
    );
    assert_eq!(sim.state().luns().len(), 1, "nothing deleted");

    let err = client
        .luns()
        .map_target(&a.uuid, &[999])
        .await
        .expect_err("no target");
    expect_code(
        &err,
        NO_SUCH_TARGET,
        ErrorClass::NotFound,
        "SYNO.Core.ISCSI.LUN.map_target",
    );
}

#[tokio::test]
async fn limits_reached() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    sim.state().update(|s| {
        s.limits.max_luns = 1;
        s.limits.max_targets = 1;
        s.limits.max_snapshots_per_lun = 1;
    });
    let a = client
        .luns()
        .create(&CreateLun {
            dev_attribs: DevAttribs {
                can_snapshot: Some(true),
                ..Default::default()
            },
            ..lun("one", LunType::Blun, 1 << 30)
        })
        .await
        .expect("first");
    let err = client
        .luns()
        .create(&lun("two", LunType::Blun, 1 << 30))
        .await
        .expect_err("limit");
    expect_code(
        &err,
        LUN_LIMIT,
        ErrorClass::LimitReached,
        "SYNO.Core.ISCSI.LUN.create",
    );
    client.targets().create(&target("t1")).await.expect("first");
    let err = client
        .targets()
        .create(&target("t2"))
        .await
        .expect_err("limit");
    expect_code(
        &err,
        TARGET_LIMIT,
        ErrorClass::LimitReached,
        "SYNO.Core.ISCSI.Target.create",
    );
    client
        .snapshots()
        .take(&a.uuid, &Default::default())
        .await
        .expect("first");
    let err = client
        .snapshots()
        .take(&a.uuid, &Default::default())
        .await
        .expect_err("limit");
    expect_code(
        &err,
        SNAPSHOT_LIMIT,
        ErrorClass::LimitReached,
        "SYNO.Core.ISCSI.LUN.take_snapshot",
    );
    let err = client
        .snapshots()
        .delete(&["no-such-snapshot"])
        .await
        .expect_err("missing");
    expect_code(
        &err,
        NO_SUCH_SNAPSHOT,
        ErrorClass::NotFound,
        "SYNO.Core.ISCSI.LUN.delete_snapshot",
    );
}

#[tokio::test]
async fn target_refusals() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client
        .targets()
        .create(&target("dup"))
        .await
        .expect("create");
    let err = client
        .targets()
        .create(&target("dup"))
        .await
        .expect_err("duplicate");
    expect_code(
        &err,
        TARGET_NAME_TAKEN,
        ErrorClass::AlreadyExists,
        "SYNO.Core.ISCSI.Target.create",
    );
    let err = client.targets().get(4242).await.expect_err("missing");
    expect_code(
        &err,
        NO_SUCH_TARGET,
        ErrorClass::NotFound,
        "SYNO.Core.ISCSI.Target.get",
    );
    let err = client.targets().delete(4242).await.expect_err("missing");
    assert_eq!(err.class(), ErrorClass::NotFound);

    // CHAP secrets are 12-16 characters; IQNs follow RFC 3720.
    let short = CreateTarget {
        auth: TargetAuth::Chap(Chap {
            user: "u".into(),
            password: "short-Pw".into(),
        }),
        ..target("chap")
    };
    let err = client.targets().create(&short).await.expect_err("short");
    expect_code(
        &err,
        120,
        ErrorClass::InvalidRequest,
        "SYNO.Core.ISCSI.Target.create",
    );
    for text in [err.to_string(), format!("{err:?}"), format!("{short:?}")] {
        assert!(!text.contains("short-Pw"), "CHAP secret leaked: {text}");
    }
    let bad_iqn = CreateTarget {
        iqn: "IQN.bad".into(),
        ..target("bad-iqn")
    };
    let err = client.targets().create(&bad_iqn).await.expect_err("iqn");
    assert_eq!(err.vendor_code(), Some(120));
}

async fn make_guest(client: &DsmClient, name: &str, vram: u64) -> String {
    let started = client
        .vmm()
        .create(&CreateGuest {
            guest_name: name.into(),
            storage_name: "default".into(),
            vcpu_num: 1,
            vram_size: vram,
            autorun: Autorun::Off,
            description: String::new(),
            vnics: vec![NewVnic {
                network_name: "default".into(),
                mac: None,
            }],
            vdisks: vec![NewVdisk {
                create_type: 0,
                vdisk_size: Some(1024),
                image_name: None,
                controller: None,
                unmap: None,
            }],
            iso_images: Vec::new(),
            auto_clean_task: true,
        })
        .await
        .expect("create");
    let GuestCreate::Started { task_id } = started;
    loop {
        let info = client.vmm().task(&task_id).await.expect("task");
        if let Some(id) = info.task_info.guest_id {
            return id;
        }
    }
}

#[tokio::test]
async fn vmm_refusals() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let vmm = client.vmm();
    let id = make_guest(&client, "vm", 1024).await;

    vmm.power_on(&id).await.expect("on");
    let err = vmm.delete(&id).await.expect_err("running");
    expect_code(
        &err,
        904,
        ErrorClass::InUse,
        "SYNO.Virtualization.API.Guest.delete",
    );
    assert!(err.to_string().contains("running"), "{err}");
    let err = vmm.power_on(&id).await.expect_err("already on");
    assert_eq!(err.vendor_code(), Some(904));
    vmm.power_off(&id).await.expect("off");
    let err = vmm.shutdown(&id).await.expect_err("already off");
    expect_code(
        &err,
        907,
        ErrorClass::InvalidRequest,
        "SYNO.Virtualization.API.Guest.Action.shutdown",
    );

    let dup = vmm
        .create(&CreateGuest {
            guest_name: "vm".into(),
            storage_name: "default".into(),
            vcpu_num: 1,
            vram_size: 1024,
            autorun: Autorun::Off,
            description: String::new(),
            vnics: Vec::new(),
            vdisks: Vec::new(),
            iso_images: Vec::new(),
            auto_clean_task: true,
        })
        .await
        .expect_err("duplicate");
    expect_code(
        &dup,
        403,
        ErrorClass::AlreadyExists,
        "SYNO.Virtualization.API.Guest.create",
    );
    let bad_storage = vmm
        .create(&CreateGuest {
            guest_name: "vm2".into(),
            storage_name: "nope".into(),
            vcpu_num: 1,
            vram_size: 1024,
            autorun: Autorun::Off,
            description: String::new(),
            vnics: Vec::new(),
            vdisks: Vec::new(),
            iso_images: Vec::new(),
            auto_clean_task: true,
        })
        .await
        .expect_err("storage");
    assert_eq!(bad_storage.vendor_code(), Some(700));

    let err = vmm.task("no-such-task").await.expect_err("task");
    expect_code(
        &err,
        1000,
        ErrorClass::NotFound,
        "SYNO.Virtualization.API.Task.Info.get",
    );
    let err = vmm.get("no-such-guest").await.expect_err("guest");
    expect_code(
        &err,
        401,
        ErrorClass::InvalidRequest,
        "SYNO.Virtualization.API.Guest.get",
    );

    // The host has 16 GiB; a 32 GiB guest cannot start.
    let big = make_guest(&client, "big", 32768).await;
    let err = vmm.power_on(&big).await.expect_err("memory");
    expect_code(
        &err,
        903,
        ErrorClass::LimitReached,
        "SYNO.Virtualization.API.Guest.Action.poweron",
    );
}

#[tokio::test]
async fn replication_refusals() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let err = client
        .replication()
        .sync("no-such-plan", &SyncOptions::default())
        .await
        .expect_err("plan");
    expect_code(&err, 120, ErrorClass::InvalidRequest, "SYNO.DR.Plan.sync");
    let plan = client.replication().list().await.expect("list")[0]
        .plan_id
        .clone();
    let err = client
        .replication()
        .sync(
            &plan,
            &SyncOptions {
                send_encrypted: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect_err("encryption must match the plan");
    assert_eq!(err.vendor_code(), Some(120));
    // A sync while one runs is refused, as is one DSM's can_do forbids.
    let opts = SyncOptions {
        send_encrypted: Some(false),
        ..Default::default()
    };
    client
        .replication()
        .sync(&plan, &opts)
        .await
        .expect("first sync");
    let err = client
        .replication()
        .sync(&plan, &opts)
        .await
        .expect_err("one sync at a time");
    assert_eq!(err.vendor_code(), Some(100));
    sim.state().advance_plan_clock(3600);
    sim.state().update_plan(&plan, |p| p.refuse_sync = true);
    let err = client
        .replication()
        .sync(&plan, &opts)
        .await
        .expect_err("can_sync is false");
    assert_eq!(err.vendor_code(), Some(100));
}

#[tokio::test]
async fn injected_codes_keep_their_number_and_message() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.LUN.list",
        1,
        FaultAction::ErrorCode(18990999),
    ));
    let err = client.luns().list().await.expect_err("unknown code");
    expect_code(
        &err,
        18990999,
        ErrorClass::Other,
        "SYNO.Core.ISCSI.LUN.list",
    );
    assert!(err.to_string().contains("unknown DSM error code"), "{err}");

    sim.faults().arm(FaultRule::once(
        "SYNO.Virtualization.API.Guest.list",
        1,
        FaultAction::ErrorCode(600),
    ));
    let err = client.vmm().list().await.expect_err("cluster");
    expect_code(
        &err,
        600,
        ErrorClass::Busy,
        "SYNO.Virtualization.API.Guest.list",
    );
    assert!(err.to_string().contains("cluster is not ready"), "{err}");

    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.LUN.create",
        1,
        FaultAction::ErrorCode(OUT_OF_SPACE),
    ));
    let err = client
        .luns()
        .create(&lun("x", LunType::Blun, 1 << 30))
        .await
        .expect_err("injected");
    assert_eq!(err.class(), ErrorClass::LimitReached);
    assert!(err.to_string().contains("not enough free space"), "{err}");
    assert!(!err.outcome_unknown(), "DSM refused before acting");
}
