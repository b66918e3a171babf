//! Full-flow tests of the reconcile engine against both simulators over
//! HTTPS on loopback: the engine decides, the vendor adapter calls the
//! simulator, and an in-memory cluster stands in for the Kubernetes API
//! (objects, annotations and status writes).

use std::collections::BTreeMap;
use std::time::Duration;

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::transport::TransportConfig;
use array_operator::crd::iscsi_target::{ChapSettings, IscsiTargetSpec, IscsiTargetStatus};
use array_operator::crd::lun::{LunSpec, LunStatus};
use array_operator::crd::shared::{
    ANNOTATION_CREATE_PENDING, ANNOTATION_EXTERNAL_NAME, ANNOTATION_PAUSED, ArrayRef,
    DeletionPolicy, ManagementPolicy, SecretRef,
};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::crd::{IscsiTarget, Lun};
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::{
    self, ArrayHandle, Cleanup, EngineEvent, ObservationCache, Outcome, Progress, SecretData,
};
use array_operator::model::SecretString;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};
use array_operator::sim::faults::{FaultAction, FaultRule, RecordedCall};
use array_operator::sim::ngx::{NgxSim, SimConfig};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;

const NS: &str = "default";
const NGX_TOKEN: &str = "flow-token-1234";
const GIB: u64 = 1 << 30;

enum Sim {
    Ngx(NgxSim),
    Dsm(DsmSim),
}

impl Sim {
    async fn start(vendor: Vendor) -> Sim {
        match vendor {
            Vendor::NgxStorage => Sim::Ngx(
                NgxSim::start(SimConfig {
                    token: NGX_TOKEN.into(),
                    ..SimConfig::default()
                })
                .await
                .expect("NGX simulator"),
            ),
            Vendor::Synology => Sim::Dsm(
                array_operator::sim::dsm::start(DsmSimConfig::default())
                    .await
                    .expect("DSM simulator"),
            ),
        }
    }

    fn vendor(&self) -> Vendor {
        match self {
            Sim::Ngx(_) => Vendor::NgxStorage,
            Sim::Dsm(_) => Vendor::Synology,
        }
    }

    fn config(&self) -> BackendConfig {
        let (endpoint, ca, credentials, owner) = match self {
            Sim::Ngx(s) => (
                s.base_url(),
                s.ca_pem(),
                Credentials::Token(SecretString::new(NGX_TOKEN)),
                Some(s.owners()[0].clone()),
            ),
            Sim::Dsm(s) => (
                s.base_url(),
                s.ca_pem().map(str::to_string),
                Credentials::UserPassword {
                    username: DEFAULT_USERNAME.into(),
                    password: SecretString::new(DEFAULT_PASSWORD),
                },
                None,
            ),
        };
        BackendConfig {
            vendor: self.vendor(),
            endpoint,
            secondary_endpoint: None,
            credentials,
            transport: TransportConfig {
                ca_bundle_pem: ca,
                insecure_skip_verify: false,
                request_timeout: Duration::from_secs(5),
                max_concurrent_requests: 4,
            },
            ngx_owner: owner,
            resize_mode: ResizeMode::Absolute,
            session_name: "engine-flow".into(),
        }
    }

    fn calls(&self) -> Vec<RecordedCall> {
        match self {
            Sim::Ngx(s) => s.calls().calls(),
            Sim::Dsm(s) => s.calls().calls(),
        }
    }

    fn clear_calls(&self) {
        match self {
            Sim::Ngx(s) => s.calls().clear(),
            Sim::Dsm(s) => s.calls().clear(),
        }
    }

    fn faults(&self) -> &array_operator::sim::faults::Faults {
        match self {
            Sim::Ngx(s) => s.faults(),
            Sim::Dsm(s) => s.faults(),
        }
    }

    /// Calls that change the array.
    fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| match self {
                Sim::Ngx(_) => c.http_method != "GET",
                Sim::Dsm(_) => {
                    let method = c.operation.rsplit('.').next().unwrap_or_default();
                    !matches!(
                        method,
                        "list" | "get" | "query" | "login" | "logout" | "list_snapshot"
                    )
                }
            })
            .map(|c| c.operation)
            .collect()
    }

    fn create_op(&self) -> &'static str {
        match self {
            Sim::Ngx(_) => "lun create",
            Sim::Dsm(_) => "SYNO.Core.ISCSI.LUN.create",
        }
    }

    fn arm_create_fault(&self, action: FaultAction) {
        let op = match self {
            Sim::Ngx(s) => s.op(array_operator::array::ngxstorage::Endpoint::LunCreate),
            Sim::Dsm(_) => "SYNO.Core.ISCSI.LUN.create".to_string(),
        };
        self.faults().arm(FaultRule::once(op, 1, action));
    }

    fn luns_named(&self, name: &str) -> usize {
        match self {
            Sim::Ngx(s) => s.state().count_luns_named(name),
            Sim::Dsm(s) => s.state().luns().iter().filter(|l| l.name == name).count(),
        }
    }

    fn lun_size(&self, name: &str) -> Option<u64> {
        match self {
            Sim::Ngx(s) => s.state().lun_by_name(name).map(|l| l.size_bytes),
            Sim::Dsm(s) => s.state().lun_by_name(name).map(|l| l.size),
        }
    }

    fn resize_out_of_band(&self, name: &str, bytes: u64) {
        let done = match self {
            Sim::Ngx(s) => {
                let id = s.state().lun_by_name(name).expect("lun").id;
                s.state().set_lun_size(&id, bytes)
            }
            Sim::Dsm(s) => {
                let uuid = s.state().lun_by_name(name).expect("lun").uuid;
                s.state().resize_lun(&uuid, bytes)
            }
        };
        assert!(done, "out-of-band resize of {name}");
    }

    fn unmap_out_of_band(&self, target_id: &str, lun_id: &str) {
        let done = match self {
            Sim::Ngx(s) => s.state().unmap(target_id, lun_id),
            Sim::Dsm(s) => s
                .state()
                .drop_mapping(target_id.parse().expect("DSM target id"), lun_id),
        };
        assert!(done, "out-of-band unmap");
    }

    async fn stop(&mut self) {
        match self {
            Sim::Ngx(s) => s.stop().await,
            Sim::Dsm(s) => s.stop().await,
        }
    }

    async fn restart(&mut self, addr: &str) {
        match self {
            Sim::Ngx(s) => s.restart(Some(addr)).await.expect("restart"),
            Sim::Dsm(s) => s.restart(addr).await.expect("restart"),
        }
    }

    fn lun_spec(&self, size: &str) -> LunSpec {
        let (location, pool) = match self {
            Sim::Ngx(_) => (None, Some("pool1".to_string())),
            Sim::Dsm(_) => (Some("/volume1".to_string()), None),
        };
        LunSpec {
            array_ref: ArrayRef {
                name: "array".into(),
            },
            name: None,
            size: Quantity(size.into()),
            location,
            pool,
            thin_provisioning: true,
            description: None,
            synology: None,
            ngxstorage: None,
            source: None,
            management_policy: ManagementPolicy::Manage,
            deletion_policy: None,
        }
    }
}

