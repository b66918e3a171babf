//! NGXStorage's rules for what a spec may ask, checked against the desired
//! state before any write (annotations included), and the translation of
//! the spec's NGXStorage section into the settings the diff compares.

use crate::crd::IscsiTargetSpec;
use crate::crd::lun::LunSpec;
use crate::model::{LunSettings, Placement};
use crate::reconcile::invalid::InvalidSpec;
use crate::reconcile::lun::{CloneSource, DesiredLun};
use crate::reconcile::target::DesiredTarget;

use super::super::spec_word;
use super::lun::{BLOCKSIZE, COMPRESSION, DEDUPLICATION, IO_TYPE, QOS_PRIORITY};

/// NGXStorage accepts LUN names of 1-30 letters, digits, `_` and `-`.
pub const NAME_MAX: usize = 30;

/// The LUN `spec` asks for on an NGXStorage array, or the first rule it
/// breaks. `name_field` is the field the name comes from.
pub fn desired_lun(
    spec: &LunSpec,
    name: String,
    name_field: &str,
    size_bytes: u64,
    source: Option<CloneSource>,
) -> Result<DesiredLun, InvalidSpec> {
    if spec.location.is_some() {
        return Err(InvalidSpec::new(
            "spec.location",
            "is for Synology arrays; an NGXStorage LUN is placed with spec.pool",
        ));
    }
    if spec.synology.is_some() {
        return Err(InvalidSpec::new(
            "spec.synology",
            "is for Synology arrays; this Lun's array is NGXStorage",
        ));
    }
    // Refused here, before the create's pending record and any call, as
    // well as by the create itself (lun.rs) for callers that skip the rules.
    if spec.description.as_deref().is_some_and(|t| !t.is_empty()) {
        return Err(InvalidSpec::unsupported(
            "spec.description",
            "NGXStorage LUNs have no description; remove it",
        ));
    }
    if spec.source.as_ref().is_some_and(|s| s.lun_ref.is_some()) {
        return Err(InvalidSpec::unsupported(
            "spec.source.lunRef",
            "NGXStorage clones a LUN from a snapshot; set spec.source.snapshot instead",
        ));
    }
    let pool = spec
        .pool
        .clone()
        .ok_or_else(|| InvalidSpec::new("spec.pool", "is required on an NGXStorage array"))?;
    if name.is_empty()
        || name.len() > NAME_MAX
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(InvalidSpec::new(
            name_field,
            format!(
                "{name:?}: NGXStorage LUN names are 1-{NAME_MAX} letters, digits, '_' or '-' (set spec.name)"
            ),
        ));
    }
    if !size_bytes.is_multiple_of(1 << 20) {
        return Err(InvalidSpec::new(
            "spec.size",
            format!("{size_bytes} bytes is not a whole number of MiB, which NGXStorage requires"),
        ));
    }
    let mut settings = LunSettings::new();
    if let Some(n) = &spec.ngxstorage {
        if let Some(b) = &n.blocksize {
            settings.insert(BLOCKSIZE.to_string(), spec_word(b));
        }
        if let Some(v) = n.deduplication {
            settings.insert(DEDUPLICATION.to_string(), v.to_string());
        }
        if let Some(v) = n.compression {
            settings.insert(COMPRESSION.to_string(), v.to_string());
        }
        if let Some(io) = &n.io_type {
            settings.insert(IO_TYPE.to_string(), spec_word(io));
        }
        if let Some(q) = n.qos_priority {
            settings.insert(QOS_PRIORITY.to_string(), q.to_string());
        }
    }
    Ok(DesiredLun {
        name,
        size_bytes,
        placement: Placement::Pool(pool),
        thin: spec.thin_provisioning,
        description: spec.description.clone(),
        settings,
        // A clone takes its snapshot's type.
        type_word: source.is_none().then(|| {
            if spec.thin_provisioning {
                "thin"
            } else {
                "full"
            }
            .to_string()
        }),
        source,
        // NGXStorage fixes the block size at create.
        fixed_settings: vec![BLOCKSIZE.to_string()],
    })
}

/// The target `spec` asks for on an NGXStorage array, or the first rule it
/// breaks.
pub fn desired_target(
    spec: &IscsiTargetSpec,
    mut target: DesiredTarget,
) -> Result<DesiredTarget, InvalidSpec> {
    // Name the field that is set, so the message points at the right line.
    let segment = if spec.max_recv_seg_bytes.is_some() {
        Some("spec.maxRecvSegBytes")
    } else if spec.max_send_seg_bytes.is_some() {
        Some("spec.maxSendSegBytes")
    } else {
        None
    };
    if let Some(field) = segment {
        return Err(InvalidSpec::new(
            field,
            "maxRecvSegBytes and maxSendSegBytes are for Synology arrays; this target's array is NGXStorage",
        ));
    }
    // What target.rs's create refuses, refused before any write.
    for (field, set) in [
        ("spec.maxSessions", spec.max_sessions.is_some()),
        ("spec.headerDigest", spec.header_digest.is_some()),
        ("spec.dataDigest", spec.data_digest.is_some()),
    ] {
        if set {
            return Err(InvalidSpec::unsupported(
                field,
                "NGXStorage targets have no such setting; remove it",
            ));
        }
    }
    if !spec.enabled {
        return Err(InvalidSpec::unsupported(
            "spec.enabled",
            "NGXStorage targets have no enable switch; they always accept logins",
        ));
    }
    if target.chap.as_ref().is_some_and(|c| c.mutual.is_some()) {
        return Err(InvalidSpec::unsupported(
            "spec.chap.mutualSecretRef",
            "an NGXStorage auth group holds one CHAP pair; mutual CHAP is not offered",
        ));
    }
    if let Some(pg) = &spec.portal_group {
        target
            .settings
            .insert(super::target::PORTAL_GROUP.to_string(), pg.clone());
    }
    Ok(target)
}
