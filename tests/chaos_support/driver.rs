//! Every call from the ownership and chaos tests into the engine, in one
//! place: when the engine's API changes, this is the file to adapt.
//!
//! The driver plays the controller for one array: a pass over one object
//! adds the finalizer, reconciles (or, for an object being deleted, cleans
//! up and removes the finalizer when cleanup is done) and writes the status
//! back, as the controllers in `src/controller` do. A restart drops the
//! Backend and the ObservationCache and starts again from the Kubernetes
//! state alone.

use std::time::Duration;

use array_operator::array::backend::{Backend, BackendConfig};
use array_operator::crd::iscsi_target::IscsiTargetStatus;
use array_operator::crd::lun::LunStatus;
use array_operator::crd::shared::{CommonStatus, FINALIZER};
use array_operator::crd::storage_array::Vendor;
use array_operator::crd::{IscsiTarget, Lun};
use array_operator::engine::lifecycle::Managed;
use array_operator::engine::{self, ArrayHandle, Cleanup, EngineEvent, ObservationCache, Progress};
use array_operator::model::Placement;
use array_operator::reconcile::lun::DesiredLun;
use array_operator::reconcile::target::DesiredTarget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};

use super::cluster::FakeCluster;
use super::crash::CrashAfter;

/// The namespace every test object lives in.
pub const NS: &str = "default";

/// Which kind a pass is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A Lun.
    Lun,
    /// An IscsiTarget.
    Target,
}

/// How a pass ended, in the controller's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Reconciled; come back after the resync interval.
    Converged,
    /// Waiting for something that changes by itself; come back soon.
    Waiting,
    /// Failed; come back after the backoff.
    Failed,
    /// Cleanup is done: the finalizer is removed and the object gone.
    Removed,
    /// Cleanup is not done yet.
    Held,
}

/// One condition, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    /// `True` or `False`.
    pub status: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
}

/// What one pass did.
#[derive(Clone, Debug)]
pub struct Pass {
    /// How it ended.
    pub verdict: Verdict,
    /// The `Ready` condition written, if any.
    pub ready: Option<Cond>,
    /// The `Synced` condition written, if any.
    pub synced: Option<Cond>,
    /// `status.externalId` written.
    pub external_id: Option<String>,
    /// Events, as `Type Reason: note`.
    pub events: Vec<String>,
    /// True when the pass changed the object in a way that wakes the
    /// controller at once (see [`watch_key`]).
    pub woke: bool,
}

/// What the controller's watch compares to decide whether a change to an
/// object wakes it: the controllers' own predicate
/// ([`array_operator::controller::managed::wake_hash`]), so the operator's
/// status and create-record writes do not.
pub fn watch_key(meta: &ObjectMeta) -> String {
    array_operator::controller::managed::wake_hash_of(meta).to_string()
}

fn cond(conds: &[Condition], type_: &str) -> Option<Cond> {
    conds.iter().find(|c| c.type_ == type_).map(|c| Cond {
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    })
}

