//! Every validation rule: the client refuses before sending anything, and the
//! simulator refuses the same body sent raw, naming the field. Plus the 401.

#[path = "ngx_support/mod.rs"]
mod support;

use array_operator::array::error::{ArrayError, ErrorClass};
use array_operator::array::ngxstorage::{
    Chap, Dialect, Endpoint, LunChanges, NgxClient, NgxError, TargetCreate, Token,
};
use array_operator::sim::ngx::NgxSim;
use array_operator::sim::ngx::seed::PORTAL_GROUP_ID;
use serde_json::{Value, json};
use support::{GIB, MIB, TOKEN, client, config, lun, sim};

/// Asserts a refusal before sending that names `field`.
fn refused(result: Result<impl std::fmt::Debug, NgxError>, field: &str) {
    let err = result.expect_err("must be refused");
    assert_eq!(err.class(), ErrorClass::InvalidRequest, "{err}");
    match &err {
        NgxError::Invalid { violation, .. } => assert_eq!(violation.field, field, "{err}"),
        NgxError::Size { .. } => assert_eq!(field, "size", "{err}"),
        other => panic!("expected a refusal before sending, got {other:?}"),
    }
    assert!(err.to_string().contains("refused before sending"), "{err}");
}

both_dialects!(
    the_client_never_sends_a_body_the_tables_reject,
    the_simulator_refuses_what_the_tables_reject
);

async fn the_client_never_sends_a_body_the_tables_reject(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let calls_before = sim.calls().calls().len();
    let vol = "ab12";

    refused(c.create_lun(&lun("bad name", GIB, true)).await, "name");
    refused(c.create_lun(&lun(&"n".repeat(31), GIB, true)).await, "name");
    let mut spec = lun("ok", GIB, true);
    spec.pool = "pool_1".into();
    refused(c.create_lun(&spec).await, "pool_name");
    refused(c.create_lun(&lun("ok", GIB + 1, true)).await, "size");
    refused(c.create_lun(&lun("ok", 0, true)).await, "size");
    refused(c.create_lun(&lun("ok", MIB - 1, true)).await, "size");
    let mut spec = lun("ok", GIB, true);
    spec.blocksize = Some("3k".into());
    refused(c.create_lun(&spec).await, "blocksize");
    let mut spec = lun("ok", GIB, true);
    spec.io_type = Some("random".into());
    refused(c.create_lun(&spec).await, "io_type");
    let mut spec = lun("ok", GIB, true);
    spec.qos_priority = Some(5);
    refused(c.create_lun(&spec).await, "qos_priority");
    refused(
        c.modify_lun(
            vol,
            &LunChanges {
                qos_priority: Some(256),
                ..LunChanges::default()
            },
        )
        .await,
        "qos_priority",
    );
    refused(
        c.modify_lun(
            vol,
            &LunChanges {
                io_type: Some("SEQUENTIAL".into()),
                ..LunChanges::default()
            },
        )
        .await,
        "io_type",
    );
    refused(c.lun("not-hex").await, "id");
    refused(c.lun(&"a".repeat(41)).await, "id");
    refused(c.delete_lun("").await, "id");

    let target = |name: &str, auth: &str, luns: Vec<String>| TargetCreate {
        name: name.into(),
        auth_group_id: auth.into(),
        portal_group_id: PORTAL_GROUP_ID.into(),
        lun_ids: luns,
    };
    refused(c.create_target(&target("t.1", "1", vec![])).await, "name");
    refused(
        c.create_target(&target("t1", "default", vec![])).await,
        "auth_group_id",
    );
    refused(
        c.create_target(&target("t1", "1", vec!["zz".into()])).await,
        "lun_ids",
    );
    refused(
        c.add_target_luns(vol, &["xyz".to_string()]).await,
        "lun_ids",
    );
    refused(c.add_target_luns(vol, &[]).await, "lun_ids");
    refused(c.rename_target(vol, "a b").await, "name");
    refused(
        c.set_target_portal_group(vol, "pg1").await,
        "portal_group_id",
    );

    refused(c.create_auth_group("with_underscore").await, "name");
    refused(c.rename_auth_group(vol, "").await, "name");
    refused(
        c.set_auth_group_chap(
            vol,
            &Chap {
                username: "u".into(),
                password: " ".into(),
            },
        )
        .await,
        "password",
    );
    refused(c.add_auth_group_iqn(vol, "", "alias").await, "iqn");

    refused(c.create_snapshot(vol, "snap 1").await, "name");
    refused(c.create_snapshot("q", "snap1").await, "volume_id");
    refused(c.clone_snapshot(vol, "").await, "name");

    refused(
        c.create_snapshot_schedule(vol, "*/5 * * * *", 10).await,
        "cron_time",
    );
    refused(
        c.create_snapshot_schedule(vol, "0 24 * * *", 10).await,
        "cron_time",
    );
    refused(
        c.create_snapshot_schedule(vol, "0 1 * *", 10).await,
        "cron_time",
    );
    refused(
        c.create_snapshot_schedule(vol, "0 1 * * *", 0).await,
        "keep_max",
    );
    refused(
        c.create_snapshot_schedule(vol, "0 1 * * *", 513).await,
        "keep_max",
    );
    refused(
        c.snapshots_detailed(Some("nothex")).await,
        if d == Dialect::Sdk {
            "volume_id"
        } else {
            "vol_id"
        },
    );

    assert_eq!(
        sim.calls().calls().len(),
        calls_before,
        "nothing reached the array"
    );

    // The size message says what to do.
    let err = c
        .create_lun(&lun("ok", GIB + 1, true))
        .await
        .expect_err("size");
    assert!(err.to_string().contains("whole number of MiB"), "{err}");
}

