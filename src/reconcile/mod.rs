//! The pure reconcile core: `observe` (a vendor-neutral view of the array,
//! see [`crate::model`]) → `diff(desired, observed)` → an ordered list
//! of operations → `apply` through the vendor client. Nothing here does I/O,
//! so every rule is tested without an array.

pub mod claims;
pub mod claims_index;
pub mod drift;
pub mod identity;
pub mod invalid;
pub mod lun;
pub mod replication;
pub mod schedule;
pub mod target;
pub mod virtual_machine;

pub use drift::Drift;
