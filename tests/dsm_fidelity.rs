//! The DSM client reports model and version (what `kubectl get sarr` shows
//! as VERSION), never takes a code-less 404 for "already gone", and refuses
//! an oversized answer.

mod dsm_support;

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::error::{ArrayError, ErrorClass};
use array_operator::array::synology::{DsmError, MAX_BODY_BYTES};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::model::{Placement, SecretString};
use array_operator::reconcile::lun::{DesiredLun, LunOp};
use array_operator::reconcile::target::DesiredTarget;
use array_operator::sim::dsm::seed::{MODEL, SERIAL, VERSION_STRING};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim};
use array_operator::sim::faults::{FaultAction, FaultRule};

const GIB: u64 = 1 << 30;

fn config(sim: &DsmSim) -> BackendConfig {
    BackendConfig {
        vendor: Vendor::Synology,
        endpoint: sim.base_url(),
        secondary_endpoint: None,
        credentials: Credentials::UserPassword {
            username: DEFAULT_USERNAME.into(),
            password: SecretString::new(DEFAULT_PASSWORD),
        },
        transport: dsm_support::transport(sim.ca_pem(), false),
        ngx_owner: None,
        resize_mode: ResizeMode::Auto,
        session_name: "array-operator-test".into(),
    }
}

fn desired_lun(name: &str) -> DesiredLun {
    DesiredLun {
        name: name.into(),
        size_bytes: GIB,
        placement: Placement::Volume("/volume1".into()),
        thin: true,
        description: None,
        settings: Default::default(),
        source: None,
        fixed_settings: Vec::new(),
        type_word: None,
    }
}

#[tokio::test]
async fn info_reports_model_version_and_serial() {
    let sim = dsm_support::sim().await;
    let backend = Backend::connect(config(&sim)).await.expect("connect");
    let info = backend.info().await.expect("info");
    assert_eq!(info.model.as_deref(), Some(MODEL));
    assert_eq!(info.version.as_deref(), Some(VERSION_STRING));
    assert_eq!(info.serial.as_deref(), Some(SERIAL));
    assert_eq!(sim.calls().count("SYNO.DSM.Info.getinfo"), 1);

    // A DSM that does not list SYNO.DSM.Info: SYNO.Core.System answers.
    sim.state()
        .update(|s| s.missing_apis.push("SYNO.DSM.Info".into()));
    let client = dsm_support::client(&sim);
    let info = client.dsm_info().await.expect("fallback");
    assert_eq!(info.version.as_deref(), Some(VERSION_STRING));
    assert_eq!(sim.calls().count("SYNO.Core.System.info"), 1);
}

