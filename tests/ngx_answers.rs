//! Wrong answers are never success: a code-less 404 on a delete or unmap
//! (a route the array does not serve) does not count as "already gone", one
//! malformed record does not hide the rest of a list, and an oversized
//! answer is refused, not buffered.

#[path = "ngx_support/mod.rs"]
mod support;

use array_operator::array::error::ArrayError;
use array_operator::array::ngxstorage::{
    Chap, Dialect, Endpoint, MAX_BODY_BYTES, NgxError, TargetCreate,
};
use array_operator::sim::faults::{FaultAction, FaultRule};
use array_operator::sim::ngx::seed::PORTAL_GROUP_ID;
use serde_json::{Value, json};
use support::{GIB, client, lun, sim};

both_dialects!(
    a_codeless_404_on_delete_or_unmap_is_not_success,
    one_malformed_record_is_reported_alone,
    an_oversized_answer_is_refused,
);

async fn a_codeless_404_on_delete_or_unmap_is_not_success(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let a = c.create_lun(&lun("keep_a", GIB, true)).await.expect("lun");
    let b = c.create_lun(&lun("keep_b", GIB, true)).await.expect("lun");
    let t = c
        .create_target(&TargetCreate {
            name: "t404".into(),
            auth_group_id: "1".into(),
            portal_group_id: PORTAL_GROUP_ID.into(),
            lun_ids: vec![a.id.clone()],
        })
        .await
        .expect("target");
    let g = c.create_auth_group("grp404").await.expect("group");
    c.set_auth_group_chap(
        &g,
        &Chap {
            username: "u404".into(),
            password: "secret-404-pass".into(),
        },
    )
    .await
    .expect("chap");
    let snap = c.create_snapshot(&b.id, "s404").await.expect("snapshot");

    // Every delete and unmap route answers a bare 404, as a web server does
    // for a path it does not serve: none of them may report success while
    // the object is still there.
    for endpoint in [
        Endpoint::LunDelete,
        Endpoint::TargetDelete,
        Endpoint::TargetRemoveLun,
        Endpoint::AuthGroupDelete,
        Endpoint::AuthGroupDeleteChap,
        Endpoint::SnapshotDelete,
    ] {
        sim.faults().arm(FaultRule::always(
            sim.op(endpoint),
            FaultAction::HttpStatus(404),
        ));
    }
    let unmap = c
        .remove_target_luns(&t.id, std::slice::from_ref(&a.id))
        .await;
    let results: Vec<(&str, Result<(), NgxError>)> = vec![
        ("unmap", unmap),
        ("delete target", c.delete_target(&t.id).await),
        ("delete CHAP", c.delete_auth_group_chap(&g).await),
        ("delete auth group", c.delete_auth_group(&g).await),
        ("delete snapshot", c.delete_snapshot(&snap.id).await),
        ("delete LUN", c.delete_lun(&b.id).await),
    ];
    for (what, result) in results {
        let err = result.expect_err(what);
        assert_eq!(err.http_status(), Some(404), "{what}: {err}");
        assert!(!err.is_not_found(), "{what}: {err}");
    }
    let still = sim.state().read(|s| {
        (
            s.luns().contains_key(&b.id),
            s.targets.get(&t.id).map(|t| t.luns.len()),
            s.auth_groups.get(&g).map(|g| g.chap.is_some()),
            s.snapshots.contains_key(&snap.id),
        )
    });
    assert_eq!(still, (true, Some(1), Some(true), true));

    // The same bare 404 for an object a fresh list no longer holds: gone.
    sim.state().write(|s| {
        s.snapshots.remove(&snap.id);
        if let Some(t) = s.targets.get_mut(&t.id) {
            t.luns.clear();
        }
    });
    c.delete_snapshot(&snap.id).await.expect("absent: gone");
    c.remove_target_luns(&t.id, std::slice::from_ref(&a.id))
        .await
        .expect("not mapped: gone");
    sim.state().remove_lun(&b.id);
    c.delete_lun(&b.id).await.expect("absent: gone");

    // A documented not-found code confirms it without a list.
    sim.faults().clear();
    sim.calls().clear();
    c.delete_lun(&b.id).await.expect("5011: gone");
    assert_eq!(sim.count(Endpoint::LunList), 0);
}

async fn one_malformed_record_is_reported_alone(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let mut ids = Vec::new();
    for name in ["m_one", "m_two", "m_three"] {
        ids.push(c.create_lun(&lun(name, GIB, true)).await.expect("lun").id);
    }
    let size_key = if d == Dialect::Sdk {
        "size"
    } else {
        "vol_size"
    };
    sim.state().tamper(&ids[1], size_key, json!("lots"));

    let listing = c.luns_detailed_listing().await.expect("the list answers");
    let good: Vec<&str> = listing.items.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(good.len(), 2);
    assert!(good.contains(&ids[0].as_str()) && good.contains(&ids[2].as_str()));
    assert_eq!(listing.malformed.len(), 1);
    let bad = &listing.malformed[0];
    assert_eq!(bad.id.as_deref(), Some(ids[1].as_str()));
    let text = bad.error.to_string();
    assert!(text.contains("GET /lun/list"), "{text}");
    assert!(text.contains(size_key), "{text}");
    assert!(text.contains("lots"), "{text}");

    // The strict form refuses the partial view, naming the same record.
    let err = c.luns_detailed().await.expect_err("strict");
    assert!(err.to_string().contains(&ids[1]), "{err}");

    // A target record whose id itself is missing is reported by position.
    let t = c
        .create_target(&TargetCreate {
            name: "tm".into(),
            auth_group_id: "1".into(),
            portal_group_id: PORTAL_GROUP_ID.into(),
            lun_ids: vec![],
        })
        .await
        .expect("target");
    let id_key = if d == Dialect::Sdk { "id" } else { "scsi_id" };
    sim.state().tamper(&t.id, id_key, Value::Null);
    let listing = c.targets_detailed_listing().await.expect("answers");
    assert_eq!(listing.malformed.len(), 1);
    assert_eq!(listing.malformed[0].id, None);
    assert_eq!(listing.malformed[0].index, 0);
    assert!(
        listing.malformed[0]
            .error
            .to_string()
            .contains(&format!("missing field `{id_key}`")),
        "{}",
        listing.malformed[0].error
    );
}

async fn an_oversized_answer_is_refused(d: Dialect) {
    let sim = sim(d).await;
    let c = client(&sim).await;
    let a = c.create_lun(&lun("huge", GIB, true)).await.expect("lun");
    sim.state()
        .tamper(&a.id, "padding", json!("x".repeat(MAX_BODY_BYTES + 1)));
    let err = c.luns_detailed().await.expect_err("too large");
    assert!(matches!(err, NgxError::TooLarge { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("GET /lun/list"), "{text}");
    assert!(text.contains(&MAX_BODY_BYTES.to_string()), "{text}");
    assert_eq!(err.api_call(), "GET /lun/list");
    // The client is still usable.
    sim.state().tamper(&a.id, "padding", Value::Null);
    assert_eq!(c.luns_detailed().await.expect("list").len(), 1);
}
