//! The simulator itself: the `simulate ngx` command, fault flags, restarts,
//! and the out-of-band state accessor.

#[path = "ngx_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use array_operator::array::ngxstorage::{Dialect, Endpoint, NgxClient, NgxConfig, Token};
use array_operator::array::transport::TransportConfig;
use array_operator::sim::faults::FaultAction;
use array_operator::sim::ngx::{NgxSim, SimConfig, parse_fault};
use support::{GIB, client, lun, sim};

const BIN: &str = env!("CARGO_BIN_EXE_array-operator");

#[test]
fn help_documents_the_defaults() {
    let out = Command::new(BIN)
        .args(["simulate", "ngx", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "127.0.0.1:8443",
        "sim-token",
        "SIM0001",
        "document",
        "--ca-out",
        "--fault",
        "--latency-ms",
        "Master",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

/// Kills the child on drop so a failed assertion does not leak it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_command_serves_tls_with_the_chosen_dialect_owner_token_and_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    let mut child = Child(
        Command::new(BIN)
            .args([
                "simulate",
                "ngx",
                "--listen",
                "127.0.0.1:0",
                "--tls",
                "--dialect",
                "sdk",
                "--owner",
                "LAB7",
                "--token",
                "cli-token",
            ])
            .arg("--ca-out")
            .arg(&ca)
            .args(["--fault", "POST /lun/@1=busy"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("first line");
    assert!(line.contains("LAB7_A") && line.contains("LAB7_B"), "{line}");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .and_then(|w| w.strip_suffix("/api/v2/"))
        .expect("url")
        .to_string();

    let mut cfg = NgxConfig::new(url, Token::new("cli-token"), "LAB7_B");
    cfg.transport = TransportConfig {
        ca_bundle_pem: Some(std::fs::read_to_string(&ca).expect("ca file")),
        request_timeout: Duration::from_secs(10),
        ..TransportConfig::default()
    };
    cfg.busy_retry.initial_backoff = Duration::from_millis(5);
    let c = NgxClient::connect(cfg).await.expect("connect");
    assert_eq!(c.dialect(), Dialect::Sdk);
    // The first create is answered 725 and retried.
    let id = c
        .create_lun(&lun("cli1", GIB, true))
        .await
        .expect("create after busy")
        .id;
    // LUN create carries no owner; the LUN follows its pool's controller.
    assert_eq!(
        c.lun(&id).await.expect("detail").owner.as_deref(),
        Some("LAB7_A")
    );
    // Mutations that carry the owner use the configured one.
    let g = c.create_auth_group("cligroup").await.expect("group");
    assert_eq!(
        c.auth_group(&g).await.expect("detail").owner.as_deref(),
        Some("LAB7_B")
    );
}

#[test]
fn fault_flags_parse() {
    let r = parse_fault("POST /lun/@2=busy").expect("busy");
    assert_eq!(
        (r.operation.as_str(), r.nth, r.action),
        ("POST /lun/", 2, FaultAction::ErrorCode(725))
    );
    let r = parse_fault("*=http:503").expect("every call");
    assert_eq!((r.operation.as_str(), r.nth, r.times), ("*", 0, None));
    assert_eq!(r.action, FaultAction::HttpStatus(503));
    assert_eq!(
        parse_fault("GET /lun/{id}@1=drop-before")
            .expect("drop")
            .action,
        FaultAction::DropBeforeApply
    );
    assert_eq!(
        parse_fault("POST /snapshot/@1=drop-after")
            .expect("drop")
            .action,
        FaultAction::DropAfterApply
    );
    assert_eq!(
        parse_fault("GET /pool=code:5011").expect("code").action,
        FaultAction::ErrorCode(5011)
    );
    for bad in [
        "nothing",
        "GET /pool@x=busy",
        "GET /pool=explode",
        "GET /pool=code:x",
    ] {
        assert!(parse_fault(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_simulator_restarts_at_a_new_address_with_its_state() {
    let mut s = sim(Dialect::Document).await;
    let c = client(&s).await;
    let id = c
        .create_lun(&lun("moved", GIB, false))
        .await
        .expect("create")
        .id;
    let old = s.base_url();
    s.restart(Some("127.0.0.1:0")).await.expect("restart");
    assert_ne!(s.base_url(), old);
    let c2 = client(&s).await;
    assert_eq!(c2.lun(&id).await.expect("detail").name, "moved");
    // The old address is gone.
    assert!(c.lun(&id).await.is_err());
}

#[tokio::test]
async fn out_of_band_changes_are_seen_by_the_client() {
    let s = sim(Dialect::Sdk).await;
    let c = client(&s).await;
    let a = c.create_lun(&lun("oob_a", GIB, true)).await.expect("a").id;
    let b = c.create_lun(&lun("oob_b", GIB, true)).await.expect("b").id;
    let t = c
        .create_target(&array_operator::array::ngxstorage::TargetCreate {
            name: "oob".into(),
            auth_group_id: "1".into(),
            portal_group_id: array_operator::sim::ngx::seed::PORTAL_GROUP_ID.into(),
            lun_ids: vec![a.clone(), b.clone()],
        })
        .await
        .expect("target")
        .id;
    assert!(s.state().unmap(&t, &a));
    assert!(!s.state().unmap(&t, &a));
    let seen = c.target(&t).await.expect("detail");
    assert_eq!(
        seen.luns
            .iter()
            .map(|m| m.vol_id.clone())
            .collect::<Vec<_>>(),
        vec![b.clone()]
    );
    assert!(s.state().remove_lun(&b).is_some());
    assert!(c.lun(&b).await.expect_err("gone").is_not_found());
    assert!(c.target(&t).await.expect("detail").luns.is_empty());
    s.state().write(|st| {
        if let Some(tt) = st.targets.get_mut(&t) {
            tt.name = "renamed-oob".into();
        }
    });
    assert_eq!(c.target(&t).await.expect("detail").name, "renamed-oob");
}

#[tokio::test]
async fn a_full_pool_refuses_a_full_lun_but_not_a_thin_one() {
    let s = NgxSim::start(SimConfig {
        tls: false,
        token: support::TOKEN.into(),
        ..SimConfig::default()
    })
    .await
    .expect("plain http");
    assert!(s.base_url().starts_with("http://"));
    let mut cfg = support::config(&s);
    cfg.transport.ca_bundle_pem = None;
    let c = NgxClient::connect(cfg).await.expect("connect");
    let mut spec = lun("huge", 3 << 40, false);
    spec.pool = "pool2".into();
    let err = c.create_lun(&spec).await.expect_err("2 TiB pool");
    assert_eq!(
        array_operator::array::error::ArrayError::class(&err),
        array_operator::array::error::ErrorClass::LimitReached
    );
    spec.thin = true;
    c.create_lun(&spec).await.expect("thin fits");
}

#[tokio::test]
async fn latency_past_the_timeout_makes_a_post_ambiguous_and_a_read_retried() {
    let s = sim(Dialect::Document).await;
    let mut cfg = support::config(&s);
    cfg.transport.request_timeout = Duration::from_millis(300);
    let c = NgxClient::connect(cfg).await.expect("connect");
    s.faults()
        .set_operation_latency(s.op(Endpoint::LunCreate), Duration::from_secs(3));
    let err = c
        .create_lun(&lun("slow", GIB, true))
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            err,
            array_operator::array::ngxstorage::NgxError::Ambiguous { .. }
        ),
        "{err:?}"
    );
    assert_eq!(
        s.count(Endpoint::LunCreate),
        1,
        "a timed-out POST is not resent"
    );

    s.faults()
        .set_operation_latency(s.op(Endpoint::LunList), Duration::from_secs(3));
    let err = c.luns().await.expect_err("timeout");
    assert_eq!(
        array_operator::array::error::ArrayError::class(&err),
        array_operator::array::error::ErrorClass::Unreachable
    );
    assert_eq!(
        s.count(Endpoint::LunList),
        2,
        "a timed-out GET is resent once"
    );
}

#[tokio::test]
async fn the_client_keeps_to_its_concurrency_limit() {
    let s = sim(Dialect::Document).await;
    let mut cfg = support::config(&s);
    cfg.transport.max_concurrent_requests = 2;
    let c = NgxClient::connect(cfg).await.expect("connect");
    // Latency keeps each request in flight long enough for others to pile up.
    s.faults()
        .set_operation_latency(s.op(Endpoint::LunList), Duration::from_millis(200));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.luns().await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("list");
    }
    assert_eq!(s.count(Endpoint::LunList), 6);
    assert_eq!(s.max_in_flight(), 2);
}

#[tokio::test]
async fn tls_trust_follows_the_configuration() {
    let s = sim(Dialect::Sdk).await;
    // System roots do not trust the simulator's private CA.
    let mut cfg = support::config(&s);
    cfg.transport.ca_bundle_pem = None;
    let err = NgxClient::connect(cfg.clone())
        .await
        .expect_err("untrusted");
    assert_eq!(
        array_operator::array::error::ArrayError::class(&err),
        array_operator::array::error::ErrorClass::Unreachable
    );
    assert_eq!(
        s.calls().calls().len(),
        0,
        "no request got through the handshake"
    );
    // insecureSkipVerify, only when asked.
    cfg.transport.insecure_skip_verify = true;
    let c = NgxClient::connect(cfg).await.expect("insecure");
    assert_eq!(c.dialect(), Dialect::Sdk);
}
