//! One interface over both vendors, in the vendor-neutral terms of
//! [`crate::model`] and the operations of [`crate::reconcile`]. The
//! controllers only ever talk to a [`Backend`]; each adapter translates to
//! its vendor client (`dsm.rs`, `ngx.rs`).
//!
//! Contract every adapter keeps:
//! - `list_*` is one batched observation (one list call per object type,
//!   plus what the vendor needs to fill the view, never one call per object).
//! - Deletes and unmaps of something already gone succeed.
//! - A create is never resent after an ambiguous failure: the error says
//!   `Unreachable` and the caller re-observes.
//! - Errors keep the vendor code and the API call; secrets never enter them.

pub mod dsm;
pub mod ngx;
pub mod replication;
pub mod snapshot;

use std::fmt;

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::transport::TransportConfig;
use crate::crd::storage_array::{ResizeMode, Vendor};
use crate::model::{ObservedLun, ObservedTarget, SecretString};
use crate::reconcile::lun::{DesiredLun, LunOp};
use crate::reconcile::target::{DesiredTarget, TargetOp};
use crate::reconcile::virtual_machine::{DesiredGuest, GuestOp, ObservedGuest};

/// Credentials from the StorageArray's Secret.
#[derive(Clone)]
pub enum Credentials {
    /// Synology: keys `username` and `password`.
    UserPassword {
        /// DSM account.
        username: String,
        /// DSM password.
        password: SecretString,
    },
    /// NGXStorage: key `token`.
    Token(SecretString),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::UserPassword { username, .. } => f
                .debug_struct("UserPassword")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// How to reach one array: everything a StorageArray spec and its Secrets say.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Which API.
    pub vendor: Vendor,
    /// `spec.endpoint`.
    pub endpoint: String,
    /// `spec.secondaryEndpoint` (NGX HA).
    pub secondary_endpoint: Option<String>,
    /// From `credentialsSecretRef`.
    pub credentials: Credentials,
    /// TLS, timeout, concurrency.
    pub transport: TransportConfig,
    /// `spec.ngxstorage.owner`.
    pub ngx_owner: Option<String>,
    /// `spec.ngxstorage.resizeMode`.
    pub resize_mode: ResizeMode,
    /// DSM session name, unique to this operator install.
    pub session_name: String,
}

/// What an array says about itself (StorageArray status).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrayInfo {
    /// Model name.
    pub model: Option<String>,
    /// Firmware / DSM version.
    pub version: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Detected API dialect (NGX).
    pub dialect: Option<String>,
    /// Endpoint in use (NGX HA: the Master).
    pub active_endpoint: Option<String>,
    /// How the array reads a LUN resize `size` (NGX: `Absolute` or
    /// `Delta`), once configured or learned (`status.atArray.resizeMode`).
    pub resize_mode: Option<String>,
    /// Capacity per pool (NGX) or volume (DSM): name, total, free bytes.
    pub pools: Vec<(String, Option<u64>, Option<u64>)>,
}

/// An array error in vendor-neutral form. The message is the array's own
/// text with its code; it never holds a credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{api_call}: {message}")]
pub struct BackendError {
    /// What the engine acts on.
    pub class: ErrorClass,
    /// The vendor's code, when the array sent one.
    pub vendor_code: Option<i64>,
    /// The API call it came from.
    pub api_call: String,
    /// Human text (the array's message, with the object named).
    pub message: String,
}

impl BackendError {
    /// Converts any vendor error.
    pub fn from_vendor(e: &impl ArrayError) -> Self {
        BackendError {
            class: e.class(),
            vendor_code: e.vendor_code(),
            api_call: e.api_call().to_string(),
            message: e.to_string(),
        }
    }

    /// An operation the vendor's API does not offer.
    pub fn unsupported(api_call: impl Into<String>, what: impl Into<String>) -> Self {
        BackendError {
            class: ErrorClass::Unsupported,
            vendor_code: None,
            api_call: api_call.into(),
            message: what.into(),
        }
    }

    /// Input the adapter refused before any call (for example a size that is
    /// not a whole MiB on NGX). The message names the field and the rule.
    pub fn invalid(api_call: impl Into<String>, what: impl Into<String>) -> Self {
        BackendError {
            class: ErrorClass::InvalidRequest,
            vendor_code: None,
            api_call: api_call.into(),
            message: what.into(),
        }
    }
}