async fn raw(
    sim: &NgxSim,
    endpoint: Endpoint,
    id: Option<&str>,
    body: Value,
    token: Option<&str>,
) -> (u16, Value) {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(
            array_operator::array::transport::rustls_client_config(&config(sim).transport)
                .expect("tls"),
        )
        .build()
        .expect("client");
    let url = format!(
        "{}/api/v2/{}",
        sim.base_url(),
        endpoint.path_with(sim.dialect(), id)
    );
    let method =
        reqwest::Method::from_bytes(endpoint.method().as_str().as_bytes()).expect("method");
    let mut req = http.request(method, url).body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

async fn the_simulator_refuses_what_the_tables_reject(d: Dialect) {
    let sim = sim(d).await;
    let owner = sim.owners()[0].clone();
    let t = Some(TOKEN);
    let cases: Vec<(Endpoint, Option<&str>, Value, &str)> = vec![
        (
            Endpoint::LunCreate,
            None,
            json!({"name": "a", "size": 1}),
            "pool_name",
        ),
        (
            Endpoint::LunCreate,
            None,
            json!({"pool_name": "pool1", "name": "a/b", "size": 1}),
            "name",
        ),
        (
            Endpoint::LunCreate,
            None,
            json!({"pool_name": "pool1", "name": "a", "size": 0}),
            "size",
        ),
        (
            Endpoint::LunCreate,
            None,
            json!({"pool_name": "pool1", "name": "a", "size": 1, "sing": "K"}),
            "sing",
        ),
        (
            Endpoint::LunCreate,
            None,
            json!({"pool_name": "pool1", "name": "a", "size": 1, "thin_provision": "yes"}),
            "thin_provision",
        ),
        (
            Endpoint::LunCreate,
            None,
            json!({"pool_name": "pool1", "name": "a", "size": 1, "io_type": "random"}),
            "io_type",
        ),
        (
            Endpoint::LunModify,
            Some("ab"),
            json!({"qos_priority": 3}),
            "qos_priority",
        ),
        (Endpoint::LunDetail, Some("xyz"), json!(null), "id"),
        (
            Endpoint::TargetCreate,
            None,
            json!({"name": "t", "auth_group_id": "1", "portal_group_id": PORTAL_GROUP_ID}),
            "owner",
        ),
        (
            Endpoint::TargetCreate,
            None,
            json!({"name": "t", "auth_group_id": "1", "portal_group_id": PORTAL_GROUP_ID, "owner": "NOPE_A"}),
            "owner",
        ),
        (
            Endpoint::AuthGroupCreate,
            None,
            json!({"name": "a-b", "owner": owner}),
            "name",
        ),
        (
            Endpoint::ScheduleCreate,
            Some("ab"),
            json!({"cron_time": "* * *", "keep_max": 3}),
            "cron_time",
        ),
        (
            Endpoint::ScheduleCreate,
            Some("ab"),
            json!({"cron_time": "* * * * *", "keep_max": 600}),
            "keep_max",
        ),
        (
            Endpoint::SnapshotCreate,
            None,
            json!({"name": "s"}),
            "volume_id",
        ),
    ];
    for (endpoint, id, body, field) in cases {
        let (status, answer) = raw(&sim, endpoint, id, body.clone(), t).await;
        assert_eq!(status, 400, "{endpoint:?} {body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("`{field}`")),
            "{endpoint:?} {body}: {message}"
        );
    }
    assert_eq!(sim.state().read(|s| s.luns().len() + s.targets.len()), 0);

    // 401 without a token or with a wrong one, with the vendor code.
    for token in [None, Some("wrong")] {
        let (status, answer) = raw(&sim, Endpoint::LunList, None, json!(null), token).await;
        assert_eq!(
            (status, answer["code"].as_i64()),
            (401, Some(5000)),
            "{answer}"
        );
    }
    // An unknown path is a code-less 404.
    let other = match d {
        Dialect::Document => Endpoint::TargetDetailList.path(Dialect::Sdk),
        Dialect::Sdk => Endpoint::TargetDetailList.path(Dialect::Document),
    };
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(
            array_operator::array::transport::rustls_client_config(&config(&sim).transport)
                .expect("tls"),
        )
        .build()
        .expect("client");
    let resp = http
        .get(format!("{}/api/v2/{other}", sim.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    let v: Value = resp.json().await.expect("json");
    assert!(v.get("code").is_none(), "{v}");
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_never_shown() {
    let sim = sim(Dialect::Document).await;
    let secret = "wrong-token-5e5e5e";
    let mut cfg = config(&sim);
    cfg.token = Token::new(secret);
    let err = NgxClient::connect(cfg.clone())
        .await
        .expect_err("unauthorized");
    assert_eq!(err.class(), ErrorClass::Unauthorized);
    assert_eq!(err.http_status(), Some(401));
    assert_eq!(err.vendor_code(), Some(5000));
    for text in [err.to_string(), format!("{err:?}"), format!("{cfg:?}")] {
        assert!(!text.contains(secret), "{text}");
    }
    let chap = Chap {
        username: "u".into(),
        password: "chap-pass-31337".into(),
    };
    assert!(!format!("{chap:?}").contains("chap-pass-31337"));
    // A client that connected does not show its token either.
    let c = client(&sim).await;
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_bad_owner_or_endpoint_is_refused_at_connect() {
    let sim = sim(Dialect::Document).await;
    let mut cfg = config(&sim);
    cfg.owner = "has space".into();
    let err = NgxClient::connect(cfg).await.expect_err("owner");
    assert!(err.to_string().contains("spec.ngxstorage.owner"), "{err}");
    assert_eq!(sim.calls().calls().len(), 0);

    // An owner that passes the pattern but is not a controller of this
    // array: the simulator refuses the mutation.
    let mut cfg = config(&sim);
    cfg.owner = "OTHER_A".into();
    let c = NgxClient::connect(cfg)
        .await
        .expect("connects (reads carry no owner)");
    let err = c.create_auth_group("grp").await.expect_err("owner");
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
    assert!(err.to_string().contains("owner"), "{err}");
}
