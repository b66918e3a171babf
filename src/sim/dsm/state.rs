//! The simulated DSM's state: volumes, LUNs, snapshots, targets and their
//! mappings, replication plans, VMM guests and tasks, and the login sessions.
//! Tests read and change it out of band through [`StateHandle`].

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sim::faults::{CallLog, Faults};

/// A volume LUNs live on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Path, for example `/volume1`.
    pub path: String,
    /// Capacity in bytes.
    pub total_bytes: u64,
}

/// A LUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLun {
    /// uuid.
    pub uuid: String,
    /// Numeric id.
    pub lun_id: i64,
    /// Name (unique).
    pub name: String,
    /// Volume path.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// Type name (`BLUN`, `BLUN_THICK`, `THIN`, ...).
    pub lun_type: String,
    /// Bytes allocated: all of `size` for thick types, 0 for a new thin one.
    pub allocated_size: u64,
    /// Description.
    pub description: String,
    /// `dev_attribs` as (name, enable) in DSM's order.
    pub dev_attribs: Vec<(String, i64)>,
    /// Clone source, when cloned.
    pub parent_uuid: Option<String>,
}

impl SimLun {
    /// Whether the type is thin-provisioned.
    pub fn is_thin(&self) -> bool {
        is_thin_type(&self.lun_type)
    }

    /// Bytes this LUN takes from its volume.
    pub fn used_bytes(&self) -> u64 {
        if self.is_thin() {
            self.allocated_size
        } else {
            self.size
        }
    }

    /// The value of one `dev_attrib` flag.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.dev_attribs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v != 0)
    }
}

/// The LUN types the simulator accepts, with DSM's numeric type codes.
pub const LUN_TYPES: [(&str, i64); 6] = [
    ("BLUN", 263),
    ("THIN", 263),
    ("ADV", 261),
    ("BLUN_THICK", 259),
    ("FILE", 257),
    ("BLOCK", 256),
];

/// Whether a LUN type is thin-provisioned.
pub fn is_thin_type(lun_type: &str) -> bool {
    matches!(lun_type, "BLUN" | "THIN" | "ADV")
}

/// A LUN snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSnapshot {
    /// uuid.
    pub uuid: String,
    /// Numeric id (per LUN).
    pub snapshot_id: i64,
    /// The LUN it belongs to.
    pub lun_uuid: String,
    /// Name (`SnapShot-N` unless given).
    pub name: String,
    /// Description.
    pub description: String,
    /// Unix time taken.
    pub create_time: i64,
    /// Locked.
    pub locked: bool,
    /// Application-consistent.
    pub app_consistent: bool,
    /// Who took it.
    pub taken_by: String,
    /// Packages that keep it (`locked_app_keys`: a Snapshot Replication
    /// plan's key while the snapshot is the base of a replication); DSM
    /// refuses to delete it while any is set.
    pub locked_app_keys: Vec<String>,
}

/// A LUN mapped to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The LUN.
    pub lun_uuid: String,
    /// The LUN number in the target.
    pub mapping_index: i64,
}

/// An iSCSI target.
#[derive(Clone, PartialEq, Eq)]
pub struct SimTarget {
    /// Numeric id.
    pub target_id: i64,
    /// Name (unique).
    pub name: String,
    /// IQN (unique).
    pub iqn: String,
    /// 0 none, 1 CHAP, 2 mutual.
    pub auth_type: i64,
    /// CHAP user.
    pub user: String,
    /// CHAP secret.
    pub password: String,
    /// Mutual CHAP user.
    pub mutual_user: String,
    /// Mutual CHAP secret.
    pub mutual_password: String,
    /// Session limit.
    pub max_sessions: i64,
    /// Enabled.
    pub enabled: bool,
    /// Header digest.
    pub header_digest: bool,
    /// Data digest.
    pub data_digest: bool,
    /// Max receive segment bytes.
    pub max_recv_seg_bytes: i64,
    /// Max send segment bytes.
    pub max_send_seg_bytes: i64,
    /// Mapped LUNs, in mapping order.
    pub mapped: Vec<Mapping>,
}