/// One observation of an array: every LUN and target, plus the records the
/// array listed but that could not be read. A malformed record fails the
/// object it belongs to alone, not every object on the array.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Every LUN that decoded.
    pub luns: Vec<ObservedLun>,
    /// Every target that decoded.
    pub targets: Vec<ObservedTarget>,
    /// LUN records that did not: the id where it could be read, and why.
    pub malformed_luns: Vec<(Option<String>, BackendError)>,
    /// Target records that did not.
    pub malformed_targets: Vec<(Option<String>, BackendError)>,
}

/// The spec spelling of an enum: its serde form.
pub(crate) fn spec_word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// What a create call made. A multi-step create (an NGX target and its auth
/// group, a DSM target and its settings) that was cut after the object
/// itself was made still made it: the object is the caller's, and the next
/// diff completes the remaining steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The array-side id of the new object.
    pub id: String,
    /// The error of a later step, when the create was cut part way.
    pub incomplete: Option<BackendError>,
    /// The IQN of a target the spec gave none: the one the adapter chose
    /// (DSM generates it as DSM's UI would), or the one the array derives
    /// by a rule every listed target followed (NGX), so the view needs no
    /// list to learn it.
    pub iqn: Option<String>,
    /// LUN ids the create itself mapped, in order (NGX binds a target's
    /// LUNs in its create call), as the array's answer listed them.
    pub mapped_luns: Vec<String>,
    /// The create was accepted and still runs on the array as this task
    /// (a VMM guest create): `id` is empty, and the object is known only
    /// once the task ends, so the create stays in doubt until then.
    pub running: Option<CreateTask>,
}

impl Created {
    /// A create that completed every step.
    pub fn complete(id: impl Into<String>) -> Self {
        Created {
            id: id.into(),
            incomplete: None,
            iqn: None,
            mapped_luns: Vec::new(),
            running: None,
        }
    }

    /// A create the array accepted and still runs as `task`.
    pub fn running(task: CreateTask) -> Self {
        Created {
            running: Some(task),
            ..Created::complete("")
        }
    }
}

/// A create still running on the array as a task of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTask {
    /// The array's task id.
    pub id: String,
    /// Percent done, when the array says.
    pub progress: Option<i32>,
    /// Why the task's progress could not be read on the last poll, when it
    /// could not.
    pub unread: Option<String>,
}

/// One poll of an asynchronous guest create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestTask {
    /// The task has finished (successfully or not).
    pub finished: bool,
    /// The task reported a failure.
    pub failed: bool,
    /// Percent done, when the array says.
    pub progress: Option<i32>,
    /// The new guest's id, once the task made it.
    pub guest_id: Option<String>,
}

/// What an NGXStorage array answers for a guest call: it has no virtual
/// machines, and is never called for them.
fn no_guests(api: &str) -> BackendError {
    BackendError::unsupported(
        api,
        "NGXStorage arrays have no virtual machines: VirtualMachine needs a Synology array with Virtual Machine Manager",
    )
}

/// A connected array of either vendor. Cheap to clone: clones share the
/// session, connection pool and concurrency limit.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Synology DSM.
    Synology(dsm::DsmBackend),
    /// NGXStorage.
    Ngx(ngx::NgxBackend),
}

macro_rules! dispatch {
    ($self:ident, $api:literal, $b:ident => $e:expr) => {{
        let result = match $self {
            Backend::Synology($b) => $e,
            Backend::Ngx($b) => $e,
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.class.as_str(),
        };
        crate::metrics::global().array_call(vendor_label($self.vendor()), $api, outcome);
        result
    }};
}

fn vendor_label(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Synology => "Synology",
        Vendor::NgxStorage => "NGXStorage",
    }
}

impl Backend {
    /// Connects and authenticates.
    pub async fn connect(config: BackendConfig) -> Result<Backend, BackendError> {
        Ok(match config.vendor {
            Vendor::Synology => Backend::Synology(dsm::DsmBackend::connect(config).await?),
            Vendor::NgxStorage => Backend::Ngx(ngx::NgxBackend::connect(config).await?),
        })
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        match self {
            Backend::Synology(_) => Vendor::Synology,
            Backend::Ngx(_) => Vendor::NgxStorage,
        }
    }