struct Env {
    sim: Sim,
    cluster: MemoryCluster,
    handle: ArrayHandle,
}

impl Env {
    async fn new(vendor: Vendor) -> Env {
        let sim = Sim::start(vendor).await;
        let backend = Backend::connect(sim.config())
            .await
            .expect("backend connects");
        Env {
            sim,
            cluster: MemoryCluster::default(),
            handle: ArrayHandle {
                key: "default/array".into(),
                backend,
                cache: ObservationCache::default(),
                // The tests decide when a resync happens.
                resync: Duration::from_secs(3600),
                dry_run: None,
            },
        }
    }

    fn resync(&self) {
        self.handle.cache.invalidate();
    }

    /// Stores a Lun as `kubectl apply` would: a new generation when the spec
    /// changed, annotations kept.
    fn apply_lun(&self, name: &str, spec: LunSpec) {
        let mut lun = self.cluster.lun(NS, name).unwrap_or_else(|| {
            let mut l = Lun::new(name, spec.clone());
            l.meta_mut().namespace = Some(NS.into());
            l.meta_mut().generation = Some(0);
            l
        });
        if lun.metadata.generation == Some(0) || lun.spec != spec {
            lun.meta_mut().generation = Some(lun.metadata.generation.unwrap_or(0) + 1);
        }
        lun.spec = spec;
        self.cluster.put_lun(lun);
    }

    fn annotate_lun(&self, name: &str, key: &str, value: &str) {
        let mut lun = self.cluster.lun(NS, name).expect("lun");
        lun.meta_mut()
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self.cluster.put_lun(lun);
    }

    fn apply_target(&self, name: &str, spec: IscsiTargetSpec) {
        let mut t = self.cluster.target(NS, name).unwrap_or_else(|| {
            let mut t = IscsiTarget::new(name, spec.clone());
            t.meta_mut().namespace = Some(NS.into());
            t.meta_mut().generation = Some(0);
            t
        });
        if t.metadata.generation == Some(0) || t.spec != spec {
            t.meta_mut().generation = Some(t.metadata.generation.unwrap_or(0) + 1);
        }
        t.spec = spec;
        self.cluster.put_target(t);
    }

    fn put_chap_secret(&self, name: &str, user: &str, password: &str, version: &str) {
        let mut data = BTreeMap::new();
        data.insert("username".to_string(), SecretString::new(user));
        data.insert("password".to_string(), SecretString::new(password));
        self.cluster.put_secret(
            NS,
            name,
            SecretData {
                data,
                resource_version: version.into(),
            },
        );
    }

    async fn reconcile_lun(&self, name: &str) -> Outcome<LunStatus> {
        let lun = self.cluster.lun(NS, name).expect("lun");
        let out = engine::lifecycle::reconcile(&lun, &self.handle, &self.cluster).await;
        // The status write.
        let mut stored = self.cluster.lun(NS, name).expect("lun");
        stored.status = Some(out.status.clone());
        self.cluster.put_lun(stored);
        out
    }

    async fn reconcile_target(&self, name: &str) -> Outcome<IscsiTargetStatus> {
        let t = self.cluster.target(NS, name).expect("target");
        let out = engine::lifecycle::reconcile(&t, &self.handle, &self.cluster).await;
        let mut stored = self.cluster.target(NS, name).expect("target");
        stored.status = Some(out.status.clone());
        self.cluster.put_target(stored);
        out
    }

    async fn delete_lun(&self, name: &str) -> Cleanup<LunStatus> {
        let lun = self.cluster.lun(NS, name).expect("lun");
        let out = engine::lifecycle::cleanup(&lun, Some(&self.handle), &self.cluster).await;
        if let Cleanup::Done { .. } = out {
            self.cluster.remove_lun(NS, name);
        }
        out
    }

    async fn delete_target(&self, name: &str) -> Cleanup<IscsiTargetStatus> {
        let t = self.cluster.target(NS, name).expect("target");
        let out = engine::lifecycle::cleanup(&t, Some(&self.handle), &self.cluster).await;
        if let Cleanup::Done { .. } = out {
            self.cluster.remove_target(NS, name);
        }
        out
    }

    fn lun_id(&self, name: &str) -> String {
        self.cluster
            .lun(NS, name)
            .and_then(|l| l.status)
            .and_then(|s| s.common.external_id)
            .expect("lun id")
    }

