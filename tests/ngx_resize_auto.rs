//! `resizeMode: Auto` against both ways an NGX array can read a resize
//! `size` (the new total, as the document says; the increment, as the SDK
//! sends), in both dialects, with a fault at every step of the exchange.
//! Whatever the order of answers, the LUN never ends up larger than asked,
//! and once the faults stop it reaches exactly the size asked.

#[path = "ngx_support/mod.rs"]
mod support;

use array_operator::array::ngxstorage::{Dialect, Endpoint, NgxClient, ResizeMode};
use array_operator::sim::faults::{FaultAction, FaultRule};
use array_operator::sim::ngx::NgxSim;
use support::{GIB, MIB, config, lun, sim};

/// (current, target) pairs covering the three ways a total-reading array
/// takes the increment: as a shrink (refused), as the same size
/// (unchanged), as a smaller growth (the LUN becomes the increment).
const SIZES: [(u64, u64); 3] = [
    (4 * GIB, 5 * GIB),
    (2 * GIB, 4 * GIB),
    (GIB, 3 * GIB + 512 * MIB),
];

fn faults() -> Vec<(&'static str, Endpoint, u64, FaultAction)> {
    let mut all = vec![("none", Endpoint::LunModify, 0, FaultAction::ErrorCode(0))];
    for (nth, what) in [(1, "first PATCH"), (2, "second PATCH")] {
        for action in [
            FaultAction::DropBeforeApply,
            FaultAction::DropAfterApply,
            FaultAction::HttpStatus(500),
            FaultAction::ErrorCode(9999),
        ] {
            all.push((what, Endpoint::LunModify, nth, action));
        }
    }
    // The read-back after the first PATCH (the first GET is the read
    // before it).
    all.push((
        "read-back",
        Endpoint::LunDetail,
        2,
        FaultAction::HttpStatus(500),
    ));
    all.push((
        "read-back",
        Endpoint::LunDetail,
        2,
        FaultAction::ErrorCode(9999),
    ));
    all
}

async fn auto_client(sim: &NgxSim) -> NgxClient {
    let mut c = config(sim);
    c.resize_mode = ResizeMode::Auto;
    NgxClient::connect(c).await.expect("connect")
}

async fn never_larger_than_asked(dialect: Dialect, array_adds: bool) {
    let sim = sim(dialect).await;
    sim.state().set_resize_delta(array_adds);
    let expected_mode = if array_adds {
        ResizeMode::Delta
    } else {
        ResizeMode::Absolute
    };
    let mut n = 0;
    for (current, target) in SIZES {
        for (what, endpoint, nth, action) in faults() {
            n += 1;
            // A fresh client each time, so every case starts unlearned.
            let client = auto_client(&sim).await;
            let made = client
                .create_lun(&lun(&format!("auto{n}"), current, true))
                .await
                .expect("create");
            sim.calls().clear();
            if nth > 0 {
                sim.faults()
                    .arm(FaultRule::once(sim.op(endpoint), nth, action.clone()));
            }
            let case = format!(
                "{dialect}, array {} , {current} -> {target} bytes, fault {what} {action:?}",
                if array_adds { "adds" } else { "sets" }
            );
            let mut reached = false;
            for _attempt in 0..4 {
                let result = client.resize_lun(&made.id, target).await;
                let size = sim.state().lun(&made.id).expect("lun").size_bytes;
                assert!(
                    size <= target,
                    "{case}: the LUN is {size} bytes, more than the {target} asked ({result:?})"
                );
                if let Ok(l) = result {
                    assert_eq!((l.size_bytes, size), (target, target), "{case}");
                    reached = true;
                    break;
                }
            }
            sim.faults().clear();
            assert!(reached, "{case}: never reached the size asked");
            if nth == 0 {
                let patches = sim.count(Endpoint::LunModify);
                assert_eq!(patches, if array_adds { 1 } else { 2 }, "{case}");
            }
            // Learned only from evidence: a grow whose answer was lost and
            // whose retry found the size already reached teaches nothing,
            // but nothing ever teaches the wrong reading.
            let learned = client.effective_resize_mode();
            assert!(
                learned == Some(expected_mode) || (nth > 0 && learned.is_none()),
                "{case}: learned {learned:?}"
            );
        }
    }
}

#[tokio::test]
async fn document_dialect_array_that_sets() {
    never_larger_than_asked(Dialect::Document, false).await;
}

#[tokio::test]
async fn document_dialect_array_that_adds() {
    never_larger_than_asked(Dialect::Document, true).await;
}

#[tokio::test]
async fn sdk_dialect_array_that_sets() {
    never_larger_than_asked(Dialect::Sdk, false).await;
}

