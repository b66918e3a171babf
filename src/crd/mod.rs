//! The custom resources: one module per kind, plus the types they share.
//! Group `array-operator.io`, version `v1alpha1`, all namespaced, all in the
//! `arrayop` category.

pub mod cron;
pub mod formats;
pub mod generate;
pub mod iscsi_target;
pub mod lun;
pub mod replication_plan;
pub mod shared;
pub mod snapshot_schedule;
pub mod storage_array;
pub mod validate;
pub mod virtual_machine;
pub mod yaml11;

pub use iscsi_target::{IscsiTarget, IscsiTargetSpec, IscsiTargetStatus};
pub use lun::{Lun, LunSpec, LunStatus};
pub use replication_plan::{ReplicationPlan, ReplicationPlanSpec, ReplicationPlanStatus};
pub use snapshot_schedule::{SnapshotSchedule, SnapshotScheduleSpec, SnapshotScheduleStatus};
pub use storage_array::{StorageArray, StorageArraySpec, StorageArrayStatus, Vendor};
pub use virtual_machine::{VirtualMachine, VirtualMachineSpec, VirtualMachineStatus};
