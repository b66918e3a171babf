//! The shared simulator server and client transport over real TLS on loopback:
//! both verification paths, the refusals, and a dropped connection.

use std::time::Duration;

use array_operator::array::transport::{Transport, TransportConfig};
use array_operator::sim::server::{dropped_response, serve};
use array_operator::sim::tls::SimTls;
use axum::Router;
use axum::routing::get;

fn router() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/drop", get(|| async { dropped_response() }))
}

fn transport(ca: Option<&str>, insecure: bool) -> Transport {
    Transport::new(&TransportConfig {
        ca_bundle_pem: ca.map(str::to_string),
        insecure_skip_verify: insecure,
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 2,
    })
    .expect("transport")
}

#[tokio::test]
async fn ca_bundle_verifies_the_simulator_and_public_roots_do_not() {
    let tls = SimTls::generate().expect("tls");
    let server = serve("127.0.0.1:0", router(), Some(tls.server_config.clone()))
        .await
        .expect("serve");
    let url = format!("{}/ok", server.base_url());
    assert!(url.starts_with("https://127.0.0.1:"));

    let trusted = transport(Some(&tls.ca_pem), false);
    let body = trusted.http().get(&url).send().await.expect("send");
    assert_eq!(body.text().await.expect("text"), "ok");

    let untrusted = transport(None, false);
    let err = untrusted
        .http()
        .get(&url)
        .send()
        .await
        .expect_err("must refuse");
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    let by_name = format!("https://localhost:{}/ok", server.addr().port());
    let resp = trusted
        .http()
        .get(&by_name)
        .send()
        .await
        .expect("localhost");
    assert!(resp.status().is_success());
    server.shutdown().await;
}

#[tokio::test]
async fn insecure_skip_verify_accepts_a_self_signed_leaf_that_a_ca_bundle_cannot() {
    let tls = SimTls::generate_self_signed_leaf().expect("tls");
    let server = serve("127.0.0.1:0", router(), Some(tls.server_config.clone()))
        .await
        .expect("serve");
    let url = format!("{}/ok", server.base_url());

    // rustls refuses a CA certificate presented as the end entity.
    let pinned = transport(Some(&tls.ca_pem), false);
    let err = pinned
        .http()
        .get(&url)
        .send()
        .await
        .expect_err("CaUsedAsEndEntity");
    let chain = format!("{:?}", err);
    assert!(chain.contains("CaUsedAsEndEntity"), "{chain}");

    let insecure = transport(None, true);
    let resp = insecure.http().get(&url).send().await.expect("insecure");
    assert_eq!(resp.text().await.expect("text"), "ok");
}

#[tokio::test]
async fn a_dropped_connection_reaches_the_client_as_a_transport_error() {
    let server = serve("127.0.0.1:0", router(), None).await.expect("serve");
    let t = transport(None, false);
    let err = t
        .http()
        .get(format!("{}/drop", server.base_url()))
        .send()
        .await
        .expect_err("dropped");
    assert!(err.status().is_none(), "{err:?}");
    // The server keeps serving other connections after a drop.
    let ok = t
        .http()
        .get(format!("{}/ok", server.base_url()))
        .send()
        .await
        .expect("ok");
    assert!(ok.status().is_success());
}

#[test]
fn a_bundle_without_certificates_is_refused_with_the_field_named() {
    let err = Transport::new(&TransportConfig {
        ca_bundle_pem: Some("not a pem".into()),
        ..TransportConfig::default()
    })
    .expect_err("bad bundle");
    assert!(err.to_string().contains("spec.tls.caSecretRef"), "{err}");
}
