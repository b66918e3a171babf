//! The vendor-neutral observed-object types live in [`crate::model`], below
//! the pure core, so that the core never imports from `array/`. Re-exported
//! here for the vendor clients and adapters.

pub use crate::model::*;