fn events(events: &[EngineEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{:?} {}: {}", e.type_, e.reason, e.note))
        .collect()
}

fn verdict(p: Progress) -> Verdict {
    match p {
        Progress::Converged => Verdict::Converged,
        Progress::Waiting => Verdict::Waiting,
        Progress::Failed | Progress::Stalled => Verdict::Failed,
    }
}

impl Pass {
    fn of(verdict: Verdict, common: &CommonStatus, ev: &[EngineEvent]) -> Pass {
        Pass {
            verdict,
            ready: cond(&common.conditions, "Ready"),
            synced: cond(&common.conditions, "Synced"),
            external_id: common.external_id.clone(),
            events: events(ev),
            woke: false,
        }
    }
}

/// What the driver needs of one kind's objects in the fake cluster.
trait Stored: Managed {
    fn get(c: &FakeCluster, name: &str) -> Option<Self>;
    fn add_finalizer(c: &FakeCluster, name: &str, uid: &str);
    fn remove_finalizer(c: &FakeCluster, name: &str, uid: &str);
    fn write_status(c: &FakeCluster, name: &str, uid: &str, status: Self::Status);
    fn common(status: &Self::Status) -> &CommonStatus;
}

impl Stored for Lun {
    fn get(c: &FakeCluster, name: &str) -> Option<Self> {
        c.lun(NS, name)
    }
    fn add_finalizer(c: &FakeCluster, name: &str, uid: &str) {
        c.add_lun_finalizer(NS, name, uid)
    }
    fn remove_finalizer(c: &FakeCluster, name: &str, uid: &str) {
        c.remove_lun_finalizer(NS, name, uid)
    }
    fn write_status(c: &FakeCluster, name: &str, uid: &str, status: LunStatus) {
        c.write_lun_status(NS, name, uid, status)
    }
    fn common(status: &LunStatus) -> &CommonStatus {
        &status.common
    }
}

impl Stored for IscsiTarget {
    fn get(c: &FakeCluster, name: &str) -> Option<Self> {
        c.target(NS, name)
    }
    fn add_finalizer(c: &FakeCluster, name: &str, uid: &str) {
        c.add_target_finalizer(NS, name, uid)
    }
    fn remove_finalizer(c: &FakeCluster, name: &str, uid: &str) {
        c.remove_target_finalizer(NS, name, uid)
    }
    fn write_status(c: &FakeCluster, name: &str, uid: &str, status: IscsiTargetStatus) {
        c.write_target_status(NS, name, uid, status)
    }
    fn common(status: &IscsiTargetStatus) -> &CommonStatus {
        &status.common
    }
}

fn has_finalizer(meta: &ObjectMeta) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// The controller for one array.
pub struct Driver {
    /// The fake Kubernetes API.
    pub cluster: FakeCluster,
    config: BackendConfig,
    handle: ArrayHandle,
}

/// Connects as the StorageArray controller does: a refused connect (an
/// injected fault can hit the probes a connect makes) is tried again.
async fn handle(config: &BackendConfig) -> ArrayHandle {
    let mut attempt = 0;
    let backend = loop {
        attempt += 1;
        match Backend::connect(config.clone()).await {
            Ok(b) => break b,
            Err(e) if attempt >= 50 => panic!("the operator cannot connect: {e}"),
            Err(_) => continue,
        }
    };
    ArrayHandle {
        key: "default/array".into(),
        backend,
        cache: ObservationCache::default(),
        // The tests decide when the view is refreshed (see `resync`).
        resync: Duration::from_secs(24 * 3600),
        dry_run: None,
    }
}

impl Driver {
    /// Connects to the array.
    pub async fn connect(config: BackendConfig, cluster: FakeCluster) -> Driver {
        let handle = handle(&config).await;
        Driver {
            cluster,
            config,
            handle,
        }
    }

    /// A restart after a crash: a fresh Backend (new client, new session)
    /// and a fresh ObservationCache. The old session is not logged out.
    pub async fn restart(&mut self) {
        self.handle = handle(&self.config).await;
    }

    /// The next pass re-lists the array (the resync interval passed).
    pub fn resync(&self) {
        self.handle.cache.invalidate();
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        self.handle.vendor()
    }

    /// One controller pass over one object; `None` when it does not exist.
    pub async fn pass(&self, kind: Kind, name: &str) -> Option<Pass> {
        self.pass_with(kind, name, true).await
    }

    /// A pass whose last step (the status write, or the finalizer removal
    /// after cleanup) is lost: the operator died after the engine returned,
    /// or the apiserver refused the write. Then the operator restarts.
    pub async fn pass_losing_its_last_write(&mut self, kind: Kind, name: &str) -> Option<Pass> {
        let p = self.pass_with(kind, name, false).await;
        self.restart().await;
        p
    }

    async fn pass_with(&self, kind: Kind, name: &str, write: bool) -> Option<Pass> {
        match kind {
            Kind::Lun => self.kind_pass::<Lun>(name, write).await,
            Kind::Target => self.kind_pass::<IscsiTarget>(name, write).await,
        }
    }

    /// A pass that may crash after `crash_after` polls. `Err(())` is a
    /// crash: the operator is restarted from the Kubernetes state alone.
    pub async fn pass_or_crash(
        &mut self,
        kind: Kind,
        name: &str,
        crash_after: Option<u32>,
    ) -> Result<Option<Pass>, ()> {
        let out = CrashAfter::new(self.pass(kind, name), crash_after).await;
        match out {
            Some(p) => Ok(p),
            None => {
                self.restart().await;
                Err(())
            }
        }
    }

    /// One pass over one object of kind `K`, as the controller makes it.
    async fn kind_pass<K: Stored>(&self, name: &str, write: bool) -> Option<Pass> {
        let obj = K::get(&self.cluster, name)?;
        let before = watch_key(obj.meta());
        let uid = obj.meta().uid.clone().unwrap_or_default();
        let mut pass = if obj.meta().deletion_timestamp.is_some() {
            if !has_finalizer(obj.meta()) {
                return None;
            }
            match engine::lifecycle::cleanup(&obj, Some(&self.handle), &self.cluster).await {
                Cleanup::Done { events: ev } => {
                    if write {
                        K::remove_finalizer(&self.cluster, name, &uid);
                    }
                    Pass {
                        verdict: Verdict::Removed,
                        ready: None,
                        synced: None,
                        external_id: None,
                        events: events(&ev),
                        woke: false,
                    }
                }
                Cleanup::Held(out) => {
                    let p = Pass::of(Verdict::Held, K::common(&out.status), &out.events);
                    if write {
                        K::write_status(&self.cluster, name, &uid, out.status);
                    }
                    p
                }
            }
        } else {
            K::add_finalizer(&self.cluster, name, &uid);
            let obj = K::get(&self.cluster, name)?;
            let out = engine::lifecycle::reconcile(&obj, &self.handle, &self.cluster).await;
            let p = Pass::of(verdict(out.progress), K::common(&out.status), &out.events);
            if write {
                K::write_status(&self.cluster, name, &uid, out.status);
            }
            p
        };
        pass.woke = K::get(&self.cluster, name).is_some_and(|o| watch_key(o.meta()) != before);
        Some(pass)
    }

    /// Makes a LUN on the array outside the operator (another admin's), in
    /// the placement the simulator has. Returns its id.
    pub async fn create_foreign_lun(&self, name: &str, size_bytes: u64) -> String {
        self.try_create_foreign_lun(name, size_bytes)
            .await
            .expect("an out-of-band LUN create")
    }

    /// [`Driver::create_foreign_lun`], with the array's refusal as text.
    pub async fn try_create_foreign_lun(
        &self,
        name: &str,
        size_bytes: u64,
    ) -> Result<String, String> {
        let placement = match self.vendor() {
            Vendor::NgxStorage => Placement::Pool("pool1".into()),
            Vendor::Synology => Placement::Volume("/volume1".into()),
        };
        let desired = DesiredLun {
            name: name.to_string(),
            size_bytes,
            placement,
            thin: true,
            description: None,
            settings: Default::default(),
            source: None,
            fixed_settings: Vec::new(),
            type_word: None,
        };
        self.handle
            .backend
            .create_lun(&desired)
            .await
            .map(|c| c.id)
            .map_err(|e| e.to_string())
    }

    /// Makes a target on the array outside the operator. Returns its id.
    pub async fn create_foreign_target(&self, name: &str) -> String {
        let desired = DesiredTarget {
            name: name.to_string(),
            enabled: true,
            settings: Default::default(),
            chap: None,
            initiators: Vec::new(),
            luns: Vec::new(),
        };
        self.handle
            .backend
            .create_target(&desired)
            .await
            .map(|c| c.id)
            .expect("an out-of-band target create")
    }

    /// Logs out (the end of a run that did not crash).
    pub async fn close(&self) {
        self.handle.backend.close().await;
    }
}