    fn target_id(&self, name: &str) -> String {
        self.cluster
            .target(NS, name)
            .and_then(|l| l.status)
            .and_then(|s| s.common.external_id)
            .expect("target id")
    }
}

fn condition<'a>(
    conds: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    conds
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {conds:?}"))
}

fn assert_ready<S>(
    out: &Outcome<S>,
    conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) {
    let ready = condition(conds, "Ready");
    let synced = condition(conds, "Synced");
    assert_eq!(
        (ready.status.as_str(), synced.status.as_str()),
        ("True", "True"),
        "{ready:?} {synced:?}"
    );
    assert_eq!(out.progress, Progress::Converged);
}

fn reasons(events: &[EngineEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.reason).collect()
}

macro_rules! both_vendors {
    ($($name:ident),* $(,)?) => {
        mod ngx {
            $( #[tokio::test] async fn $name() { super::$name(super::Vendor::NgxStorage).await } )*
        }
        mod synology {
            $( #[tokio::test] async fn $name() { super::$name(super::Vendor::Synology).await } )*
        }
    };
}

both_vendors!(
    create_resize_and_a_no_op_second_pass,
    map_unmap_and_chap_on_changed_off,
    drift_is_corrected_under_manage_and_only_reported_under_observe,
    adoption_by_external_name_and_a_clash_without_it,
    delete_under_each_policy,
    a_crash_between_create_and_status_write_creates_no_duplicate,
    the_array_down_and_back,
    pause_stops_every_call,
    a_spec_changed_while_paused_is_not_reported_as_observed,
    invalid_spec_never_reaches_the_array,
    a_target_is_ready_only_when_every_listed_lun_is_mapped,
    kstatus_conditions_say_what_a_gitops_tool_must_know,
    two_objects_never_both_act_on_one_array_name,
);

async fn create_resize_and_a_no_op_second_pass(vendor: Vendor) {
    let env = Env::new(vendor).await;
    env.apply_lun("db1", env.sim.lun_spec("1Gi"));
    let out = env.reconcile_lun("db1").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(reasons(&out.events), ["Created"]);
    assert_eq!(env.sim.luns_named("db1"), 1);
    assert_eq!(env.sim.lun_size("db1"), Some(GIB));
    let lun = env.cluster.lun(NS, "db1").expect("lun");
    let annotations = lun.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get(ANNOTATION_EXTERNAL_NAME),
        out.status.common.external_id.as_ref()
    );
    assert_eq!(
        out.status.at_array.as_ref().and_then(|a| a.size_bytes),
        Some(GIB as i64)
    );

    env.apply_lun("db1", env.sim.lun_spec("2Gi"));
    let out = env.reconcile_lun("db1").await;
    assert_eq!(reasons(&out.events), ["Updated"]);
    assert_eq!(env.sim.lun_size("db1"), Some(2 * GIB));

    // A second pass, after a resync, makes no changing call.
    env.resync();
    env.sim.clear_calls();
    let out = env.reconcile_lun("db1").await;
    assert_ready(&out, &out.status.common.conditions);
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
}

fn target_spec(luns: &[&str], chap: Option<&str>) -> IscsiTargetSpec {
    IscsiTargetSpec {
        array_ref: ArrayRef {
            name: "array".into(),
        },
        name: None,
        iqn: None,
        enabled: true,
        max_sessions: None,
        chap: chap.map(|s| ChapSettings {
            secret_ref: SecretRef { name: s.into() },
            mutual_secret_ref: None,
        }),
        luns: luns.iter().map(|l| l.to_string()).collect(),
        header_digest: None,
        data_digest: None,
        max_recv_seg_bytes: None,
        max_send_seg_bytes: None,
        portal_group: None,
        initiators: Vec::new(),
        management_policy: ManagementPolicy::Manage,
        deletion_policy: None,
    }
}

async fn map_unmap_and_chap_on_changed_off(vendor: Vendor) {
    let env = Env::new(vendor).await;
    for l in ["l1", "l2"] {
        env.apply_lun(l, env.sim.lun_spec("1Gi"));
        env.reconcile_lun(l).await;
    }
    env.put_chap_secret("chap", "initiator1", "Secret-one-12345", "1");
    env.apply_target("tgt1", target_spec(&["l1", "l2"], Some("chap")));
    let out = env.reconcile_target("tgt1").await;
    assert_ready(&out, &out.status.common.conditions);
    // One Mapped Event names every Lun mapped (the recorder keeps only the
    // first note of a series).
    assert_eq!(reasons(&out.events), ["Created", "Mapped"]);
    let mapped_note = &out.events[1].note;
    assert!(
        mapped_note.contains("Lun l1") && mapped_note.contains("Lun l2"),
        "{mapped_note}"
    );
    let mapped = out
        .status
        .at_array
        .as_ref()
        .expect("at array")
        .mapped_luns
        .clone();
    assert_eq!(
        mapped
            .iter()
            .map(|m| m.lun.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["l1", "l2"]
    );

    // The mapping shows from the LUN side too after a fresh observation.
    env.resync();
    let out_lun = env.reconcile_lun("l1").await;
    let target_id = env.target_id("tgt1");
    assert_eq!(
        out_lun
            .status
            .at_array
            .as_ref()
            .expect("at array")
            .mapped_targets,
        vec![target_id.clone()]
    );

    // A second pass changes nothing.
    env.sim.clear_calls();
    let out = env.reconcile_target("tgt1").await;
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );

    // CHAP password changed: sent again.
    env.put_chap_secret("chap", "initiator1", "Secret-two-12345", "2");
    let out = env.reconcile_target("tgt1").await;
    assert_eq!(reasons(&out.events), ["Updated"], "{:?}", out.events);
    let notes: String = out.events.iter().map(|e| e.note.clone()).collect();
    assert!(
        !notes.contains("Secret-two") && !notes.contains("Secret-one"),
        "{notes}"
    );

    // Unmap l2.
    env.apply_target("tgt1", target_spec(&["l1"], Some("chap")));
    let out = env.reconcile_target("tgt1").await;
    assert_eq!(reasons(&out.events), ["Unmapped"]);

    // CHAP off.
    env.apply_target("tgt1", target_spec(&["l1"], None));
    let out = env.reconcile_target("tgt1").await;
    assert_eq!(reasons(&out.events), ["Updated"]);
    assert!(out.events[0].note.contains("CHAP off"), "{:?}", out.events);
    env.resync();
    env.sim.clear_calls();
    let out = env.reconcile_target("tgt1").await;
    assert_ready(&out, &out.status.common.conditions);
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
}

async fn drift_is_corrected_under_manage_and_only_reported_under_observe(vendor: Vendor) {
    let env = Env::new(vendor).await;
    env.apply_lun("d1", env.sim.lun_spec("2Gi"));
    env.reconcile_lun("d1").await;
    env.apply_target("t1", target_spec(&["d1"], None));
    env.reconcile_target("t1").await;

    // Manage: an out-of-band unmap is undone, with a DriftCorrected Event.
    env.sim
        .unmap_out_of_band(&env.target_id("t1"), &env.lun_id("d1"));
    env.resync();
    let out = env.reconcile_target("t1").await;
    assert_eq!(reasons(&out.events), ["Mapped"]);
    assert_ready(&out, &out.status.common.conditions);

    // Manage: a LUN shrunk behind the operator's back is grown back.
    env.sim.resize_out_of_band("d1", GIB);
    env.resync();
    let out = env.reconcile_lun("d1").await;
    assert_eq!(reasons(&out.events), ["DriftCorrected"]);
    assert_eq!(env.sim.lun_size("d1"), Some(2 * GIB));

    // Observe: reported, not corrected, and no changing call at all.
    let mut spec = env.sim.lun_spec("2Gi");
    spec.management_policy = ManagementPolicy::Observe;
    env.apply_lun("d1", spec);
    env.sim.resize_out_of_band("d1", GIB);
    env.resync();
    env.sim.clear_calls();
    let out = env.reconcile_lun("d1").await;
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
    assert_eq!(env.sim.lun_size("d1"), Some(GIB));
    let ready = condition(&out.status.common.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Drifted")
    );
    assert!(ready.message.contains("spec.size"), "{}", ready.message);
}

async fn adoption_by_external_name_and_a_clash_without_it(vendor: Vendor) {
    let env = Env::new(vendor).await;
    // A LUN made outside the operator.
    let mut made = env.sim.lun_spec("1Gi");
    made.name = Some("legacy".into());
    let foreign = Lun::new("legacy-maker", made);
    let desired = engine::lun::desired(&foreign, &env.handle, None).expect("desired");
    let foreign_id = env
        .handle
        .backend
        .create_lun(&desired)
        .await
        .map(|c| c.id)
        .expect("out-of-band create");

    // Without external-name: AlreadyExists, and nothing is sent.
    env.apply_lun("legacy", env.sim.lun_spec("1Gi"));
    env.sim.clear_calls();
    let out = env.reconcile_lun("legacy").await;
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("False", "AlreadyExists")
    );
    assert!(synced.message.contains(&foreign_id), "{}", synced.message);
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
    assert_eq!(env.sim.luns_named("legacy"), 1);

    // With it: adopted.
    env.annotate_lun("legacy", ANNOTATION_EXTERNAL_NAME, &foreign_id);
    let out = env.reconcile_lun("legacy").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(
        out.status.common.external_id.as_deref(),
        Some(foreign_id.as_str())
    );

    // An adopted LUN is retained on delete by default.
    assert!(matches!(
        env.delete_lun("legacy").await,
        Cleanup::Done { .. }
    ));
    assert_eq!(env.sim.luns_named("legacy"), 1);
}

