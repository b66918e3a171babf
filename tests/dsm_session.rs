//! Session and transport behaviour of the DSM client against the simulator:
//! one shared login, re-login on every expiry code, read retries, no blind
//! resend of writes, array restarts, and both TLS verification paths.

mod dsm_support;

use std::time::Duration;

use array_operator::array::error::{ArrayError, ErrorClass};
use array_operator::array::synology::lun::LunType;
use array_operator::array::synology::{
    CreateLun, CreateTarget, Credentials, DevAttribs, DsmClient, DsmConfig, SetLun, TargetAuth,
};
use array_operator::sim::dsm::{self, DsmSimConfig, TlsMode};
use array_operator::sim::faults::{FaultAction, FaultRule};

const LOGIN: &str = "SYNO.API.Auth.login";
const LUN_LIST: &str = "SYNO.Core.ISCSI.LUN.list";
const LUN_CREATE: &str = "SYNO.Core.ISCSI.LUN.create";

fn lun(name: &str) -> CreateLun {
    CreateLun {
        name: name.into(),
        lun_type: LunType::Blun,
        location: "/volume1".into(),
        size: 1 << 30,
        description: None,
        dev_attribs: DevAttribs::default(),
    }
}

#[tokio::test]
async fn twenty_concurrent_callers_share_one_login() {
    let sim = dsm_support::sim().await;
    // Slow logins widen the window in which a storm would happen.
    sim.faults()
        .set_operation_latency(LOGIN, Duration::from_millis(100));
    let client = dsm_support::client(&sim);
    let calls = (0..20).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.luns().list().await })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("join").expect("list");
    }
    assert_eq!(sim.calls().count(LOGIN), 1);
    assert_eq!(sim.calls().count(LUN_LIST), 20);
    assert_eq!(client.login_count(), 1);
    // API discovery is cached as well.
    assert_eq!(sim.calls().count("SYNO.API.Info.query"), 1);
}

#[tokio::test]
async fn relogs_in_once_and_retries_once_on_each_session_code() {
    for code in [105, 106, 107, 119] {
        let sim = dsm_support::sim().await;
        let client = dsm_support::client(&sim);
        client.luns().list().await.expect("warm up");
        sim.faults()
            .arm(FaultRule::once(LUN_CREATE, 1, FaultAction::ErrorCode(code)));
        let created = client.luns().create(&lun("after-expiry")).await;
        assert!(created.is_ok(), "code {code}: {created:?}");
        assert_eq!(sim.calls().count(LOGIN), 2, "code {code}: one re-login");
        assert_eq!(sim.calls().count(LUN_CREATE), 2, "code {code}: one retry");
        assert_eq!(sim.state().luns().len(), 1, "code {code}");
    }
}

#[tokio::test]
async fn an_expired_session_on_the_array_is_recovered() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client.luns().list().await.expect("warm up");
    sim.faults()
        .arm(FaultRule::once(LUN_LIST, 1, FaultAction::ExpireSession));
    client.luns().list().await.expect("after expiry");
    assert_eq!(sim.calls().count(LOGIN), 2);
    // The old sid is really gone: an admin logging everyone out is handled too.
    sim.state().expire_all_sessions();
    client.targets().list().await.expect("after logout-all");
    assert_eq!(sim.calls().count(LOGIN), 3);
}

#[tokio::test]
async fn a_second_expiry_in_a_row_is_reported_not_looped() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client.luns().list().await.expect("warm up");
    sim.faults()
        .arm(FaultRule::always(LUN_LIST, FaultAction::ErrorCode(119)));
    let err = client.luns().list().await.expect_err("keeps failing");
    assert_eq!(err.class(), ErrorClass::SessionExpired);
    assert_eq!(err.vendor_code(), Some(119));
    assert_eq!(sim.calls().count(LUN_LIST), 3, "first try + one retry");
    assert_eq!(sim.calls().count(LOGIN), 2);
}

