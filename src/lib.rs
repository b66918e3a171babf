//! array-operator: a Kubernetes operator that makes Synology DSM and
//! NGXStorage arrays match the LUNs, iSCSI targets, snapshot schedules,
//! replication plans and virtual machines declared in the cluster.

pub mod array;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod operator;
pub mod plan;
pub mod reconcile;
pub mod sim;
