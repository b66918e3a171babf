//! Synology's rules for what a spec may ask, checked against the desired
//! state before any write (annotations included), and the translation of
//! the spec's Synology section into the settings the diff compares.

use crate::crd::IscsiTargetSpec;
use crate::crd::lun::LunSpec;
use crate::model::{Chap, LunSettings, Placement};
use crate::reconcile::invalid::InvalidSpec;
use crate::reconcile::lun::{CloneSource, DesiredLun};
use crate::reconcile::target::DesiredTarget;

use super::super::spec_word;

/// DSM takes CHAP secrets of 12 to 16 characters.
pub const CHAP_SECRET_LEN: std::ops::RangeInclusive<usize> = 12..=16;

fn flag(settings: &mut LunSettings, key: &str, value: Option<bool>) {
    if let Some(v) = value {
        settings.insert(key.to_string(), v.to_string());
    }
}

/// The LUN `spec` asks for on a DSM, or the first Synology rule it breaks.
pub fn desired_lun(
    spec: &LunSpec,
    name: String,
    size_bytes: u64,
    source: Option<CloneSource>,
) -> Result<DesiredLun, InvalidSpec> {
    if spec.pool.is_some() {
        return Err(InvalidSpec::new(
            "spec.pool",
            "is for NGXStorage arrays; a Synology LUN is placed with spec.location",
        ));
    }
    if spec.ngxstorage.is_some() {
        return Err(InvalidSpec::new(
            "spec.ngxstorage",
            "is for NGXStorage arrays; this Lun's array is Synology",
        ));
    }
    if matches!(source, Some(CloneSource::Snapshot(_)))
        || spec.source.as_ref().is_some_and(|s| s.snapshot.is_some())
    {
        return Err(InvalidSpec::new(
            "spec.source.snapshot",
            "clones an NGXStorage snapshot; on Synology clone a Lun with spec.source.lunRef",
        ));
    }
    let location = spec.location.clone().ok_or_else(|| {
        InvalidSpec::new(
            "spec.location",
            "is required on a Synology array (the volume, for example /volume1)",
        )
    })?;
    let mut settings = LunSettings::new();
    if let Some(s) = &spec.synology {
        if let Some(t) = &s.lun_type {
            settings.insert(super::convert::TYPE_KEY.to_string(), spec_word(t));
        }
        for (key, value) in [
            ("synology.emulateCaw", s.emulate_caw),
            ("synology.emulate3pc", s.emulate_3pc),
            ("synology.emulateTpu", s.emulate_tpu),
            ("synology.emulateTpws", s.emulate_tpws),
            ("synology.emulateFuaWrite", s.emulate_fua_write),
            ("synology.emulateSyncCache", s.emulate_sync_cache),
            ("synology.canSnapshot", s.can_snapshot),
        ] {
            flag(&mut settings, key, value);
        }
    }
    if let Some(t) = settings.get(super::convert::TYPE_KEY)
        && let Some(type_thin) = super::convert::thin_of_type(t)
        && type_thin != spec.thin_provisioning
    {
        return Err(InvalidSpec::new(
            "spec.synology.type",
            format!(
                "{t} is {} but spec.thinProvisioning is {}",
                if type_thin { "thin" } else { "thick" },
                spec.thin_provisioning
            ),
        ));
    }
    let type_word = settings
        .get(super::convert::TYPE_KEY)
        .cloned()
        .unwrap_or_else(|| {
            if spec.thin_provisioning {
                "BLUN"
            } else {
                "BLUN_THICK"
            }
            .to_string()
        });
    Ok(DesiredLun {
        name,
        size_bytes,
        placement: Placement::Volume(location),
        thin: spec.thin_provisioning,
        description: spec.description.clone(),
        settings,
        // DSM fixes the LUN type at create.
        fixed_settings: vec![super::convert::TYPE_KEY.to_string()],
        // A clone takes its source's type.
        type_word: source.is_none().then_some(type_word),
        source,
    })
}

/// The target `spec` asks for on a DSM, or the first Synology rule it
/// breaks.
pub fn desired_target(
    spec: &IscsiTargetSpec,
    mut target: DesiredTarget,
) -> Result<DesiredTarget, InvalidSpec> {
    if spec.portal_group.is_some() {
        return Err(InvalidSpec::new(
            "spec.portalGroup",
            "is for NGXStorage arrays; this target's array is Synology",
        ));
    }
    if !spec.initiators.is_empty() {
        return Err(InvalidSpec::unsupported(
            "spec.initiators",
            "Synology targets take allowed initiators through host groups, which the DSM API used here does not offer; remove the list or use CHAP",
        ));
    }
    if let Some(v) = spec.max_recv_seg_bytes {
        target
            .settings
            .insert("maxRecvSegBytes".to_string(), v.to_string());
    }
    if let Some(v) = spec.max_send_seg_bytes {
        target
            .settings
            .insert("maxSendSegBytes".to_string(), v.to_string());
    }
    check_chap(target.chap.as_ref())?;
    Ok(target)
}

fn check_chap(chap: Option<&Chap>) -> Result<(), InvalidSpec> {
    let Some(chap) = chap else { return Ok(()) };
    let pairs = [
        ("spec.chap.secretRef", Some(&chap.initiator)),
        ("spec.chap.mutualSecretRef", chap.mutual.as_ref()),
    ];
    for (field, credential) in pairs {
        let Some(c) = credential else { continue };
        let len = c.password.expose().chars().count();
        if !CHAP_SECRET_LEN.contains(&len) {
            // The length only, never the secret.
            return Err(InvalidSpec::new(
                field,
                format!(
                    "the Secret's password is {len} characters; DSM takes CHAP passwords of {} to {} characters",
                    CHAP_SECRET_LEN.start(),
                    CHAP_SECRET_LEN.end()
                ),
            ));
        }
    }
    Ok(())
}