async fn delete_under_each_policy(vendor: Vendor) {
    let env = Env::new(vendor).await;
    // Created by the operator, default policy: deleted (unmapped first).
    env.apply_lun("gone", env.sim.lun_spec("1Gi"));
    env.reconcile_lun("gone").await;
    env.apply_target("t1", target_spec(&["gone"], None));
    env.reconcile_target("t1").await;
    // Held while the target lists it.
    match env.delete_lun("gone").await {
        Cleanup::Held(out) => {
            let ready = condition(&out.status.common.conditions, "Ready");
            assert_eq!(ready.reason, "Deleting");
            assert!(ready.message.contains("t1"), "{}", ready.message);
        }
        Cleanup::Done { .. } => panic!("a listed LUN must be held"),
    }
    assert_eq!(env.sim.luns_named("gone"), 1);
    env.apply_target("t1", target_spec(&[], None));
    env.reconcile_target("t1").await;
    match env.delete_lun("gone").await {
        Cleanup::Done { events } => assert_eq!(reasons(&events), ["Deleted"]),
        Cleanup::Held(out) => panic!("held: {:?}", out.status.common.conditions),
    }
    assert_eq!(env.sim.luns_named("gone"), 0);

    // Retain: left on the array.
    let mut spec = env.sim.lun_spec("1Gi");
    spec.deletion_policy = Some(DeletionPolicy::Retain);
    env.apply_lun("kept", spec);
    env.reconcile_lun("kept").await;
    assert!(matches!(env.delete_lun("kept").await, Cleanup::Done { .. }));
    assert_eq!(env.sim.luns_named("kept"), 1);

    // Already gone from the array: success.
    env.apply_lun("vanished", env.sim.lun_spec("1Gi"));
    env.reconcile_lun("vanished").await;
    let id = env.lun_id("vanished");
    env.handle
        .backend
        .delete_lun(&id)
        .await
        .expect("out-of-band delete");
    env.resync();
    assert!(matches!(
        env.delete_lun("vanished").await,
        Cleanup::Done { .. }
    ));

    // The target itself: deleted with its mappings.
    env.apply_lun("mapped", env.sim.lun_spec("1Gi"));
    env.reconcile_lun("mapped").await;
    env.apply_target("t1", target_spec(&["mapped"], None));
    let out = env.reconcile_target("t1").await;
    assert_eq!(
        reasons(&out.events),
        ["Mapped"],
        "{:?}",
        out.status.common.conditions
    );
    // DSM drops a target's mappings with it: one call, no unmap first.
    let expected: &[&str] = match vendor {
        Vendor::Synology => &["Deleted"],
        Vendor::NgxStorage => &["Unmapped", "Deleted"],
    };
    match env.delete_target("t1").await {
        Cleanup::Done { events } => assert_eq!(reasons(&events), expected),
        Cleanup::Held(out) => panic!("held: {:?}", out.status.common.conditions),
    }
    // Either way the LUN is left unmapped on the array.
    env.resync();
    let out = env.reconcile_lun("mapped").await;
    let mapped = out
        .status
        .at_array
        .as_ref()
        .map(|a| a.mapped_targets.clone())
        .unwrap_or_default();
    assert!(mapped.is_empty(), "{mapped:?}");
}