    /// The LUN `spec` asks for on this array, or the first rule of the
    /// vendor it breaks (checked before any write). `name_field` is the
    /// field the array-side name comes from.
    pub fn desired_lun(
        &self,
        spec: &crate::crd::lun::LunSpec,
        name: String,
        name_field: &str,
        size_bytes: u64,
        source: Option<crate::reconcile::lun::CloneSource>,
    ) -> Result<DesiredLun, crate::reconcile::invalid::InvalidSpec> {
        match self {
            Backend::Synology(_) => dsm::rules::desired_lun(spec, name, size_bytes, source),
            Backend::Ngx(_) => ngx::rules::desired_lun(spec, name, name_field, size_bytes, source),
        }
    }

    /// The target `spec` asks for on this array (from its vendor-neutral
    /// part `target`), or the first rule of the vendor it breaks.
    pub fn desired_target(
        &self,
        spec: &crate::crd::IscsiTargetSpec,
        target: DesiredTarget,
    ) -> Result<DesiredTarget, crate::reconcile::invalid::InvalidSpec> {
        match self {
            Backend::Synology(_) => dsm::rules::desired_target(spec, target),
            Backend::Ngx(_) => ngx::rules::desired_target(spec, target),
        }
    }

    /// True when deleting a target drops its LUN mappings with it (DSM),
    /// so no unmap needs to come first; NGXStorage's document does not say
    /// so, and there the LUNs are unmapped first.
    pub fn target_delete_drops_mappings(&self) -> bool {
        matches!(self, Backend::Synology(_))
    }

    /// Model, version, capacity.
    pub async fn info(&self) -> Result<ArrayInfo, BackendError> {
        dispatch!(self, "info", b => b.info().await)
    }

    /// Every LUN and every target together, sharing the list calls both
    /// need (one list call per object type): what the observation cache uses.
    pub async fn observe(&self) -> Result<Observation, BackendError> {
        dispatch!(self, "observe", b => b.observe().await)
    }

    /// Every LUN, in one batched observation.
    pub async fn list_luns(&self) -> Result<Vec<ObservedLun>, BackendError> {
        dispatch!(self, "list_luns", b => b.list_luns().await)
    }

    /// Every iSCSI target (with mappings, CHAP user names and initiators), in
    /// one batched observation.
    pub async fn list_targets(&self) -> Result<Vec<ObservedTarget>, BackendError> {
        dispatch!(self, "list_targets", b => b.list_targets().await)
    }

    /// Creates (or clones) a LUN; returns its array-side id.
    pub async fn create_lun(&self, desired: &DesiredLun) -> Result<Created, BackendError> {
        dispatch!(self, "create_lun", b => b.create_lun(desired).await.map(Created::complete))
    }

    /// Applies one non-create, non-delete LUN operation (rename, grow, set,
    /// unmap) to the LUN `id`.
    pub async fn update_lun(&self, id: &str, op: &LunOp) -> Result<(), BackendError> {
        dispatch!(self, "update_lun", b => b.update_lun(id, op).await)
    }

    /// Deletes a LUN; already gone is success.
    pub async fn delete_lun(&self, id: &str) -> Result<(), BackendError> {
        dispatch!(self, "delete_lun", b => b.delete_lun(id).await)
    }

    /// Creates a target with its settings, CHAP and initiators (not its
    /// mappings). A create cut after the target itself was made returns
    /// it with the later step's error in [`Created::incomplete`].
    pub async fn create_target(&self, desired: &DesiredTarget) -> Result<Created, BackendError> {
        dispatch!(self, "create_target", b => b.create_target(desired).await)
    }

    /// What [`Backend::create_target`] would answer, without a call that
    /// changes the array (`plan`'s dry run): the refusals it makes before
    /// its first call, the IQN it would choose or derive, and the LUNs the
    /// create itself would map; `id` stands for the new target's id. May
    /// read (a portal group, the targets an IQN is derived from).
    pub async fn create_target_dry_run(
        &self,
        desired: &DesiredTarget,
        id: String,
    ) -> Result<Created, BackendError> {
        match self {
            Backend::Synology(b) => b.create_target_dry_run(desired, id).await,
            Backend::Ngx(b) => b.create_target_dry_run(desired, id).await,
        }
    }