impl std::fmt::Debug for SimTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTarget")
            .field("target_id", &self.target_id)
            .field("name", &self.name)
            .field("iqn", &self.iqn)
            .field("auth_type", &self.auth_type)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("mutual_user", &self.mutual_user)
            .field("mutual_password", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("mapped", &self.mapped)
            .finish_non_exhaustive()
    }
}

/// One sync run of a replication plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSyncRecord {
    /// Start (unix time).
    pub begin_time: i64,
    /// End (unix time).
    pub finish_time: i64,
    /// Bytes sent.
    pub size_bytes: u64,
    /// Snapshot description.
    pub description: String,
    /// Succeeded.
    pub success: bool,
}

/// A Snapshot Replication plan. The fields the simulator changes are typed;
/// the rest of the fixture's `additional` blocks are served as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct SimPlan {
    /// Plan id.
    pub plan_id: String,
    /// `mainsite` or `drsite`.
    pub role: String,
    /// What is replicated.
    pub target_id: String,
    /// `lun` or `share`.
    pub target_type: String,
    /// Whether data is sent encrypted.
    pub is_send_encrypted: bool,
    /// Unix time of the next scheduled sync.
    pub next_trigger_time: i64,
    /// Runs so far, oldest first.
    pub records: Vec<SimSyncRecord>,
    /// Failed runs.
    pub fail_sync_count: i64,
    /// Unix time of the last operation.
    pub last_op_time: i64,
    /// The fixture's other `additional` blocks (`can_do`, `topology`, ...).
    pub other_additional: serde_json::Map<String, serde_json::Value>,
    /// The sync running now (syncs are asynchronous: `sync` starts one,
    /// `list` shows it in `syncing_record` until the plan clock passes its
    /// end, then in `recent_records`).
    pub syncing: Option<SimSyncing>,
    /// Seconds of plan clock a sync takes.
    pub sync_seconds: i64,
    /// The next sync started fails at its end with this DSM error code.
    pub fail_next_sync: Option<i64>,
    /// Error code of the last finished sync (0: it succeeded).
    pub last_err_code: i64,
    /// DSM refuses syncs (`can_do.can_sync` false), as while a failover
    /// or restore runs.
    pub refuse_sync: bool,
}

/// A sync in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSyncing {
    /// Start (plan clock, unix time).
    pub begin_time: i64,
    /// Bytes it sends in all.
    pub size_bytes: u64,
    /// Snapshot description.
    pub description: String,
    /// Locked snapshot requested.
    pub locked: bool,
    /// The error code it ends with, if it fails.
    pub fail_code: Option<i64>,
}

/// A guest's power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// `running`.
    Running,
    /// `shutdown`.
    Shutdown,
    /// `booting`: powered on, running after this many more guest
    /// observations (list or get).
    Booting(u32),
    /// `shutting_down`: an ACPI shutdown, stopped after this many more
    /// guest observations.
    ShuttingDown(u32),
}

impl Power {
    /// DSM's status text.
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Running => "running",
            Power::Shutdown => "shutdown",
            Power::Booting(_) => "booting",
            Power::ShuttingDown(_) => "shutting_down",
        }
    }
}

/// A guest's disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimVdisk {
    /// Id.
    pub vdisk_id: String,
    /// Size in MB.
    pub vdisk_size: u64,
    /// Controller.
    pub controller: i64,
    /// UNMAP.
    pub unmap: bool,
}

/// A guest's NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimVnic {
    /// Id.
    pub vnic_id: String,
    /// MAC.
    pub mac: String,
    /// Network id.
    pub network_id: String,
    /// Network name.
    pub network_name: String,
}