async fn a_crash_between_create_and_status_write_creates_no_duplicate(vendor: Vendor) {
    let env = Env::new(vendor).await;
    // The create reaches the array but its answer is lost (connection cut
    // after the array acted).
    env.sim.arm_create_fault(FaultAction::DropAfterApply);
    env.apply_lun("c1", env.sim.lun_spec("1Gi"));
    let out = env.reconcile_lun("c1").await;
    assert_eq!(env.sim.luns_named("c1"), 1, "created once");
    let lun = env.cluster.lun(NS, "c1").expect("lun");
    let annotations = lun.metadata.annotations.clone().unwrap_or_default();
    assert!(annotations.contains_key(ANNOTATION_CREATE_PENDING));
    match vendor {
        // NGX: the answer is lost, so the outcome is unknown and reported.
        Vendor::NgxStorage => assert_eq!(out.progress, Progress::Failed),
        // DSM: the client itself looks the name up after a lost create
        // answer (issue #3), so the create is known to have happened.
        Vendor::Synology => assert_eq!(out.progress, Progress::Converged),
    }

    // The next pass finds it by name instead of creating it again.
    let out = env.reconcile_lun("c1").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(env.sim.luns_named("c1"), 1, "no duplicate");
    let lun = env.cluster.lun(NS, "c1").expect("lun");
    assert!(
        lun.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(ANNOTATION_EXTERNAL_NAME)
    );

    // The operator dies after the create returned, before recording it: the
    // apiserver refuses the "succeeded" write.
    env.apply_lun("c2", env.sim.lun_spec("1Gi"));
    let annotations_before = env.cluster.annotate_calls();
    let cluster = env.cluster.clone();
    // Let the pending mark through, then fail the rest.
    let watcher = tokio::spawn(async move {
        loop {
            if cluster.annotate_calls() > annotations_before {
                cluster.fail_annotations(true);
                return;
            }
            tokio::task::yield_now().await;
        }
    });
    let out = env.reconcile_lun("c2").await;
    watcher.await.expect("watcher");
    env.cluster.fail_annotations(false);
    assert_eq!(env.sim.luns_named("c2"), 1);
    if out.progress == Progress::Converged {
        // The watcher lost the race: the record went through. Still one LUN.
        return;
    }
    env.handle.cache.invalidate();
    let out = env.reconcile_lun("c2").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(
        env.sim.luns_named("c2"),
        1,
        "no duplicate after the restart"
    );
    let _ = env.sim.create_op();
}

async fn the_array_down_and_back(vendor: Vendor) {
    let mut env = Env::new(vendor).await;
    env.apply_lun("u1", env.sim.lun_spec("1Gi"));
    env.reconcile_lun("u1").await;
    let addr = env
        .sim
        .config()
        .endpoint
        .trim_start_matches("https://")
        .to_string();
    env.sim.stop().await;
    env.resync();
    let out = env.reconcile_lun("u1").await;
    assert_eq!(out.progress, Progress::Failed);
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("False", "ArrayUnreachable")
    );
    assert_eq!(out.events.first().map(|e| e.reason), Some("ReconcileError"));

    env.sim.restart(&addr).await;
    let out = env.reconcile_lun("u1").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(env.sim.luns_named("u1"), 1);
}

async fn pause_stops_every_call(vendor: Vendor) {
    let env = Env::new(vendor).await;
    env.apply_lun("p1", env.sim.lun_spec("1Gi"));
    env.annotate_lun("p1", ANNOTATION_PAUSED, "true");
    env.sim.clear_calls();
    let out = env.reconcile_lun("p1").await;
    assert!(env.sim.calls().is_empty(), "{:?}", env.sim.calls());
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "Paused");
    assert_eq!(env.sim.luns_named("p1"), 0);
}

