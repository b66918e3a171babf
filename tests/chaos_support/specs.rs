//! Spec builders for the test objects.

use array_operator::crd::iscsi_target::{ChapSettings, IscsiTargetSpec};
use array_operator::crd::lun::LunSpec;
use array_operator::crd::shared::{ArrayRef, ManagementPolicy, SecretRef};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::sims::Sim;

/// One GiB.
pub const GIB: u64 = 1 << 30;

/// A Lun of `gib` GiB in the placement the simulator has.
pub fn lun(sim: &Sim, gib: u64) -> LunSpec {
    let (location, pool) = sim.placement();
    LunSpec {
        array_ref: ArrayRef {
            name: "array".into(),
        },
        name: None,
        size: Quantity(format!("{gib}Gi")),
        location,
        pool,
        thin_provisioning: true,
        description: None,
        synology: None,
        ngxstorage: None,
        source: None,
        management_policy: ManagementPolicy::Manage,
        deletion_policy: None,
    }
}

/// A target listing `luns`, with CHAP from Secret `chap` when given.
pub fn target(luns: &[String], chap: Option<&str>) -> IscsiTargetSpec {
    IscsiTargetSpec {
        array_ref: ArrayRef {
            name: "array".into(),
        },
        name: None,
        iqn: None,
        enabled: true,
        max_sessions: None,
        chap: chap.map(|s| ChapSettings {
            secret_ref: SecretRef { name: s.into() },
            mutual_secret_ref: None,
        }),
        luns: luns.to_vec(),
        header_digest: None,
        data_digest: None,
        max_recv_seg_bytes: None,
        max_send_seg_bytes: None,
        portal_group: None,
        initiators: Vec::new(),
        management_policy: ManagementPolicy::Manage,
        deletion_policy: None,
    }
}
