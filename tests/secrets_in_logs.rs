//! Credentials, tokens and CHAP secrets never reach the logs: every log line
//! of a full flow (at TRACE, from every crate) is captured and searched.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::transport::TransportConfig;
use array_operator::crd::iscsi_target::{ChapSettings, IscsiTargetSpec};
use array_operator::crd::lun::LunSpec;
use array_operator::crd::shared::{ArrayRef, ManagementPolicy, SecretRef};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::crd::{IscsiTarget, Lun};
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::{self, ArrayHandle, ObservationCache, SecretData};
use array_operator::model::SecretString;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSimConfig};
use array_operator::sim::ngx::{NgxSim, SimConfig};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const CHAP_1: &str = "Chap-Log-Secret-1";
const CHAP_2: &str = "Chap-Log-Secret-2";
const TOKEN: &str = "ngx-log-token-77";
const WRONG: &str = "Wrong-Log-Password-9";

fn transport(ca: Option<String>) -> TransportConfig {
    TransportConfig {
        ca_bundle_pem: ca,
        insecure_skip_verify: false,
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    }
}

async fn flow(config: BackendConfig, placement: (Option<&str>, Option<&str>), chap: bool) {
    let backend = Backend::connect(config.clone()).await.expect("connect");
    let handle = ArrayHandle {
        key: "logs/array".into(),
        backend,
        cache: ObservationCache::default(),
        resync: Duration::from_secs(3600),
        dry_run: None,
    };
    let cluster = MemoryCluster::default();
    let mut lun = Lun::new(
        "logs1",
        LunSpec {
            array_ref: ArrayRef {
                name: "array".into(),
            },
            name: None,
            size: Quantity("1Gi".into()),
            location: placement.0.map(str::to_string),
            pool: placement.1.map(str::to_string),
            thin_provisioning: true,
            description: None,
            synology: None,
            ngxstorage: None,
            source: None,
            management_policy: ManagementPolicy::Manage,
            deletion_policy: None,
        },
    );
    lun.meta_mut().namespace = Some("logs".into());
    cluster.put_lun(lun.clone());
    let out = engine::lifecycle::reconcile(&lun, &handle, &cluster).await;
    let mut stored = cluster.lun("logs", "logs1").expect("lun");
    stored.status = Some(out.status);
    cluster.put_lun(stored);

    let put_secret = |password: &str, version: &str| {
        let mut data = BTreeMap::new();
        data.insert("username".to_string(), SecretString::new("log-user"));
        data.insert("password".to_string(), SecretString::new(password));
        cluster.put_secret(
            "logs",
            "chap",
            SecretData {
                data,
                resource_version: version.into(),
            },
        );
    };
    put_secret(CHAP_1, "1");
    let mut target = IscsiTarget::new(
        "logt",
        IscsiTargetSpec {
            array_ref: ArrayRef {
                name: "array".into(),
            },
            name: None,
            iqn: None,
            enabled: true,
            max_sessions: None,
            chap: chap.then(|| ChapSettings {
                secret_ref: SecretRef {
                    name: "chap".into(),
                },
                mutual_secret_ref: None,
            }),
            luns: vec!["logs1".into()],
            header_digest: None,
            data_digest: None,
            max_recv_seg_bytes: None,
            max_send_seg_bytes: None,
            portal_group: None,
            initiators: Vec::new(),
            management_policy: ManagementPolicy::Manage,
            deletion_policy: None,
        },
    );
    target.meta_mut().namespace = Some("logs".into());
    cluster.put_target(target.clone());
    let out = engine::lifecycle::reconcile(&target, &handle, &cluster).await;
    target.status = Some(out.status);
    cluster.put_target(target.clone());
    put_secret(CHAP_2, "2");
    engine::lifecycle::reconcile(&target, &handle, &cluster).await;
    handle.backend.close().await;

    let mut wrong = config;
    wrong.credentials = match wrong.credentials {
        Credentials::Token(_) => Credentials::Token(SecretString::new(WRONG)),
        Credentials::UserPassword { username, .. } => Credentials::UserPassword {
            username,
            password: SecretString::new(WRONG),
        },
    };
    assert!(Backend::connect(wrong).await.is_err());
}

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dsm = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("DSM");
    flow(
        BackendConfig {
            vendor: Vendor::Synology,
            endpoint: dsm.base_url(),
            secondary_endpoint: None,
            credentials: Credentials::UserPassword {
                username: DEFAULT_USERNAME.into(),
                password: SecretString::new(DEFAULT_PASSWORD),
            },
            transport: transport(dsm.ca_pem().map(str::to_string)),
            ngx_owner: None,
            resize_mode: ResizeMode::Absolute,
            session_name: "logs".into(),
        },
        (Some("/volume1"), None),
        true,
    )
    .await;

    let ngx = NgxSim::start(SimConfig {
        token: TOKEN.into(),
        ..SimConfig::default()
    })
    .await
    .expect("NGX");
    flow(
        BackendConfig {
            vendor: Vendor::NgxStorage,
            endpoint: ngx.base_url(),
            secondary_endpoint: None,
            credentials: Credentials::Token(SecretString::new(TOKEN)),
            transport: transport(ngx.ca_pem()),
            ngx_owner: Some(ngx.owners()[0].clone()),
            resize_mode: ResizeMode::Absolute,
            session_name: "logs".into(),
        },
        (None, Some("pool1")),
        true,
    )
    .await;

    let text =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert!(
        text.lines().count() > 10,
        "the flow logged almost nothing: {text}"
    );
    for secret in [DEFAULT_PASSWORD, TOKEN, CHAP_1, CHAP_2, WRONG] {
        assert!(
            !text.contains(secret),
            "a secret reached the logs:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