/// kstatus (Flux) reads `observedGeneration` with `Ready`: a spec changed
/// while paused was not applied, so the status keeps the generation last
/// reconciled, and the old `Ready` is not taken for the new spec's.
async fn a_spec_changed_while_paused_is_not_reported_as_observed(vendor: Vendor) {
    let env = Env::new(vendor).await;
    env.apply_lun("p2", env.sim.lun_spec("1Gi"));
    let out = env.reconcile_lun("p2").await;
    assert_ready(&out, &out.status.common.conditions);
    let reconciled = out.status.common.observed_generation;
    assert!(reconciled.is_some());
    env.annotate_lun("p2", ANNOTATION_PAUSED, "true");
    env.apply_lun("p2", env.sim.lun_spec("2Gi"));
    let generation = env
        .cluster
        .lun(NS, "p2")
        .expect("object")
        .metadata
        .generation;
    assert_ne!(
        generation, reconciled,
        "the spec change is a new generation"
    );
    env.sim.clear_calls();
    let out = env.reconcile_lun("p2").await;
    assert!(env.sim.calls().is_empty(), "{:?}", env.sim.calls());
    assert_eq!(out.status.common.observed_generation, reconciled);
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "Paused");
}

async fn invalid_spec_never_reaches_the_array(vendor: Vendor) {
    let env = Env::new(vendor).await;
    // The other vendor's placement.
    let mut spec = env.sim.lun_spec("1Gi");
    std::mem::swap(&mut spec.location, &mut spec.pool);
    if spec.location.is_some() {
        spec.location = Some("/volume1".into());
    } else {
        spec.pool = Some("pool1".into());
    }
    env.apply_lun("bad", spec);
    env.sim.clear_calls();
    let out = env.reconcile_lun("bad").await;
    assert!(env.sim.calls().is_empty(), "{:?}", env.sim.calls());
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "InvalidSpec");
    assert!(synced.message.starts_with("spec."), "{}", synced.message);
}

/// Session expiry in the middle of a reconcile (DSM: the session is dropped
/// between the LUN create and the mapping).
#[tokio::test]
async fn dsm_session_expiry_mid_reconcile_is_survived() {
    let env = Env::new(Vendor::Synology).await;
    env.apply_lun("s1", env.sim.lun_spec("1Gi"));
    env.reconcile_lun("s1").await;
    if let Sim::Dsm(s) = &env.sim {
        s.state().expire_all_sessions();
    }
    env.apply_target("st", target_spec(&["s1"], None));
    let out = env.reconcile_target("st").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(reasons(&out.events), ["Created", "Mapped"]);
}

/// Reconciling many Luns of one array shares one observation.
#[tokio::test]
async fn many_luns_share_one_list_call_per_object_type() {
    for vendor in [Vendor::NgxStorage, Vendor::Synology] {
        let env = Env::new(vendor).await;
        for i in 0..12 {
            env.apply_lun(&format!("m{i}"), env.sim.lun_spec("1Gi"));
        }
        env.sim.clear_calls();
        for i in 0..12 {
            env.reconcile_lun(&format!("m{i}")).await;
        }
        let calls = env.sim.calls();
        let lists: Vec<&RecordedCall> = calls
            .iter()
            .filter(|c| match vendor {
                Vendor::NgxStorage => c.http_method == "GET",
                Vendor::Synology => c.operation.ends_with(".list"),
            })
            .collect();
        let creates = env.sim.mutating_calls().len();
        assert_eq!(creates, 12, "{vendor:?}: {:?}", env.sim.mutating_calls());
        // One observation for all twelve: each object type listed once.
        let mut kinds: Vec<&str> = lists.iter().map(|c| c.operation.as_str()).collect();
        let total = kinds.len();
        kinds.sort();
        kinds.dedup();
        assert_eq!(
            total,
            kinds.len(),
            "{vendor:?}: a list call repeated: {lists:?}"
        );
    }
}

/// CHAP secrets and array credentials never reach a status, an Event, an
/// error or a Debug print.
#[tokio::test]
async fn secrets_never_reach_status_events_or_errors() {
    for vendor in [Vendor::NgxStorage, Vendor::Synology] {
        let env = Env::new(vendor).await;
        env.apply_lun("s1", env.sim.lun_spec("1Gi"));
        env.reconcile_lun("s1").await;
        env.put_chap_secret("chap", "initiator1", "Leak-me-not-1234", "1");
        env.apply_target("st", target_spec(&["s1"], Some("chap")));
        let first = env.reconcile_target("st").await;
        env.put_chap_secret("chap", "initiator1", "Leak-me-not-5678", "2");
        let second = env.reconcile_target("st").await;
        for out in [&first, &second] {
            let text = format!(
                "{} {:?} {:?}",
                serde_json::to_string(&out.status).expect("json"),
                out.events,
                out.status
            );
            assert!(
                !text.contains("Leak-me-not"),
                "{vendor:?}: a CHAP secret leaked: {text}"
            );
        }
        assert!(!format!("{:?}", env.handle).contains(NGX_TOKEN));
        assert!(!format!("{:?}", env.sim.config()).contains(DEFAULT_PASSWORD));

        // Wrong credentials: the error names the problem, not the secret.
        let mut bad = env.sim.config();
        let wrong = "Wrong-Password-or-Token-42";
        bad.credentials = match vendor {
            Vendor::NgxStorage => Credentials::Token(SecretString::new(wrong)),
            Vendor::Synology => Credentials::UserPassword {
                username: DEFAULT_USERNAME.into(),
                password: SecretString::new(wrong),
            },
        };
        let err = Backend::connect(bad).await.expect_err("refused");
        let text = format!("{err} {err:?}");
        assert!(!text.contains(wrong), "{vendor:?}: {text}");
        assert_eq!(
            err.class,
            array_operator::array::error::ErrorClass::Unauthorized,
            "{vendor:?}: {text}"
        );
    }
}

