//! HA pairs: two simulator instances on one array state; the client follows
//! the Master, re-selects after the interval, and fails over when the Master
//! cannot be reached.

#[path = "ngx_support/mod.rs"]
mod support;

use std::time::Duration;

use array_operator::array::ngxstorage::{Dialect, Endpoint, NgxClient};
use array_operator::sim::ngx::NgxSim;
use support::{GIB, config, lun, sim};

/// Controller A (Master) and its peer B (Ready), sharing state and CA.
async fn pair(d: Dialect) -> (NgxSim, NgxSim) {
    let a = sim(d).await;
    let b = NgxSim::start(a.peer_config("Ready")).await.expect("peer");
    (a, b)
}

/// A client configured with B first, so picking A proves it asked.
fn pair_config(
    a: &NgxSim,
    b: &NgxSim,
    reselect: Duration,
) -> array_operator::array::ngxstorage::NgxConfig {
    let mut cfg = config(b);
    cfg.secondary_endpoint = Some(a.base_url());
    cfg.reselect_interval = reselect;
    cfg
}

both_dialects!(
    the_master_is_chosen_whichever_endpoint_is_listed_first,
    a_dead_master_fails_over_to_the_peer,
    roles_are_read_again_after_the_interval,
);

async fn the_master_is_chosen_whichever_endpoint_is_listed_first(d: Dialect) {
    let (a, b) = pair(d).await;
    let c = NgxClient::connect(pair_config(&a, &b, Duration::from_secs(300)))
        .await
        .expect("connect");
    assert_eq!(c.active_endpoint().await, Some(a.base_url()));
    c.create_lun(&lun("ha1", GIB, true)).await.expect("create");
    assert_eq!(a.count(Endpoint::LunCreate), 1);
    assert_eq!(b.count(Endpoint::LunCreate), 0);
    // B was only asked for its role.
    assert_eq!(b.calls().calls().len(), b.count(Endpoint::StatusCluster));
    // Both controllers serve the same array.
    assert!(b.state().lun_by_name("ha1").is_some());

    // Within the interval, a role change is not noticed: no re-ask.
    let asks = a.count(Endpoint::StatusCluster);
    a.set_cluster_status("Ready");
    b.set_cluster_status("Master");
    c.luns().await.expect("list");
    assert_eq!(a.count(Endpoint::LunList), 1);
    assert_eq!(a.count(Endpoint::StatusCluster), asks);
}

async fn a_dead_master_fails_over_to_the_peer(d: Dialect) {
    let (mut a, b) = pair(d).await;
    let c = NgxClient::connect(pair_config(&a, &b, Duration::from_secs(300)))
        .await
        .expect("connect");
    let id = c
        .create_lun(&lun("ha2", GIB, true))
        .await
        .expect("create")
        .id;
    assert_eq!(c.active_endpoint().await, Some(a.base_url()));

    // A goes down; B takes over as Master.
    a.stop().await;
    b.set_cluster_status("Master");
    let detail = c.lun(&id).await.expect("served by B");
    assert_eq!(detail.name, "ha2");
    assert_eq!(b.count(Endpoint::LunDetail), 1);
    assert_eq!(c.active_endpoint().await, Some(b.base_url()));
    // Mutations go to B too.
    c.create_lun(&lun("ha3", GIB, true))
        .await
        .expect("create on B");
    assert_eq!(b.count(Endpoint::LunCreate), 1);
    assert_eq!(b.state().count_luns_named("ha3"), 1);
}

async fn roles_are_read_again_after_the_interval(d: Dialect) {
    let (a, b) = pair(d).await;
    // A zero interval: every call re-reads the roles.
    let c = NgxClient::connect(pair_config(&a, &b, Duration::ZERO))
        .await
        .expect("connect");
    c.luns().await.expect("list");
    assert_eq!(
        (a.count(Endpoint::LunList), b.count(Endpoint::LunList)),
        (1, 0)
    );
    a.set_cluster_status("Ready");
    b.set_cluster_status("Master");
    c.luns().await.expect("list");
    assert_eq!(
        (a.count(Endpoint::LunList), b.count(Endpoint::LunList)),
        (1, 1)
    );
    assert_eq!(c.active_endpoint().await, Some(b.base_url()));
}