#[tokio::test]
async fn concurrent_expiry_causes_one_relogin() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client.luns().list().await.expect("warm up");
    sim.state().expire_all_sessions();
    sim.faults()
        .set_operation_latency(LOGIN, Duration::from_millis(100));
    let calls = (0..10).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.luns().list().await })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("join").expect("list");
    }
    assert_eq!(
        sim.calls().count(LOGIN),
        2,
        "one login, one shared re-login"
    );
}

#[tokio::test]
async fn wrong_password_is_unauthorized_and_never_shows_the_password() {
    let sim = dsm_support::sim().await;
    let mut cfg = dsm_support::config(&sim);
    cfg.credentials = Credentials::new("admin", "wrong-Pa55word!");
    let client = DsmClient::new(cfg.clone()).expect("client");
    let err = client.luns().list().await.expect_err("refused");
    assert_eq!(err.class(), ErrorClass::Unauthorized);
    assert_eq!(err.vendor_code(), Some(400));
    assert_eq!(err.api_call(), "SYNO.API.Auth.login");
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{cfg:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains("wrong-Pa55word!"), "{text}");
    }
    // The sid never leaks either.
    let good = dsm_support::client(&sim);
    good.luns().list().await.expect("list");
    let sids = sim.state().session_ids();
    assert_eq!(sids.len(), 1);
    let debug = format!("{good:?}");
    assert!(!debug.contains(&sids[0]), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[tokio::test]
async fn reads_are_retried_with_backoff_after_5xx_and_drops() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client.luns().list().await.expect("warm up");
    sim.faults()
        .arm(FaultRule::once(LUN_LIST, 1, FaultAction::HttpStatus(503)));
    sim.faults()
        .arm(FaultRule::once(LUN_LIST, 2, FaultAction::DropBeforeApply));
    client.luns().list().await.expect("third attempt succeeds");
    assert_eq!(sim.calls().count(LUN_LIST), 4);

    sim.faults()
        .arm(FaultRule::always(LUN_LIST, FaultAction::HttpStatus(500)));
    let err = client.luns().list().await.expect_err("gives up");
    assert_eq!(err.class(), ErrorClass::Unreachable);
    assert!(!err.outcome_unknown(), "a read changes nothing");
}

#[tokio::test]
async fn a_lost_create_answer_is_looked_up_not_resent() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    sim.faults()
        .arm(FaultRule::once(LUN_CREATE, 1, FaultAction::DropAfterApply));
    let created = client
        .luns()
        .create(&lun("lost-answer"))
        .await
        .expect("create");
    assert_eq!(sim.calls().count(LUN_CREATE), 1, "not resent");
    let luns = sim.state().luns();
    assert_eq!(luns.len(), 1);
    assert_eq!(luns[0].uuid, created.uuid);

    // Dropped before it was applied: the look-up finds nothing, so the
    // create is sent once more.
    sim.faults()
        .arm(FaultRule::once(LUN_CREATE, 1, FaultAction::DropBeforeApply));
    client
        .luns()
        .create(&lun("never-applied"))
        .await
        .expect("create");
    assert_eq!(sim.calls().count(LUN_CREATE), 3);
    assert_eq!(sim.state().luns().len(), 2);

    // Same for targets.
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.Target.create",
        1,
        FaultAction::DropAfterApply,
    ));
    let tid = client
        .targets()
        .create(&CreateTarget {
            name: "t-lost".into(),
            iqn: "iqn.2000-01.com.synology:nas01.t-lost".into(),
            auth: TargetAuth::None,
            max_sessions: None,
        })
        .await
        .expect("target");
    assert_eq!(sim.calls().count("SYNO.Core.ISCSI.Target.create"), 1);
    assert_eq!(sim.state().targets()[0].target_id, tid);
}