/// Target fields the array's vendor cannot serve are refused before any
/// call: `Unsupported` for a feature the vendor lacks, `InvalidSpec` for the
/// other vendor's fields.
#[tokio::test]
async fn vendor_only_target_fields_never_reach_the_array() {
    let env = Env::new(Vendor::Synology).await;
    let mut spec = target_spec(&[], None);
    spec.initiators = vec!["iqn.1998-01.com.vmware:esx01".into()];
    env.apply_target("acl", spec);
    env.sim.clear_calls();
    let out = env.reconcile_target("acl").await;
    assert!(env.sim.calls().is_empty(), "{:?}", env.sim.calls());
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "Unsupported");
    assert!(
        synced.message.starts_with("spec.initiators"),
        "{}",
        synced.message
    );

    let env = Env::new(Vendor::NgxStorage).await;
    let mut spec = target_spec(&[], None);
    spec.max_recv_seg_bytes = Some(65536);
    env.apply_target("seg", spec);
    env.sim.clear_calls();
    let out = env.reconcile_target("seg").await;
    assert!(env.sim.calls().is_empty(), "{:?}", env.sim.calls());
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "InvalidSpec");
    assert!(
        synced.message.starts_with("spec.maxRecvSegBytes"),
        "{}",
        synced.message
    );
}

/// A clone waits for its source Lun to exist on the array, then is made
/// from it (DSM clones LUNs; NGX clones snapshots only).
#[tokio::test]
async fn a_clone_waits_for_its_source_then_is_made_from_it() {
    use array_operator::crd::lun::LunSource;
    use array_operator::crd::shared::LocalObjectRef;
    let env = Env::new(Vendor::Synology).await;
    let mut spec = env.sim.lun_spec("1Gi");
    spec.source = Some(LunSource {
        lun_ref: Some(LocalObjectRef {
            name: "base".into(),
        }),
        snapshot: None,
    });
    env.apply_lun("copy", spec);
    env.sim.clear_calls();
    let out = env.reconcile_lun("copy").await;
    assert_eq!(out.progress, Progress::Waiting);
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
    let synced = condition(&out.status.common.conditions, "Synced");
    assert!(
        synced.message.contains("spec.source.lunRef"),
        "{}",
        synced.message
    );

    env.apply_lun("base", env.sim.lun_spec("1Gi"));
    env.reconcile_lun("base").await;
    let out = env.reconcile_lun("copy").await;
    assert_ready(&out, &out.status.common.conditions);
    assert!(
        out.events[0].note.starts_with("cloned LUN"),
        "{:?}",
        out.events
    );
    assert!(
        env.sim
            .mutating_calls()
            .iter()
            .any(|c| c == "SYNO.Core.ISCSI.LUN.clone"),
        "{:?}",
        env.sim.mutating_calls()
    );
    assert_eq!(env.sim.luns_named("copy"), 1);
}

/// Issue 8: a target listing Luns that are not created yet is not Ready
/// (it names them), however well the target itself matches; once they
/// exist and are mapped it is, and one Mapped Event names them all.
async fn a_target_is_ready_only_when_every_listed_lun_is_mapped(vendor: Vendor) {
    let env = Env::new(vendor).await;
    env.apply_lun("a", env.sim.lun_spec("1Gi"));
    env.apply_lun("b", env.sim.lun_spec("1Gi"));
    env.apply_target("t", target_spec(&["a", "b"], None));
    let out = env.reconcile_target("t").await;
    let ready = condition(&out.status.common.conditions, "Ready");
    assert_eq!(ready.status, "False", "{ready:?}");
    assert!(
        ready.message.contains("a, b") && ready.message.contains("spec.luns"),
        "{}",
        ready.message
    );
    assert_eq!(out.progress, Progress::Waiting);
    let reconciling = condition(&out.status.common.conditions, "Reconciling");
    assert_eq!(reconciling.status, "True", "{reconciling:?}");

    // One Lun appears: still not Ready, and it is mapped already.
    env.reconcile_lun("a").await;
    let out = env.reconcile_target("t").await;
    let ready = condition(&out.status.common.conditions, "Ready");
    assert_eq!(ready.status, "False", "{ready:?}");
    assert!(ready.message.contains("Lun b"), "{}", ready.message);
    let mapped = |out: &Outcome<IscsiTargetStatus>| {
        out.status
            .at_array
            .as_ref()
            .map(|a| a.mapped_lun_count)
            .unwrap_or_default()
    };
    assert_eq!(mapped(&out), 1);

    env.reconcile_lun("b").await;
    let out = env.reconcile_target("t").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(mapped(&out), 2);
    assert_eq!(reasons(&out.events), ["Mapped"], "{:?}", out.events);
    assert!(out.events[0].note.contains("Lun b"), "{:?}", out.events);
}

/// Issue 8: Flux reads kstatus. An invalid spec is Stalled (a person must
/// act) and not Reconciling; a converged object is neither; every
/// condition carries the generation. The TYPE column (`atArray.lunType`)
/// is filled from the first pass, not only after the next list.
async fn kstatus_conditions_say_what_a_gitops_tool_must_know(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let mut spec = env.sim.lun_spec("1Gi");
    match vendor {
        // The other vendor's placement: the schema cannot tell, the
        // adapter's rules can.
        Vendor::Synology => spec.pool = Some("pool1".into()),
        Vendor::NgxStorage => spec.location = Some("/volume1".into()),
    }
    env.apply_lun("bad", spec);
    env.sim.clear_calls();
    let out = env.reconcile_lun("bad").await;
    let conds = &out.status.common.conditions;
    let stalled = condition(conds, "Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec"),
        "{stalled:?}"
    );
    assert_eq!(condition(conds, "Reconciling").status, "False");
    assert_eq!(out.progress, Progress::Stalled);
    assert!(env.sim.calls().is_empty(), "{:?}", env.sim.calls());
    assert!(
        env.cluster.annotate_calls() == 0,
        "nothing is written for a spec the vendor refuses"
    );

    env.apply_lun("good", env.sim.lun_spec("1Gi"));
    let out = env.reconcile_lun("good").await;
    let conds = &out.status.common.conditions;
    assert_ready(&out, conds);
    assert_eq!(condition(conds, "Stalled").status, "False");
    assert_eq!(condition(conds, "Reconciling").status, "False");
    let generation = env
        .cluster
        .lun(NS, "good")
        .and_then(|l| l.metadata.generation);
    assert!(conds.iter().all(|c| c.observed_generation == generation));
    let lun_type = out
        .status
        .at_array
        .as_ref()
        .and_then(|a| a.lun_type.clone());
    assert!(
        lun_type.is_some_and(|t| !t.is_empty()),
        "the TYPE column is blank"
    );
}

