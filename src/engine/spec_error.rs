//! A spec the schema accepted but the array cannot take. The type lives in
//! the pure core ([`crate::reconcile::invalid`]) because the vendor adapters
//! state their rules with it; re-exported here for the engine.

pub use crate::reconcile::invalid::InvalidSpec;