/// A VMM guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimGuest {
    /// Id.
    pub guest_id: String,
    /// Name (unique).
    pub guest_name: String,
    /// Power state.
    pub power: Power,
    /// 0 off, 1 last state, 2 on.
    pub autorun: i64,
    /// Description.
    pub description: String,
    /// vCPUs.
    pub vcpu_num: i64,
    /// Memory in MB.
    pub vram_size: i64,
    /// Storage id.
    pub storage_id: String,
    /// Storage name.
    pub storage_name: String,
    /// Host running it.
    pub host_id: Option<String>,
    /// Disks.
    pub vdisks: Vec<SimVdisk>,
    /// NICs.
    pub vnics: Vec<SimVnic>,
}

/// A non-blocking VMM task (guest create).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTask {
    /// Task id.
    pub task_id: String,
    /// Percent done.
    pub progress: i64,
    /// The guest it creates; moved into `guests` when the task finishes.
    pub pending_guest: Option<SimGuest>,
    /// The created guest's id, once finished.
    pub guest_id: Option<String>,
    /// Whether DSM drops the record after it finishes.
    pub auto_clean_task: bool,
}

impl SimTask {
    /// Whether it has finished.
    pub fn finished(&self) -> bool {
        self.progress >= 100
    }
}

/// A VMM storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimStorage {
    /// Id.
    pub storage_id: String,
    /// Name.
    pub storage_name: String,
    /// Volume path.
    pub volume_path: String,
    /// Capacity.
    pub size: u64,
    /// Used.
    pub used: u64,
}

/// A VMM network group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNetwork {
    /// Id.
    pub network_id: String,
    /// Name.
    pub network_name: String,
}

/// A VMM host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimHost {
    /// Id.
    pub host_id: String,
    /// Name.
    pub host_name: String,
    /// CPU cores.
    pub total_cpu_core: i64,
    /// Memory in MB.
    pub total_ram_size: i64,
}

/// A disk or ISO image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimImage {
    /// Id.
    pub image_id: String,
    /// Name.
    pub image_name: String,
    /// `disk` or `iso`.
    pub kind: String,
    /// Size in MB.
    pub size_mb: u64,
}

/// System limits the simulator enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// LUNs (error 18990541 beyond).
    pub max_luns: usize,
    /// Targets (error 18990542 beyond).
    pub max_targets: usize,
    /// Snapshots per LUN (error 18990543 beyond).
    pub max_snapshots_per_lun: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_luns: 128,
            max_targets: 128,
            max_snapshots_per_lun: 256,
        }
    }
}

/// What the DSM says about itself (`SYNO.DSM.Info`, `SYNO.Core.System`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimSystem {
    /// Model, for example `RS3621xs+`.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Build number (`version`), for example `69057`.
    pub build: String,
    /// The version as DSM shows it (`version_string`), for example
    /// `DSM 7.2.1-69057 Update 5`.
    pub version_string: String,
    /// Memory, MB.
    pub ram_mb: i64,
}

/// Everything the simulated DSM holds.
#[derive(Clone, Debug, Default)]
pub struct DsmState {
    /// Host name (used in generated IQNs and the API answers).
    pub hostname: String,
    /// Model, version and serial.
    pub system: SimSystem,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// LUNs, in creation order, indexed by name and uuid.
    pub luns: super::lun_table::LunTable,
    /// Snapshots of all LUNs.
    pub snapshots: Vec<SimSnapshot>,
    /// Targets.
    pub targets: Vec<SimTarget>,
    /// Replication plans.
    pub plans: Vec<SimPlan>,
    /// Seconds the plans' clock runs ahead of the wall clock (tests move
    /// it to let syncs progress and end without sleeping).
    pub plan_clock_offset: i64,
    /// Guests.
    pub guests: Vec<SimGuest>,
    /// Guest-create tasks.
    pub tasks: Vec<SimTask>,
    /// VMM storages.
    pub storages: Vec<SimStorage>,
    /// VMM networks.
    pub networks: Vec<SimNetwork>,
    /// VMM hosts.
    pub hosts: Vec<SimHost>,
    /// Images.
    pub images: Vec<SimImage>,
    /// Limits.
    pub limits: Limits,
    /// Progress a guest-create task makes per `Task.Info get` poll.
    pub task_step: i64,
    /// How many guest observations (Guest list or get) a power-on or an
    /// ACPI shutdown takes to finish (`booting`, `shutting_down`); 0 makes
    /// them instant. Simulated time that needs no clock: each look at the
    /// guest is a step.
    pub power_steps: u32,
    /// APIs that are not installed (for example every
    /// `SYNO.Virtualization.` API when VMM is absent): `SYNO.API.Info` does
    /// not list them and calls get 102.
    pub missing_apis: Vec<String>,
    /// Fields forced into the rendered record of a LUN, by uuid: a firmware
    /// bug or a hostile DSM, for tests of how a client copes with one bad
    /// record (`Value::Null` removes the field).
    pub tampered: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Next LUN id.
    pub next_lun_id: i64,
    /// Next target id.
    pub next_target_id: i64,
}

