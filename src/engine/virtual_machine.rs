//! What is a VirtualMachine's own in the lifecycle: the guest the spec asks
//! for (names checked against VMM's lists before a create), the
//! asynchronous create polled to its end, the diff with its power
//! transitions, the stop that deletion waits for, and the status.
//!
//! A guest create is a VMM task: the guest is listed only once the task
//! ends, so a list cannot prove that a create whose answer was lost made
//! nothing while a task runs. The view carries a running task as an
//! unreadable guest record without an id (see
//! [`super::observation::ObservationCache::want_guests`]), and the
//! lifecycle then neither creates nor settles a create in doubt.

use std::time::Duration;

use crate::array::backend::{BackendError, CreateTask, Created};
use crate::array::error::ErrorClass;
use crate::crd::VirtualMachine;
use crate::crd::shared::CommonStatus;
use crate::crd::virtual_machine::{
    ObservedDisk, ObservedNic, PrintableStatus, RunStrategy, VirtualMachineObserved,
    VirtualMachineStatus, VmTask,
};
use crate::reconcile::identity::CreateRecord;
use crate::reconcile::virtual_machine::{
    self as core, DEFAULT_STOP_TIMEOUT, DesiredGuest, GuestOp, MIB, ObservedGuest, Power, StopClock,
};

use super::lifecycle::{self, Managed, OpEvent, Plan, Refusal, Unresolved};
use super::observation::{self, ArrayView};
use super::{ArrayHandle, Cluster, ClusterError, event_reason, timestamp};

/// The waits between polls of a create task: short, growing, and bounded
/// (about 9 s in all) so a slow task never holds a worker; past them the
/// create is left in doubt and the next pass finds the guest by name.
pub const TASK_POLLS: [Duration; 8] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1500),
    Duration::from_secs(2),
    Duration::from_secs(2),
    Duration::from_secs(2),
];

/// The guest the spec asks for, named as the array side is.
fn desired_guest(vm: &VirtualMachine) -> Result<DesiredGuest, super::spec_error::InvalidSpec> {
    core::desired(&vm.spec, vm.array_name())
}

/// Seconds since the Shutdown recorded in status was sent.
fn stop_clock(vm: &VirtualMachine) -> StopClock {
    let sent = vm
        .status
        .as_ref()
        .and_then(|s| s.shutdown_requested_at.as_deref())
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
    StopClock {
        shutdown_sent_ago: sent.map(|at| {
            chrono::Utc::now()
                .signed_duration_since(at)
                .to_std()
                .unwrap_or_default()
        }),
    }
}

/// `spec.stopTimeout`, or the default (an unreadable one is reported by the
/// reconcile; deletion then uses the default).
fn stop_timeout(vm: &VirtualMachine) -> Duration {
    desired_guest(vm).map_or(DEFAULT_STOP_TIMEOUT, |d| d.stop_timeout)
}

fn observed_status(g: &ObservedGuest) -> VirtualMachineObserved {
    let bytes = |mib: u64| i64::try_from(mib.saturating_mul(MIB)).ok();
    VirtualMachineObserved {
        guest_id: Some(g.id.clone()),
        power_state: Some(g.status.clone()),
        host: g.host.clone(),
        cpus: g.cpus.and_then(|c| i32::try_from(c).ok()),
        memory_bytes: g.memory_mib.and_then(bytes),
        disks: g
            .disks
            .iter()
            .map(|d| ObservedDisk {
                id: d.id.clone(),
                size_bytes: d.size_mib.and_then(bytes),
                controller: d.controller,
            })
            .collect(),
        nics: g
            .nics
            .iter()
            .map(|n| ObservedNic {
                id: n.id.clone(),
                network: Some(n.network.clone()),
                mac: Some(n.mac.clone()),
            })
            .collect(),
    }
}

impl VirtualMachine {
    fn previous(&self) -> VirtualMachineStatus {
        self.status.clone().unwrap_or_default()
    }