#[tokio::test]
async fn when_the_look_up_fails_too_the_create_stays_unknown_and_is_not_resent() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    client.luns().list().await.expect("warm up");
    sim.faults()
        .arm(FaultRule::once(LUN_CREATE, 1, FaultAction::DropAfterApply));
    sim.faults()
        .arm(FaultRule::always(LUN_LIST, FaultAction::HttpStatus(503)));
    let err = client
        .luns()
        .create(&lun("unknown-outcome"))
        .await
        .expect_err("cannot tell");
    assert!(err.outcome_unknown(), "{err}");
    assert_eq!(err.api_call(), LUN_CREATE);
    assert_eq!(sim.calls().count(LUN_CREATE), 1, "never resent blindly");
    assert_eq!(sim.state().luns().len(), 1, "it was in fact applied");
}

#[tokio::test]
async fn a_failed_write_is_never_resent_and_reports_an_unknown_outcome() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let created = client.luns().create(&lun("w")).await.expect("create");
    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.LUN.set",
        1,
        FaultAction::DropAfterApply,
    ));
    let err = client
        .luns()
        .set(
            &created.uuid,
            &SetLun {
                new_size: Some(2 << 30),
                ..Default::default()
            },
        )
        .await
        .expect_err("answer lost");
    assert!(err.outcome_unknown());
    assert_eq!(err.class(), ErrorClass::Unreachable);
    assert_eq!(err.api_call(), "SYNO.Core.ISCSI.LUN.set");
    assert_eq!(sim.calls().count("SYNO.Core.ISCSI.LUN.set"), 1);
    assert_eq!(sim.state().luns()[0].size, 2 << 30, "it was applied");

    sim.faults().arm(FaultRule::once(
        "SYNO.Core.ISCSI.LUN.take_snapshot",
        1,
        FaultAction::HttpStatus(502),
    ));
    let err = client
        .snapshots()
        .take(&created.uuid, &Default::default())
        .await
        .expect_err("5xx");
    assert!(err.outcome_unknown());
    assert_eq!(sim.calls().count("SYNO.Core.ISCSI.LUN.take_snapshot"), 1);
}

#[tokio::test]
async fn the_client_survives_an_array_restart_on_a_new_address() {
    let mut sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let created = client.luns().create(&lun("persist")).await.expect("create");
    let old = sim.base_url();
    sim.stop().await;
    let err = client.luns().list().await.expect_err("array down");
    assert_eq!(err.class(), ErrorClass::Unreachable);

    let addr = old.trim_start_matches("https://").to_string();
    sim.restart(&addr).await.expect("restart same address");
    // Same state, sessions gone: the client re-logs in by itself.
    let luns = client.luns().list().await.expect("after restart");
    assert_eq!(luns[0].uuid, created.uuid);
    assert_eq!(sim.calls().count(LOGIN), 2);

    sim.restart("127.0.0.1:0")
        .await
        .expect("restart new address");
    assert_ne!(sim.base_url(), old);
    let moved = DsmClient::new(dsm_support::config(&sim)).expect("client");
    assert_eq!(moved.luns().list().await.expect("list").len(), 1);
}

#[tokio::test]
async fn out_of_band_changes_are_seen_by_the_client() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let a = client.luns().create(&lun("oob")).await.expect("create");
    let tid = client
        .targets()
        .create(&CreateTarget {
            name: "oob".into(),
            iqn: "iqn.2000-01.com.synology:nas01.oob".into(),
            auth: TargetAuth::None,
            max_sessions: None,
        })
        .await
        .expect("target");
    client
        .targets()
        .map_lun(tid, &[&a.uuid])
        .await
        .expect("map");
    assert!(sim.state().drop_mapping(tid, &a.uuid));
    assert!(sim.state().resize_lun(&a.uuid, 5 << 30));
    assert!(sim.state().edit_target(tid, |t| t.enabled = false));
    let got = client.luns().get(&a.uuid).await.expect("get");
    assert_eq!(got.size, 5 << 30);
    assert_eq!(got.is_mapped, Some(false));
    assert!(!client.targets().get(tid).await.expect("get").is_enabled);
    assert!(sim.state().remove_lun(&a.uuid));
    let err = client.luns().get(&a.uuid).await.expect_err("gone");
    assert_eq!(err.class(), ErrorClass::NotFound);
}