    /// Resolves what the spec may name in more than one way (an NGX portal
    /// group by name or id) to the form the array reports, before the diff.
    pub async fn normalize_target(&self, desired: &mut DesiredTarget) -> Result<(), BackendError> {
        match self {
            Backend::Synology(b) => b.normalize_target(desired).await,
            Backend::Ngx(b) => b.normalize_target(desired).await,
        }
    }

    /// Applies one non-create, non-delete target operation to target `id`.
    pub async fn update_target(&self, id: &str, op: &TargetOp) -> Result<(), BackendError> {
        dispatch!(self, "update_target", b => b.update_target(id, op).await)
    }

    /// Deletes a target (and, on NGX, the auth group the operator made for
    /// it); already gone is success.
    pub async fn delete_target(&self, id: &str) -> Result<(), BackendError> {
        dispatch!(self, "delete_target", b => b.delete_target(id).await)
    }

    /// Counts one call's outcome in the array-call metrics (what
    /// [`dispatch!`] does for calls both vendors answer).
    fn counted<T>(
        &self,
        api: &'static str,
        result: Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.class.as_str(),
        };
        crate::metrics::global().array_call(vendor_label(self.vendor()), api, outcome);
        result
    }

    /// Every VMM guest, in one batched observation. NGX: Unsupported,
    /// without a call.
    pub async fn list_guests(&self) -> Result<Vec<ObservedGuest>, BackendError> {
        match self {
            Backend::Synology(b) => self.counted("list_guests", dsm::vmm::list(b.client()).await),
            Backend::Ngx(_) => Err(no_guests("list_guests")),
        }
    }

    /// Checks the names a guest create uses (storage, networks, images and
    /// the host) against the array's lists: the first unknown one as an
    /// InvalidSpec naming its field. NGX: Unsupported, without a call.
    pub async fn check_guest_names(
        &self,
        desired: &DesiredGuest,
    ) -> Result<Option<crate::reconcile::invalid::InvalidSpec>, BackendError> {
        match self {
            Backend::Synology(b) => self.counted(
                "check_guest_names",
                dsm::vmm::check_names(b.client(), desired, desired.host.as_deref()).await,
            ),
            Backend::Ngx(_) => Err(no_guests("check_guest_names")),
        }
    }

    /// Starts creating a guest; returns the task to poll. Sent once.
    pub async fn create_guest(&self, desired: &DesiredGuest) -> Result<String, BackendError> {
        match self {
            Backend::Synology(b) => {
                self.counted("create_guest", dsm::vmm::create(b.client(), desired).await)
            }
            Backend::Ngx(_) => Err(no_guests("create_guest")),
        }
    }

    /// One poll of a guest-create task.
    pub async fn guest_task(&self, task_id: &str) -> Result<GuestTask, BackendError> {
        match self {
            Backend::Synology(b) => {
                self.counted("guest_task", dsm::vmm::task(b.client(), task_id).await)
            }
            Backend::Ngx(_) => Err(no_guests("guest_task")),
        }
    }

    /// The guest-create tasks still running on the array: while one runs,
    /// a guest may exist that no list shows yet.
    pub async fn guest_creates_in_flight(&self) -> Result<Vec<CreateTask>, BackendError> {
        match self {
            Backend::Synology(b) => self.counted(
                "guest_creates_in_flight",
                dsm::vmm::creates_in_flight(b.client()).await,
            ),
            Backend::Ngx(_) => Err(no_guests("guest_creates_in_flight")),
        }
    }

    /// Applies one guest operation (set, power, delete) to guest `id`;
    /// deleting a guest already gone is success.
    pub async fn update_guest(&self, id: &str, op: &GuestOp) -> Result<(), BackendError> {
        match self {
            Backend::Synology(b) => {
                self.counted("update_guest", dsm::vmm::apply(b.client(), id, op).await)
            }
            Backend::Ngx(_) => Err(no_guests("update_guest")),
        }
    }

    /// Ends the session (DSM logout); best effort.
    pub async fn close(&self) {
        match self {
            Backend::Synology(b) => b.close().await,
            Backend::Ngx(b) => b.close().await,
        }
    }
}