    /// When the current stop's Shutdown was sent: now when this pass sent
    /// one, else the recorded time while the guest is still being stopped.
    fn shutdown_at(&self, observed: Option<&ObservedGuest>, applied: &[GuestOp]) -> Option<String> {
        if applied.contains(&GuestOp::Shutdown) {
            return Some(timestamp());
        }
        let stopping = observed.is_some_and(|g| {
            matches!(
                g.power(),
                Power::Stopping | Power::Running | Power::Starting
            )
        });
        let wanted = self.spec.run_strategy == RunStrategy::Halted
            || self.metadata.deletion_timestamp.is_some();
        self.status
            .as_ref()
            .and_then(|s| s.shutdown_requested_at.clone())
            .filter(|_| stopping && wanted && !applied.contains(&GuestOp::PowerOff))
    }

    fn status_with(
        &self,
        common: CommonStatus,
        observed: Option<&ObservedGuest>,
        applied: &[GuestOp],
    ) -> VirtualMachineStatus {
        VirtualMachineStatus {
            printable_status: core::printable_status(observed, false),
            task: None,
            shutdown_requested_at: self.shutdown_at(observed, applied),
            at_array: observed.map(observed_status),
            common,
        }
    }
}

impl Managed for VirtualMachine {
    const KIND: &'static str = "VirtualMachine";
    const NOUN: &'static str = "guest";
    /// True while the object has no guest yet (names are checked then).
    type Resolved = bool;
    type Desired = DesiredGuest;
    type Observed = ObservedGuest;
    type Op = GuestOp;
    type Status = VirtualMachineStatus;

    lifecycle::common_fields!();

    async fn resolve(&self, _: &impl Cluster, creating: bool) -> Result<bool, Unresolved> {
        Ok(creating)
    }

    async fn desired(&self, creating: &bool, array: &ArrayHandle) -> Result<DesiredGuest, Refusal> {
        let desired = desired_guest(self)?;
        if *creating || array.vendor() != crate::crd::storage_array::Vendor::Synology {
            // NGX answers Unsupported here without a call, before any view
            // (which would list its LUNs) is read.
            if let Some(invalid) = array
                .backend
                .check_guest_names(&desired)
                .await
                .map_err(Refusal::Array)?
            {
                return Err(Refusal::Invalid(invalid));
            }
        }
        Ok(desired)
    }

    fn observe_with(array: &ArrayHandle) {
        // NGX has no guests: its views never ask (and never fail) for them.
        if array.vendor() == crate::crd::storage_array::Vendor::Synology {
            array.cache.want_guests();
        }
    }
    fn find(view: &ArrayView, id: &str) -> Option<ObservedGuest> {
        view.guest(id).cloned()
    }
    fn find_name(view: &ArrayView, name: &str) -> Option<String> {
        view.guest_by_name(name).map(|g| g.id.clone())
    }
    fn malformed(view: &ArrayView) -> &[(Option<String>, BackendError)] {
        &view.malformed_guests
    }
    fn put(view: &mut ArrayView, id: &str, after: Option<&ObservedGuest>, _: Option<&GuestOp>) {
        observation::put_guest(view, id, after.cloned());
    }

