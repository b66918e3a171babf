//! Support for the ownership and chaos tests (included by each with
//! `mod chaos_support;`): the simulators behind one face, a fake Kubernetes
//! API with UIDs, finalizers and failing annotation writes, the one module
//! that calls the engine, a crash wrapper, log capture, spec builders and
//! the invariant checks.
#![allow(dead_code)]

pub mod cluster;
pub mod crash;
pub mod driver;
pub mod invariants;
pub mod logs;
pub mod sims;
pub mod specs;
