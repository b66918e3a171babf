//! The simulator's WebAPI surface with raw requests: API discovery, the
//! login forms real clients use, both sid transports, GET and POST, quoted
//! and raw values, the strict 101-104/114/119 refusals, and the
//! `simulate dsm` command with its fault flags.

mod dsm_support;

use std::time::Duration;

use array_operator::array::error::{ArrayError, ErrorClass};
use array_operator::array::synology::lun::LunType;
use array_operator::array::synology::{CreateLun, DevAttribs, DsmClient};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

async fn post(sim: &array_operator::sim::dsm::DsmSim, cgi: &str, form: &[(&str, &str)]) -> Value {
    dsm_support::raw_http(sim)
        .post(format!("{}/webapi/{cgi}", sim.base_url()))
        .form(form)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

fn code(v: &Value) -> Option<i64> {
    v["error"]["code"].as_i64()
}

#[tokio::test]
async fn api_info_advertises_paths_and_versions() {
    let sim = dsm_support::sim().await;
    let all = post(
        &sim,
        "query.cgi",
        &[
            ("api", "SYNO.API.Info"),
            ("version", "1"),
            ("method", "query"),
            ("query", "all"),
        ],
    )
    .await;
    assert_eq!(all["data"]["SYNO.API.Auth"]["path"], "auth.cgi");
    assert_eq!(all["data"]["SYNO.API.Auth"]["maxVersion"], 7);
    assert_eq!(all["data"]["SYNO.Core.ISCSI.LUN"]["path"], "entry.cgi");
    assert_eq!(all["data"]["SYNO.DR.Plan"]["maxVersion"], 1);
    let core = post(
        &sim,
        "query.cgi",
        &[
            ("api", "SYNO.API.Info"),
            ("version", "1"),
            ("method", "query"),
            ("query", "SYNO.Core."),
        ],
    )
    .await;
    let names: Vec<&String> = core["data"].as_object().expect("map").keys().collect();
    assert_eq!(
        names,
        [
            "SYNO.Core.ISCSI.LUN",
            "SYNO.Core.ISCSI.Target",
            "SYNO.Core.System"
        ],
        "{names:?}"
    );
    assert_eq!(all["data"]["SYNO.DSM.Info"]["maxVersion"], 2);
}

#[tokio::test]
async fn unknown_api_method_version_and_missing_fields_are_refused() {
    let sim = dsm_support::sim().await;
    let sid = dsm_support::raw_login(&sim).await;
    let call = |api: &'static str, method: &'static str, version: &'static str| {
        let sid = sid.clone();
        let sim = &sim;
        async move {
            dsm_support::raw_get(
                sim,
                &[
                    ("api", api),
                    ("method", method),
                    ("version", version),
                    ("_sid", &sid),
                ],
            )
            .await
        }
    };
    assert_eq!(code(&call("SYNO.Core.Nope", "list", "1").await), Some(102));
    assert_eq!(
        code(&call("SYNO.Core.ISCSI.LUN", "explode", "1").await),
        Some(103)
    );
    assert_eq!(
        code(&call("SYNO.Core.ISCSI.LUN", "list", "2").await),
        Some(104)
    );
    assert_eq!(
        code(&call("SYNO.Core.ISCSI.LUN", "list", "x").await),
        Some(104)
    );
    let no_version =
        dsm_support::raw_get(&sim, &[("api", "SYNO.Core.ISCSI.LUN"), ("method", "list")]).await;
    assert_eq!(code(&no_version), Some(101));

    // Missing parameters: iSCSI says 114, VMM says 401.
    assert_eq!(
        code(&call("SYNO.Core.ISCSI.LUN", "create", "1").await),
        Some(114)
    );
    assert_eq!(
        code(&call("SYNO.Virtualization.API.Guest", "get", "1").await),
        Some(401)
    );
    // Only entry.cgi serves every API.
    let wrong_cgi = post(
        &sim,
        "query.cgi",
        &[
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("method", "list"),
            ("version", "1"),
            ("_sid", &sid),
        ],
    )
    .await;
    assert_eq!(code(&wrong_cgi), Some(102));
}