#[tokio::test]
async fn tls_ca_bundle_and_insecure_skip_verify_paths() {
    // A CA-signed simulator: verified through its CA, or not verified at all.
    let sim = dsm_support::sim().await;
    dsm_support::client(&sim)
        .luns()
        .list()
        .await
        .expect("CA bundle");
    let mut insecure = dsm_support::config(&sim);
    insecure.transport = dsm_support::transport(None, true);
    DsmClient::new(insecure)
        .expect("client")
        .luns()
        .list()
        .await
        .expect("insecureSkipVerify");
    // Public roots do not know the simulator's CA.
    let mut public = dsm_support::config(&sim);
    public.transport = dsm_support::transport(None, false);
    public.read_attempts = 1;
    let err = DsmClient::new(public)
        .expect("client")
        .luns()
        .list()
        .await
        .expect_err("untrusted");
    assert_eq!(err.class(), ErrorClass::Unreachable);

    // A self-signed leaf: rustls refuses it even when pinned as the CA.
    let own = dsm::start(DsmSimConfig {
        tls: TlsMode::SelfSigned,
        ..DsmSimConfig::default()
    })
    .await
    .expect("self-signed sim");
    let mut pinned = dsm_support::config(&own);
    pinned.read_attempts = 1;
    let err = DsmClient::new(pinned)
        .expect("client")
        .luns()
        .list()
        .await
        .expect_err("CaUsedAsEndEntity");
    assert!(err.to_string().contains("CaUsedAsEndEntity"), "{err}");
    let mut skip = dsm_support::config(&own);
    skip.transport = dsm_support::transport(None, true);
    DsmClient::new(skip)
        .expect("client")
        .luns()
        .list()
        .await
        .expect("insecureSkipVerify accepts it");
}

#[tokio::test]
async fn requests_per_array_are_limited() {
    let sim = dsm_support::sim().await;
    let mut cfg: DsmConfig = dsm_support::config(&sim);
    cfg.transport.max_concurrent_requests = 2;
    let client = DsmClient::new(cfg).expect("client");
    client.luns().list().await.expect("warm up");
    sim.faults()
        .set_operation_latency(LUN_LIST, Duration::from_millis(200));
    sim.reset_max_in_flight();
    let calls = (0..6).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.luns().list().await })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("join").expect("list");
    }
    assert_eq!(sim.calls().count(LUN_LIST), 7);
    assert_eq!(sim.max_in_flight(), 2, "the per-array limit held");
}

#[tokio::test]
async fn an_api_the_dsm_does_not_offer_is_unsupported_without_a_call() {
    let mut state = array_operator::sim::dsm::seed::seed();
    state.missing_apis = vec!["SYNO.Virtualization.".into()];
    let sim = dsm::start(DsmSimConfig {
        state,
        ..DsmSimConfig::default()
    })
    .await
    .expect("sim without VMM");
    let client = dsm_support::client(&sim);
    let err = client.vmm().list().await.expect_err("no VMM");
    assert_eq!(err.class(), ErrorClass::Unsupported);
    assert_eq!(err.api_call(), "SYNO.Virtualization.API.Guest.list");
    assert!(err.to_string().contains("is not in SYNO.API.Info"), "{err}");
    assert_eq!(sim.calls().count("SYNO.Virtualization.API.Guest.list"), 0);
    // Asked anyway, the DSM says the API does not exist.
    let sid = dsm_support::raw_login(&sim).await;
    let raw = dsm_support::raw_get(
        &sim,
        &[
            ("api", "SYNO.Virtualization.API.Guest"),
            ("version", "1"),
            ("method", "list"),
            ("_sid", &sid),
        ],
    )
    .await;
    assert_eq!(raw["error"]["code"], 102);
    // The other packages work.
    client.luns().list().await.expect("iSCSI is there");
}
