//! Synology DSM WebAPI client.
//!
//! One [`DsmClient`] per array, shared by every caller (it is `Clone`; the
//! clones share the login, the `SYNO.API.Info` table and the concurrency
//! limit). The client:
//!
//! * discovers API paths and versions once with `SYNO.API.Info`;
//! * logs in with `SYNO.API.Auth` (`format=sid`, a session name unique to the
//!   operator install) and sends the sid as `_sid`; concurrent callers share
//!   one login, and on 105/106/107/119 it logs in once more and retries once;
//! * encodes parameters as synology-api does (JSON-quoted ids, `dev_attribs`,
//!   JSON arrays, lowercase booleans; see `shared/dsm-wire/README.md`);
//! * retries reads with backoff after transport failures, never resends a
//!   write blindly: a create whose answer was lost looks the object up by name
//!   first.
//!
//! ```no_run
//! # async fn demo() -> Result<(), array_operator::array::synology::DsmError> {
//! use array_operator::array::synology::{Credentials, DsmClient, DsmConfig};
//! use array_operator::array::transport::TransportConfig;
//! let client = DsmClient::new(DsmConfig::new(
//!     "https://nas.example:5001",
//!     Credentials::new("operator", "secret"),
//!     TransportConfig::default(),
//!     "prod-cluster",
//! ))?;
//! let luns = client.luns().list().await?;
//! # let _ = luns; Ok(()) }
//! ```

pub mod client;
pub mod error;
pub mod listing;
pub mod lun;
pub mod params;
pub mod replication;
pub mod session;
pub mod snapshot;
pub mod system;
pub mod target;
pub mod types;
pub mod vmm;

pub use client::{ApiEntry, CallKind, DsmClient, DsmConfig, MAX_BODY_BYTES};
pub use error::DsmError;
pub use listing::{Listing, Malformed};
pub use lun::{CreateLun, CreatedLun, DevAttribs, Lun, LunType, SetLun};
pub use replication::{Plan, SyncOptions};
pub use session::{Credentials, session_name_for};
pub use snapshot::{LunSnapshot, TakeSnapshot, TakenSnapshot};
pub use system::DsmInfo;
pub use target::{Chap, CreateTarget, MappedLun, SetTarget, Target, TargetAuth};
pub use vmm::{Autorun, CreateGuest, Guest, GuestCreate, NewVdisk, NewVnic, SetGuest, TaskInfo};