/// Issue 9, hostile arrays: one LUN record the array lists but that cannot
/// be read fails that Lun alone (never recreated, never taken for gone),
/// while the other Luns on the array converge.
#[tokio::test]
async fn one_malformed_record_fails_its_own_object_alone() {
    let env = Env::new(Vendor::NgxStorage).await;
    for l in ["good", "bad"] {
        env.apply_lun(l, env.sim.lun_spec("1Gi"));
        let out = env.reconcile_lun(l).await;
        assert_ready(&out, &out.status.common.conditions);
    }
    let bad_id = env
        .cluster
        .lun(NS, "bad")
        .and_then(|l| engine::lun_external_id(&l))
        .expect("bad was created");
    let Sim::Ngx(sim) = &env.sim else {
        unreachable!("an NGX environment")
    };
    // Both dialects' size field, so the record breaks whichever is read.
    sim.state()
        .tamper(&bad_id, "vol_size", serde_json::json!("lots"));
    sim.state()
        .tamper(&bad_id, "size", serde_json::json!("lots"));
    env.handle.cache.invalidate();
    env.sim.clear_calls();

    let out = env.reconcile_lun("good").await;
    assert_ready(&out, &out.status.common.conditions);
    let out = env.reconcile_lun("bad").await;
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.status, "False", "{synced:?}");
    assert!(synced.message.contains(&bad_id), "{}", synced.message);
    assert_eq!(env.sim.luns_named("bad"), 1, "never recreated");
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );

    // Deleting it is held, not taken for "already gone".
    let mut lun = env.cluster.lun(NS, "bad").expect("lun");
    lun.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    match engine::lifecycle::cleanup(&lun, Some(&env.handle), &env.cluster).await {
        Cleanup::Held(_) => {}
        Cleanup::Done { .. } => panic!("an unreadable LUN was taken for gone"),
    }
    assert_eq!(env.sim.luns_named("bad"), 1);
}

/// Issue 9, one array object one claimant: two Luns asking for the same
/// array-side name never both act. Whichever comes second, before or after
/// the first created it, is `Conflict` naming the other and sends nothing.
async fn two_objects_never_both_act_on_one_array_name(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let named = |name: &str| {
        let mut spec = env.sim.lun_spec("1Gi");
        spec.name = Some(name.into());
        spec
    };
    // After: "a" created "shared"; "b" claims the same name.
    env.apply_lun("a", named("shared"));
    let out = env.reconcile_lun("a").await;
    assert_ready(&out, &out.status.common.conditions);
    env.apply_lun("b", named("shared"));
    env.sim.clear_calls();
    let writes = env.cluster.annotate_calls();
    let out = env.reconcile_lun("b").await;
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "Conflict", "{synced:?}");
    assert!(
        synced.message.contains("Lun default/a"),
        "{}",
        synced.message
    );
    assert_eq!(
        condition(&out.status.common.conditions, "Stalled").status,
        "True"
    );
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
    assert_eq!(env.cluster.annotate_calls(), writes, "b wrote no record");

    // Before: "d" asks first for a name "c" (the earlier object) also wants.
    env.apply_lun("c", named("twice"));
    env.apply_lun("d", named("twice"));
    env.sim.clear_calls();
    let out = env.reconcile_lun("d").await;
    let synced = condition(&out.status.common.conditions, "Synced");
    assert_eq!(synced.reason, "Conflict", "{synced:?}");
    assert!(
        synced.message.contains("Lun default/c"),
        "{}",
        synced.message
    );
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
    let out = env.reconcile_lun("c").await;
    assert_ready(&out, &out.status.common.conditions);
    assert_eq!(env.sim.luns_named("twice"), 1);
}

/// Issue 10: a DSM target created without an IQN gets the one the adapter
/// generated in its model, so its create costs no target list.
#[tokio::test]
async fn a_dsm_target_without_an_iqn_needs_no_list_after_its_create() {
    let env = Env::new(Vendor::Synology).await;
    env.apply_target("t0", target_spec(&[], None));
    env.reconcile_target("t0").await;
    env.apply_target("t1", target_spec(&[], None));
    env.sim.clear_calls();
    let out = env.reconcile_target("t1").await;
    assert_ready(&out, &out.status.common.conditions);
    let lists: Vec<String> = env
        .sim
        .calls()
        .into_iter()
        .map(|c| c.operation)
        .filter(|op| op.contains("list"))
        .collect();
    assert!(lists.is_empty(), "{lists:?}");
    let iqn = out
        .status
        .at_array
        .as_ref()
        .and_then(|a| a.iqn.clone())
        .unwrap_or_default();
    assert!(iqn.starts_with("iqn.2000-01.com.synology:"), "{iqn:?}");
    // What the status says is what the array holds.
    env.resync();
    let again = env.reconcile_target("t1").await;
    let observed = again.status.at_array.and_then(|a| a.iqn);
    assert_eq!(observed.as_deref(), Some(iqn.as_str()));
    assert!(again.events.is_empty(), "{:?}", again.events);
}