#[tokio::test]
async fn the_simulator_refuses_what_dsm_refuses_for_dsm_info() {
    let sim = dsm_support::sim().await;
    let http = dsm_support::raw_http(&sim);
    let sid = dsm_support::raw_login(&sim).await;
    let ask = |version: &str, method: &str, sid: Option<&str>| {
        let mut form = vec![
            ("api", "SYNO.DSM.Info".to_string()),
            ("version", version.to_string()),
            ("method", method.to_string()),
        ];
        if let Some(s) = sid {
            form.push(("_sid", s.to_string()));
        }
        let req = http
            .post(format!("{}/webapi/entry.cgi", sim.base_url()))
            .form(&form);
        async move {
            req.send()
                .await
                .expect("send")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let ok = ask("2", "getinfo", Some(&sid)).await;
    assert_eq!(ok["data"]["version_string"], VERSION_STRING, "{ok}");
    for (version, method, sid, code) in [
        ("3", "getinfo", Some(sid.as_str()), 104),
        ("1", "set", Some(sid.as_str()), 103),
        ("1", "getinfo", None, 119),
    ] {
        let v = ask(version, method, sid).await;
        assert_eq!(v["success"], false, "{v}");
        assert_eq!(v["error"]["code"], code, "v{version} {method}: {v}");
    }
}

#[tokio::test]
async fn a_codeless_404_on_delete_or_unmap_is_not_success() {
    let sim = dsm_support::sim().await;
    let backend = Backend::connect(config(&sim)).await.expect("connect");
    let lun = backend
        .create_lun(&desired_lun("keep404"))
        .await
        .map(|c| c.id)
        .expect("lun");
    let target = backend
        .create_target(&DesiredTarget {
            name: "tgt404".into(),
            enabled: true,
            settings: Default::default(),
            chap: None,
            initiators: Vec::new(),
            luns: Vec::new(),
        })
        .await
        .map(|c| c.id)
        .expect("target");
    backend
        .update_target(
            &target,
            &array_operator::reconcile::target::TargetOp::Map {
                lun_ids: vec![lun.clone()],
            },
        )
        .await
        .expect("map");
    for op in [
        "SYNO.Core.ISCSI.LUN.delete",
        "SYNO.Core.ISCSI.LUN.unmap_target",
        "SYNO.Core.ISCSI.Target.unmap_lun",
        "SYNO.Core.ISCSI.Target.delete",
    ] {
        sim.faults()
            .arm(FaultRule::always(op, FaultAction::HttpStatus(404)));
    }
    let unmap = backend
        .update_lun(
            &lun,
            &LunOp::Unmap {
                target_id: target.clone(),
            },
        )
        .await;
    let results = [
        ("unmap", unmap),
        ("delete target", backend.delete_target(&target).await),
        ("delete LUN", backend.delete_lun(&lun).await),
    ];
    for (what, result) in results {
        let err = result.expect_err(what);
        assert_ne!(err.class, ErrorClass::NotFound, "{what}: {err}");
        assert!(err.message.contains("404"), "{what}: {err}");
    }
    assert!(sim.state().lun_by_name("keep404").is_some());
    assert_eq!(sim.state().targets().len(), 1);
    assert_eq!(sim.state().targets()[0].mapped.len(), 1);
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let backend = Backend::connect(config(&sim)).await.expect("connect");
    let uuid = backend
        .create_lun(&desired_lun("huge"))
        .await
        .map(|c| c.id)
        .expect("lun");
    sim.state().update(|s| {
        if let Some(l) = s.luns.iter_mut().find(|l| l.uuid == uuid) {
            l.description = "x".repeat(MAX_BODY_BYTES + 1);
        }
    });
    let err = client.luns().list().await.expect_err("too large");
    assert!(matches!(err, DsmError::TooLarge { .. }), "{err}");
    assert_eq!(err.api_call(), "SYNO.Core.ISCSI.LUN.list");
    assert!(
        err.to_string().contains(&MAX_BODY_BYTES.to_string()),
        "{err}"
    );
    sim.state().update(|s| {
        if let Some(l) = s.luns.iter_mut().find(|l| l.uuid == uuid) {
            l.description.clear();
        }
    });
    assert_eq!(client.luns().list().await.expect("list").len(), 1);
}

/// What `kubectl get sarr` prints as VERSION: the CRD's printer column read
/// from the status the StorageArray controller writes from `info()`.
#[tokio::test]
async fn the_version_column_shows_the_dsm_version() {
    use array_operator::crd::storage_array::{StorageArray, StorageArrayStatus};
    use kube::CustomResourceExt;

    let sim = dsm_support::sim().await;
    let backend = Backend::connect(config(&sim)).await.expect("connect");
    let info = backend.info().await.expect("info");
    let status = StorageArrayStatus {
        at_array: Some(array_operator::controller::storage_array::observed(&info)),
        ..Default::default()
    };
    let object = serde_json::json!({ "status": status });

    let crd = serde_json::to_value(StorageArray::crd()).expect("crd");
    let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .clone();
    let path = columns
        .iter()
        .find(|c| c["name"] == "VERSION")
        .and_then(|c| c["jsonPath"].as_str())
        .expect("a VERSION column")
        .to_string();
    // A plain `.a.b.c` path: walk it.
    let shown = path
        .trim_start_matches('.')
        .split('.')
        .fold(&object, |v, key| &v[key]);
    assert_eq!(shown, VERSION_STRING, "column {path}");
}

/// What democratic-csi's synology driver sends
/// (`src/driver/controller-synology/http/index.js`), written out by hand:
/// each request gets the real answer or the documented error, never a
/// silent success.
#[tokio::test]
async fn democratic_csi_requests_get_real_answers_or_documented_errors() {
    let sim = dsm_support::sim().await;
    let sid = dsm_support::raw_login(&sim).await;
    let backend = Backend::connect(config(&sim)).await.expect("connect");
    let uuid = backend
        .create_lun(&desired_lun("dcsi"))
        .await
        .map(|c| c.id)
        .expect("lun");
    let quoted = format!("\"{uuid}\"");
    let uuids = format!("[\"{uuid}\"]");

    // APIs this DSM does not serve: 102; a method it does not serve: 103.
    for (api, method, extra, code) in [
        (
            "SYNO.Core.Storage.Volume",
            "get",
            ("volume_path", "/volume1"),
            102,
        ),
        (
            "SYNO.Core.Storage.iSCSILUN",
            "load_snapshot",
            ("lid", "1"),
            102,
        ),
        (
            "SYNO.Core.ISCSI.LUN",
            "clone_snapshot",
            ("src_lun_uuid", quoted.as_str()),
            103,
        ),
    ] {
        let v = dsm_support::raw_get(
            &sim,
            &[
                ("api", api),
                ("version", "1"),
                ("method", method),
                extra,
                ("_sid", &sid),
            ],
        )
        .await;
        assert_eq!(v["success"], false, "{api}.{method}: {v}");
        assert_eq!(v["error"]["code"], code, "{api}.{method}: {v}");
    }

    // Its LUN delete (uuid "" and a uuids list): the real delete.
    let v = dsm_support::raw_get(
        &sim,
        &[
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("version", "1"),
            ("method", "delete"),
            ("uuid", "\"\""),
            ("uuids", &uuids),
            ("is_soft_feas_ignored", "true"),
            ("_sid", &sid),
        ],
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    assert!(sim.state().lun_by_name("dcsi").is_none());
    // Again: the documented "no such LUN", not a second success.
    let v = dsm_support::raw_get(
        &sim,
        &[
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("version", "1"),
            ("method", "delete"),
            ("uuid", "\"\""),
            ("uuids", &uuids),
            ("_sid", &sid),
        ],
    )
    .await;
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(
        v["error"]["code"],
        array_operator::array::synology::error::NO_SUCH_LUN,
        "{v}"
    );
}

#[tokio::test]
async fn one_malformed_lun_record_is_reported_alone() {
    let sim = dsm_support::sim().await;
    let client = dsm_support::client(&sim);
    let backend = Backend::connect(config(&sim)).await.expect("connect");
    let mut uuids = Vec::new();
    for name in ["ma", "mb", "mc"] {
        uuids.push(
            backend
                .create_lun(&desired_lun(name))
                .await
                .map(|c| c.id)
                .expect("lun"),
        );
    }
    sim.state().update(|s| {
        s.tampered
            .entry(uuids[1].clone())
            .or_default()
            .insert("size".into(), serde_json::json!({"not": "a size"}));
    });
    let listing = client
        .luns()
        .list_listing()
        .await
        .expect("the list answers");
    assert_eq!(listing.items.len(), 2);
    assert_eq!(listing.malformed.len(), 1);
    assert_eq!(listing.malformed[0].id.as_deref(), Some(uuids[1].as_str()));
    let text = listing.malformed[0].error.to_string();
    assert!(text.contains("SYNO.Core.ISCSI.LUN.list"), "{text}");
    assert!(text.contains(&uuids[1]), "{text}");
    let err = client.luns().list().await.expect_err("strict");
    assert!(err.to_string().contains(&uuids[1]), "{err}");
}
