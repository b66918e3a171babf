//! Shared set-up for the DSM tests: a simulator over HTTPS on loopback and a
//! client that trusts its CA.

#![allow(dead_code)]

use std::time::Duration;

use array_operator::array::synology::{Credentials, DsmClient, DsmConfig};
use array_operator::array::transport::TransportConfig;
use array_operator::sim::dsm::{self, DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};

/// A simulator with the seed, over HTTPS with its own CA.
pub async fn sim() -> DsmSim {
    dsm::start(DsmSimConfig::default())
        .await
        .expect("start simulator")
}

/// Transport settings trusting `ca`.
pub fn transport(ca: Option<&str>, insecure: bool) -> TransportConfig {
    TransportConfig {
        ca_bundle_pem: ca.map(str::to_string),
        insecure_skip_verify: insecure,
        request_timeout: Duration::from_secs(10),
        max_concurrent_requests: 8,
    }
}

/// Client settings for `sim` with the default account.
pub fn config(sim: &DsmSim) -> DsmConfig {
    let mut cfg = DsmConfig::new(
        sim.base_url(),
        Credentials::new(DEFAULT_USERNAME, DEFAULT_PASSWORD),
        transport(sim.ca_pem(), false),
        "test-install",
    );
    cfg.retry_backoff = Duration::from_millis(20);
    cfg
}

/// A client for `sim` that verifies it through its CA.
pub fn client(sim: &DsmSim) -> DsmClient {
    DsmClient::new(config(sim)).expect("client")
}

/// A raw HTTPS client trusting the simulator, for requests the typed client
/// would never send.
pub fn raw_http(sim: &DsmSim) -> reqwest::Client {
    array_operator::array::transport::Transport::new(&transport(sim.ca_pem(), false))
        .expect("transport")
        .http()
        .clone()
}

/// Logs in with a raw request (`format=sid`, version 6) and returns the sid.
pub async fn raw_login(sim: &DsmSim) -> String {
    let http = raw_http(sim);
    let v: serde_json::Value = http
        .post(format!("{}/webapi/auth.cgi", sim.base_url()))
        .form(&[
            ("api", "SYNO.API.Auth"),
            ("version", "6"),
            ("method", "login"),
            ("account", DEFAULT_USERNAME),
            ("passwd", DEFAULT_PASSWORD),
            ("format", "sid"),
        ])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    v["data"]["sid"].as_str().expect("sid").to_string()
}

/// Sends a raw GET to entry.cgi and returns the JSON answer.
pub async fn raw_get(sim: &DsmSim, params: &[(&str, &str)]) -> serde_json::Value {
    raw_http(sim)
        .get(format!("{}/webapi/entry.cgi", sim.base_url()))
        .query(params)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}
