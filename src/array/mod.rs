//! Array clients: one per vendor, plus what they share (transport, error
//! classes, vendor-neutral object views).

pub mod backend;
pub mod error;
pub mod listing;
pub mod ngxstorage;
pub mod synology;
pub mod transport;