#[tokio::test]
async fn sdk_dialect_array_that_adds() {
    never_larger_than_asked(Dialect::Sdk, true).await;
}

#[tokio::test]
async fn the_first_grow_sends_the_increment_then_the_total_only_on_evidence() {
    let sim = sim(Dialect::Document).await;
    let client = auto_client(&sim).await;
    assert_eq!(client.effective_resize_mode(), None, "nothing learned yet");
    let made = client
        .create_lun(&lun("firstgrow", 2 * GIB, true))
        .await
        .expect("create");
    sim.calls().clear();
    client.resize_lun(&made.id, 4 * GIB).await.expect("grow");
    let sizes: Vec<Option<u64>> = sim
        .calls()
        .calls()
        .into_iter()
        .filter(|c| c.operation == sim.op(Endpoint::LunModify))
        .map(|c| c.body.and_then(|b| b["size"].as_u64()))
        .collect();
    // 2 GiB increment first (the array read it as "2 GiB": unchanged), then
    // the 4 GiB total.
    assert_eq!(sizes, vec![Some(2), Some(4)]);
    assert_eq!(client.effective_resize_mode(), Some(ResizeMode::Absolute));
}

#[tokio::test]
async fn an_unexplained_answer_stops_without_a_second_resize() {
    // The array acknowledges the increment (code 0, HTTP 200) but the LUN
    // read back is unchanged although the increment is larger than the LUN:
    // neither reading explains that, so Auto sends nothing more.
    let sim = sim(Dialect::Sdk).await;
    let client = auto_client(&sim).await;
    let made = client
        .create_lun(&lun("oddsize", GIB, true))
        .await
        .expect("create");
    sim.calls().clear();
    sim.faults().arm(FaultRule::once(
        sim.op(Endpoint::LunModify),
        1,
        FaultAction::ErrorCode(0),
    ));
    let err = client
        .resize_lun(&made.id, 3 * GIB + 512 * MIB)
        .await
        .expect_err("unexplained");
    let text = err.to_string();
    assert!(text.contains("resize in Auto mode"), "{text}");
    assert!(text.contains("resizeMode"), "{text}");
    assert_eq!(sim.count(Endpoint::LunModify), 1);
    assert_eq!(sim.state().lun(&made.id).expect("lun").size_bytes, GIB);
    assert_eq!(client.effective_resize_mode(), None);
}

/// Through the vendor-neutral backend, as the engine and the StorageArray
/// controller use it: the default mode is `Auto`, and what a grow taught
/// is in `info().resize_mode`, which the controller writes to
/// `status.atArray.resizeMode`.
#[tokio::test]
async fn the_backend_reports_what_auto_learned() {
    use array_operator::array::backend::{Backend, BackendConfig, Credentials};
    use array_operator::crd::storage_array::{self, Vendor};
    use array_operator::model::{Placement, SecretString};
    use array_operator::reconcile::lun::{DesiredLun, LunOp};

    for (dialect, adds, learned) in [
        (Dialect::Document, false, "Absolute"),
        (Dialect::Sdk, true, "Delta"),
    ] {
        let sim = sim(dialect).await;
        sim.state().set_resize_delta(adds);
        let backend = Backend::connect(BackendConfig {
            vendor: Vendor::NgxStorage,
            endpoint: sim.base_url(),
            secondary_endpoint: None,
            credentials: Credentials::Token(SecretString::new(support::TOKEN)),
            transport: config(&sim).transport,
            ngx_owner: Some(sim.owners()[0].clone()),
            resize_mode: storage_array::ResizeMode::default(),
            session_name: "resize-auto-test".into(),
        })
        .await
        .expect("connect");
        assert_eq!(backend.info().await.expect("info").resize_mode, None);
        let id = backend
            .create_lun(&DesiredLun {
                name: "viaback".into(),
                size_bytes: GIB,
                placement: Placement::Pool("pool1".into()),
                thin: true,
                description: None,
                settings: Default::default(),
                source: None,
                fixed_settings: Vec::new(),
                type_word: None,
            })
            .await
            .expect("create")
            .id;
        backend
            .update_lun(
                &id,
                &LunOp::Grow {
                    from_bytes: GIB,
                    to_bytes: 2 * GIB,
                },
            )
            .await
            .expect("grow");
        assert_eq!(sim.state().lun(&id).expect("lun").size_bytes, 2 * GIB);
        let info = backend.info().await.expect("info");
        assert_eq!(info.resize_mode.as_deref(), Some(learned), "{dialect}");
        let observed = array_operator::controller::storage_array::observed(&info);
        assert_eq!(observed.resize_mode.as_deref(), Some(learned));
    }
}