#[tokio::test]
async fn bad_or_missing_sessions_get_119() {
    let sim = dsm_support::sim().await;
    let base = [
        ("api", "SYNO.Core.ISCSI.LUN"),
        ("method", "list"),
        ("version", "1"),
    ];
    assert_eq!(code(&dsm_support::raw_get(&sim, &base).await), Some(119));
    let mut bad = base.to_vec();
    bad.push(("_sid", "not-a-session"));
    assert_eq!(code(&dsm_support::raw_get(&sim, &bad).await), Some(119));
}

#[tokio::test]
async fn login_versions_and_formats_that_real_clients_use() {
    let sim = dsm_support::sim().await;
    for version in ["3", "6", "7"] {
        let v = post(
            &sim,
            "auth.cgi",
            &[
                ("api", "SYNO.API.Auth"),
                ("version", version),
                ("method", "login"),
                ("account", DEFAULT_USERNAME),
                ("passwd", DEFAULT_PASSWORD),
                ("format", "sid"),
            ],
        )
        .await;
        assert!(v["data"]["sid"].is_string(), "v{version}: {v}");
    }
    // synology-csi logs in with GET and the query string.
    let get: Value = dsm_support::raw_http(&sim)
        .get(format!("{}/webapi/auth.cgi", sim.base_url()))
        .query(&[
            ("api", "SYNO.API.Auth"),
            ("version", "3"),
            ("method", "login"),
            ("account", DEFAULT_USERNAME),
            ("passwd", DEFAULT_PASSWORD),
            ("session", "Core"),
            ("format", "sid"),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(get["data"]["sid"].is_string());
    let wrong = post(
        &sim,
        "auth.cgi",
        &[
            ("api", "SYNO.API.Auth"),
            ("version", "6"),
            ("method", "login"),
            ("account", DEFAULT_USERNAME),
            ("passwd", "nope"),
        ],
    )
    .await;
    assert_eq!(code(&wrong), Some(400));
    let old = post(
        &sim,
        "auth.cgi",
        &[
            ("api", "SYNO.API.Auth"),
            ("version", "2"),
            ("method", "login"),
            ("account", DEFAULT_USERNAME),
            ("passwd", DEFAULT_PASSWORD),
        ],
    )
    .await;
    assert_eq!(code(&old), Some(104));
}

#[tokio::test]
async fn cookie_sessions_need_the_synotoken() {
    let sim = dsm_support::sim().await;
    let http = dsm_support::raw_http(&sim);
    let resp = http
        .post(format!("{}/webapi/auth.cgi", sim.base_url()))
        .form(&[
            ("api", "SYNO.API.Auth"),
            ("version", "7"),
            ("method", "login"),
            ("account", DEFAULT_USERNAME),
            ("passwd", DEFAULT_PASSWORD),
            ("format", "cookie"),
            ("enable_syno_token", "yes"),
        ])
        .send()
        .await
        .expect("login");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .split(';')
        .next()
        .expect("id=...")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    let token = body["data"]["synotoken"]
        .as_str()
        .expect("token")
        .to_string();
    let url = format!(
        "{}/webapi/entry.cgi?api=SYNO.Core.ISCSI.LUN&version=1&method=list",
        sim.base_url()
    );
    let with_token: Value = http
        .get(&url)
        .header("cookie", &cookie)
        .header("x-syno-token", &token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(with_token["success"], true, "{with_token}");
    let without: Value = http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(code(&without), Some(119));
}

#[tokio::test]
async fn quoted_and_raw_values_and_get_or_post_are_the_same() {
    let sim = dsm_support::sim().await;
    let sid = dsm_support::raw_login(&sim).await;
    // Created with a quoted name (synology-csi style) over GET.
    let created = dsm_support::raw_get(
        &sim,
        &[
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("version", "1"),
            ("method", "create"),
            ("name", "\"csi-style\""),
            ("type", "BLUN"),
            ("location", "/volume1"),
            ("size", "1073741824"),
            ("_sid", &sid),
        ],
    )
    .await;
    let uuid = created["data"]["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(sim.state().luns()[0].name, "csi-style");
    let quoted = format!("\"{uuid}\"");
    for (form, value) in [("GET", quoted.as_str()), ("POST", uuid.as_str())] {
        let params = [
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("version", "1"),
            ("method", "get"),
            ("uuid", value),
            ("_sid", &sid),
        ];
        let v = if form == "GET" {
            dsm_support::raw_get(&sim, &params).await
        } else {
            post(&sim, "entry.cgi", &params).await
        };
        assert_eq!(v["data"]["lun"]["uuid"], uuid.as_str(), "{form}: {v}");
    }
    // synology-csi sends one quoted snapshot uuid to delete_snapshot.
    let snap = post(
        &sim,
        "entry.cgi",
        &[
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("version", "1"),
            ("method", "take_snapshot"),
            ("src_lun_uuid", &quoted),
            ("snapshot_name", "\"csi-snap\""),
            ("taken_by", "\"csi\""),
            ("_sid", &sid),
        ],
    )
    .await;
    let snap_uuid = snap["data"]["snapshot_uuid"]
        .as_str()
        .expect("snapshot")
        .to_string();
    let deleted = post(
        &sim,
        "entry.cgi",
        &[
            ("api", "SYNO.Core.ISCSI.LUN"),
            ("version", "1"),
            ("method", "delete_snapshot"),
            ("snapshot_uuid", &format!("\"{snap_uuid}\"")),
            ("_sid", &sid),
        ],
    )
    .await;
    assert_eq!(deleted["success"], true, "{deleted}");
    assert!(sim.state().snapshot().snapshots.is_empty());
    // Every call was recorded with its parameters.
    let get_calls = sim.calls().count("SYNO.Core.ISCSI.LUN.get");
    assert_eq!(get_calls, 2);
    let login = sim
        .calls()
        .calls()
        .into_iter()
        .find(|c| c.operation == "SYNO.API.Auth.login")
        .expect("login");
    assert_eq!(
        login.params.get("passwd").map(String::as_str),
        Some("<redacted>"),
        "the call log never keeps passwords"
    );
}

#[tokio::test]
async fn simulate_command_serves_tls_writes_the_ca_and_applies_fault_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_array-operator"))
        .args([
            "simulate",
            "dsm",
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--ca-out",
        ])
        .arg(&ca)
        .args([
            "--username",
            "ops",
            "--password",
            "ops-password-1",
            "--fail",
            "SYNO.Core.ISCSI.LUN.create:1:18990538",
            "--latency-ms",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(url) = line.strip_prefix("DSM simulator listening on ") {
                return url.to_string();
            }
        }
        panic!("simulator exited without listening");
    })
    .await
    .expect("simulator started");
    let pem = std::fs::read_to_string(&ca).expect("CA written");
    let mut cfg = array_operator::array::synology::DsmConfig::new(
        url,
        array_operator::array::synology::Credentials::new("ops", "ops-password-1"),
        dsm_support::transport(Some(&pem), false),
        "cli-test",
    );
    cfg.retry_backoff = Duration::from_millis(10);
    let client = DsmClient::new(cfg).expect("client");
    let req = CreateLun {
        name: "cli".into(),
        lun_type: LunType::Blun,
        location: "/volume1".into(),
        size: 1 << 30,
        description: None,
        dev_attribs: DevAttribs::default(),
    };
    let err = client.luns().create(&req).await.expect_err("--fail armed");
    assert_eq!(err.vendor_code(), Some(18990538));
    assert_eq!(err.class(), ErrorClass::AlreadyExists);
    client
        .luns()
        .create(&req)
        .await
        .expect("second call passes");
    assert_eq!(client.luns().list().await.expect("list").len(), 1);
    child.kill().await.expect("kill");
}

#[test]
fn simulate_help_documents_the_defaults() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_array-operator"))
        .args(["simulate", "dsm", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "127.0.0.1:5001",
        "--tls",
        "--ca-out",
        "--fail",
        "[default: admin]",
    ] {
        assert!(help.contains(needle), "missing {needle} in:\n{help}");
    }
}
