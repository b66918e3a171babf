//! Shared helpers for the NGXStorage client and simulator tests (included
//! with `#[path]` by each NGX test file).
#![allow(dead_code)]

use std::time::Duration;

use array_operator::array::ngxstorage::{
    BusyRetry, Dialect, LunCreate, NgxClient, NgxConfig, ResizeMode, Token,
};
use array_operator::array::transport::TransportConfig;
use array_operator::sim::ngx::{NgxSim, SimConfig};

pub const TOKEN: &str = "test-token-9f2c";
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// A TLS simulator of `dialect` with the default seed.
pub async fn sim(dialect: Dialect) -> NgxSim {
    NgxSim::start(SimConfig {
        dialect,
        token: TOKEN.into(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// A client configuration that trusts the simulator's CA, with fast retries.
pub fn config(sim: &NgxSim) -> NgxConfig {
    let mut c = NgxConfig::new(sim.base_url(), Token::new(TOKEN), sim.owners()[0].clone());
    c.transport = TransportConfig {
        ca_bundle_pem: sim.ca_pem(),
        insecure_skip_verify: false,
        request_timeout: Duration::from_secs(10),
        max_concurrent_requests: 4,
    };
    c.busy_retry = BusyRetry {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    };
    c.resize_mode = match sim.dialect() {
        Dialect::Document => ResizeMode::Absolute,
        Dialect::Sdk => ResizeMode::Delta,
    };
    c
}

/// A connected client for `sim`.
pub async fn client(sim: &NgxSim) -> NgxClient {
    NgxClient::connect(config(sim))
        .await
        .expect("client connects")
}

/// A LUN spec in pool1.
pub fn lun(name: &str, size_bytes: u64, thin: bool) -> LunCreate {
    LunCreate {
        pool: "pool1".into(),
        name: name.into(),
        size_bytes,
        thin,
        blocksize: None,
        deduplication: None,
        compression: None,
        io_type: None,
        qos_priority: None,
    }
}

/// Runs an async test body once per dialect, as two test functions.
#[macro_export]
macro_rules! both_dialects {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn document() {
                    super::$name(array_operator::array::ngxstorage::Dialect::Document).await
                }
                #[tokio::test]
                async fn sdk() {
                    super::$name(array_operator::array::ngxstorage::Dialect::Sdk).await
                }
            }
        )*
    };
}
