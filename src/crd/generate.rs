//! Renders every CRD as YAML; `crds/`, the chart and `array-operator crds`
//! all come from here.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{IscsiTarget, Lun, ReplicationPlan, SnapshotSchedule, StorageArray, VirtualMachine};

/// Failure to render the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// serde_yaml refused a CRD.
    #[error("serialising a CRD to YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// Every CRD, with the file stem it is written under in `crds/`.
pub fn all_crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("storagearray", StorageArray::crd()),
        ("lun", Lun::crd()),
        ("iscsitarget", IscsiTarget::crd()),
        ("snapshotschedule", SnapshotSchedule::crd()),
        ("replicationplan", ReplicationPlan::crd()),
        ("virtualmachine", VirtualMachine::crd()),
    ]
}

/// One CRD as a YAML document (starting with `---`).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, GenerateError> {
    Ok(format!("---\n{}", serde_yaml::to_string(crd)?))
}

/// Every CRD as one multi-document YAML string.
pub fn all_crds_yaml() -> Result<String, GenerateError> {
    let mut out = String::new();
    for (_, crd) in all_crds() {
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}