    async fn create(array: &ArrayHandle, desired: &DesiredGuest) -> Result<Created, BackendError> {
        let task = array.backend.create_guest(desired).await?;
        let mut progress = None;
        for wait in TASK_POLLS {
            tokio::time::sleep(wait).await;
            let t = match array.backend.guest_task(&task).await {
                Ok(t) => t,
                // The task runs whatever this poll met: recorded as running
                // (never a refusal), and the next pass looks at it again.
                Err(e) => {
                    return Ok(Created::running(CreateTask {
                        id: task,
                        progress,
                        unread: Some(e.to_string()),
                    }));
                }
            };
            progress = t.progress.or(progress);
            if t.failed {
                // What a failed task left is only known from a list.
                return Err(BackendError {
                    class: ErrorClass::Other,
                    vendor_code: None,
                    api_call: "SYNO.Virtualization.API.Task.Info".into(),
                    message: format!("guest create task {task} failed"),
                });
            }
            if let Some(id) = t.guest_id.filter(|_| t.finished) {
                return Ok(Created::complete(id));
            }
        }
        // Still running: the object waits for it without holding a worker.
        Ok(Created::running(CreateTask {
            id: task,
            progress,
            unread: None,
        }))
    }
    fn created(_: &DesiredGuest, _: &Created) -> Option<ObservedGuest> {
        // VMM chose the disk and NIC ids and MACs: a list tells.
        None
    }
    fn create_fields(&self) -> Option<String> {
        Some(format!(
            "spec.storage {:?}, spec.disks[].image and spec.nics[].network",
            self.spec.storage
        ))
    }
    fn created_note(d: &DesiredGuest) -> String {
        GuestOp::Create(d.clone()).describe()
    }
    fn diff(&self, desired: &DesiredGuest, observed: &ObservedGuest, _: &bool) -> Plan<GuestOp> {
        let plan = core::diff(desired, observed, stop_clock(self));
        Plan {
            ops: plan.ops,
            drift: plan.drift,
            waiting: plan.waiting,
        }
    }
    async fn apply(array: &ArrayHandle, id: &str, op: &GuestOp) -> Result<(), BackendError> {
        match op {
            GuestOp::Create(_) => Err(BackendError::invalid(
                "create",
                "the guest disappeared between its create and the diff",
            )),
            other => array.backend.update_guest(id, other).await,
        }
    }
    fn model(observed: ObservedGuest, op: &GuestOp) -> Option<ObservedGuest> {
        core::apply_model(observed, op)
    }
    fn event(&self, op: &GuestOp, _: Option<&bool>) -> OpEvent {
        let reason = match op {
            GuestOp::Create(_) => Some(event_reason::CREATED),
            GuestOp::Delete => Some(event_reason::DELETED),
            _ => None,
        };
        OpEvent {
            reason,
            action: op.action(),
            note: op.describe(),
        }
    }
    fn delete_ops(&self, _: &ArrayHandle, observed: &ObservedGuest) -> Vec<GuestOp> {
        core::delete_ops(
            observed,
            self.spec.stop_mode,
            stop_timeout(self),
            stop_clock(self),
        )
    }
    fn deletion_waits(&self, observed: &ObservedGuest) -> String {
        format!(
            "deletion waits for guest {:?} ({}) to stop: status {}, spec.stopMode {}; Guest.delete follows once it is stopped",
            observed.name,
            observed.id,
            observed.status,
            crate::array::backend::spec_word(&self.spec.stop_mode)
        )
    }
    fn deleting_status(
        &self,
        common: CommonStatus,
        observed: Option<&ObservedGuest>,
        applied: &[GuestOp],
    ) -> VirtualMachineStatus {
        self.status_with(common, observed, applied)
    }

    fn waiting_for(&self, _: &bool) -> Option<String> {
        None
    }
    fn task_status(
        mut status: VirtualMachineStatus,
        task: Option<&CreateTask>,
    ) -> VirtualMachineStatus {
        status.task = task.map(|t| VmTask {
            task_id: t.id.clone(),
            progress: t.progress,
        });
        if status.task.is_some() {
            status.printable_status = Some(PrintableStatus::Provisioning);
        }
        status
    }
    async fn deletion_hold(&self, _: &impl Cluster) -> Result<Option<String>, ClusterError> {
        Ok(None)
    }

    fn keep_status(&self, common: CommonStatus) -> VirtualMachineStatus {
        let mut status = self.previous();
        // No guest recorded and a create in doubt: its task may still run.
        let record = CreateRecord::from_annotations(
            self.metadata
                .annotations
                .as_ref()
                .unwrap_or(&Default::default()),
            &lifecycle::uid_of(&self.metadata),
        );
        if common.external_id.is_none() && record.create_in_doubt() {
            status.printable_status = Some(PrintableStatus::Provisioning);
        }
        status.common = common;
        status
    }
    fn observed_status(
        &self,
        common: CommonStatus,
        observed: Option<&ObservedGuest>,
        _: &bool,
        applied: &[GuestOp],
    ) -> VirtualMachineStatus {
        self.status_with(common, observed, applied)
    }
}