impl DsmState {
    /// The LUN with this uuid.
    pub fn lun(&self, uuid: &str) -> Option<&SimLun> {
        self.luns.by_uuid(uuid)
    }

    /// The LUN with this name.
    pub fn lun_by_name(&self, name: &str) -> Option<&SimLun> {
        self.luns.by_name(name)
    }

    /// The target with this id.
    pub fn target(&self, id: i64) -> Option<&SimTarget> {
        self.targets.iter().find(|t| t.target_id == id)
    }

    /// The target with this name.
    pub fn target_by_name(&self, name: &str) -> Option<&SimTarget> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The ids of the targets that map this LUN.
    pub fn targets_of_lun(&self, uuid: &str) -> Vec<i64> {
        self.targets
            .iter()
            .filter(|t| t.mapped.iter().any(|m| m.lun_uuid == uuid))
            .map(|t| t.target_id)
            .collect()
    }

    /// The snapshots of one LUN.
    pub fn snapshots_of(&self, lun_uuid: &str) -> Vec<&SimSnapshot> {
        self.snapshots
            .iter()
            .filter(|s| s.lun_uuid == lun_uuid)
            .collect()
    }

    /// The guest with this name.
    pub fn guest_by_name(&self, name: &str) -> Option<&SimGuest> {
        self.guests.iter().find(|g| g.guest_name == name)
    }

    /// Whether `api` is installed.
    pub fn has_api(&self, api: &str) -> bool {
        !self
            .missing_apis
            .iter()
            .any(|m| api == m || (m.ends_with('.') && api.starts_with(m.as_str())))
    }

    /// Free bytes on a volume.
    pub fn free_bytes(&self, volume: &str) -> u64 {
        let total = self
            .volumes
            .iter()
            .find(|v| v.path == volume)
            .map_or(0, |v| v.total_bytes);
        let used: u64 = self
            .luns
            .iter()
            .filter(|l| l.location == volume)
            .map(SimLun::used_bytes)
            .sum();
        total.saturating_sub(used)
    }
}

/// A login session.
#[derive(Clone, PartialEq, Eq)]
pub struct SimSession {
    /// The account.
    pub account: String,
    /// The SynoToken, when the login asked for one.
    pub synotoken: Option<String>,
    /// The session name the client gave.
    pub session_name: String,
}

impl std::fmt::Debug for SimSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSession")
            .field("account", &self.account)
            .field("session_name", &self.session_name)
            .finish_non_exhaustive()
    }
}

/// Account credentials the simulator accepts. `Debug` hides the password.
#[derive(Clone)]
pub struct SimCredentials {
    /// Account.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SimCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<DsmState>,
    pub sessions: Mutex<HashMap<String, SimSession>>,
    pub credentials: SimCredentials,
    pub faults: Faults,
    pub calls: CallLog,
    /// Requests being handled right now, and the most seen at once.
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not wedge the simulator.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Out-of-band access to the simulator's state, for tests and demos: read
/// it, or change it as an admin (or a failure) would behind the operator's
/// back. Cloning shares the state.
#[derive(Clone, Debug)]
pub struct StateHandle {
    pub(crate) shared: Arc<Shared>,
}

impl StateHandle {
    /// Runs `f` on the state and returns its result.
    pub fn read<R>(&self, f: impl FnOnce(&DsmState) -> R) -> R {
        f(&lock(&self.shared.state))
    }

