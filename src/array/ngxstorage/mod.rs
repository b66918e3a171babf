//! NGXStorage REST API v2 client.
//!
//! One [`NgxClient`] per array (or HA pair), shared by every caller. It
//! speaks both descriptions of the API ([`Dialect`]): the document and the
//! vendor's Go SDK. Paths and field names live in [`dialect`], the
//! document's validation tables in [`validate`], and the simulator in
//! `crate::sim::ngx` reads the same two modules.

pub mod auth_group;
pub mod client;
pub mod dialect;
pub mod error;
pub mod listing;
pub mod lun;
pub mod pool;
pub mod size;
pub mod snapshot;
pub mod status;
pub mod target;
pub mod types;
pub mod validate;

pub use auth_group::{AuthGroupSummary, Chap};
pub use client::{BusyRetry, MAX_BODY_BYTES, NgxClient, NgxConfig, ResizeMode, Token};
pub use dialect::{Dialect, Endpoint, Field};
pub use error::NgxError;
pub use listing::{Listing, Malformed};
pub use snapshot::SnapshotCreated;
pub use target::{TargetCreate, TargetSummary};
pub use types::*;
