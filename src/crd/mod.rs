//! The custom resources: one module per kind, plus the types they share.

pub mod generate;