    /// Runs `f` on the mutable state.
    pub fn update<R>(&self, f: impl FnOnce(&mut DsmState) -> R) -> R {
        f(&mut lock(&self.shared.state))
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> DsmState {
        self.read(Clone::clone)
    }

    /// All LUNs.
    pub fn luns(&self) -> Vec<SimLun> {
        self.read(|s| s.luns.to_vec())
    }

    /// The LUN named `name`.
    pub fn lun_by_name(&self, name: &str) -> Option<SimLun> {
        self.read(|s| s.lun_by_name(name).cloned())
    }

    /// All targets.
    pub fn targets(&self) -> Vec<SimTarget> {
        self.read(|s| s.targets.clone())
    }

    /// All guests.
    pub fn guests(&self) -> Vec<SimGuest> {
        self.read(|s| s.guests.clone())
    }

    /// All plans.
    pub fn plans(&self) -> Vec<SimPlan> {
        self.read(|s| s.plans.clone())
    }

    /// Moves the plans' clock forward by `secs`: running syncs progress
    /// and end as DSM's would in that time.
    pub fn advance_plan_clock(&self, secs: i64) {
        self.update(|s| s.plan_clock_offset += secs);
    }

    /// Runs `f` on plan `plan_id`; `None` when there is no such plan.
    pub fn update_plan<R>(&self, plan_id: &str, f: impl FnOnce(&mut SimPlan) -> R) -> Option<R> {
        self.update(|s| s.plans.iter_mut().find(|p| p.plan_id == plan_id).map(f))
    }

    /// Resizes a LUN behind the operator's back. Returns false when absent.
    pub fn resize_lun(&self, uuid: &str, size: u64) -> bool {
        self.update(|s| match s.luns.iter_mut().find(|l| l.uuid == uuid) {
            Some(l) => {
                l.size = size;
                true
            }
            None => false,
        })
    }

    /// Deletes a LUN (with its mappings and snapshots) behind the operator's
    /// back. Returns false when absent.
    pub fn remove_lun(&self, uuid: &str) -> bool {
        self.update(|s| {
            let before = s.luns.len();
            s.luns.retain(|l| l.uuid != uuid);
            s.snapshots.retain(|sn| sn.lun_uuid != uuid);
            for t in &mut s.targets {
                t.mapped.retain(|m| m.lun_uuid != uuid);
            }
            s.luns.len() != before
        })
    }

    /// Drops one mapping. Returns false when it was not there.
    pub fn drop_mapping(&self, target_id: i64, lun_uuid: &str) -> bool {
        self.update(
            |s| match s.targets.iter_mut().find(|t| t.target_id == target_id) {
                Some(t) => {
                    let before = t.mapped.len();
                    t.mapped.retain(|m| m.lun_uuid != lun_uuid);
                    t.mapped.len() != before
                }
                None => false,
            },
        )
    }

    /// Changes a target in place. Returns false when absent.
    pub fn edit_target(&self, target_id: i64, f: impl FnOnce(&mut SimTarget)) -> bool {
        self.update(
            |s| match s.targets.iter_mut().find(|t| t.target_id == target_id) {
                Some(t) => {
                    f(t);
                    true
                }
                None => false,
            },
        )
    }

    /// Sets a guest's power state. Returns false when absent.
    pub fn set_guest_power(&self, guest_id: &str, power: Power) -> bool {
        self.update(
            |s| match s.guests.iter_mut().find(|g| g.guest_id == guest_id) {
                Some(g) => {
                    g.power = power;
                    true
                }
                None => false,
            },
        )
    }

    /// Logs every client out (as a DSM reboot or an admin would).
    pub fn expire_all_sessions(&self) {
        lock(&self.shared.sessions).clear();
    }

    /// The sids of the open sessions.
    pub fn session_ids(&self) -> Vec<String> {
        lock(&self.shared.sessions).keys().cloned().collect()
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        lock(&self.shared.sessions).len()
    }
}
