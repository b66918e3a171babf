//! Pure translations between DSM's shapes and the vendor-neutral views:
//! observed LUNs and targets, the spec settings keys, and the generated IQN.
//! No I/O here, so every rule is unit-tested without a simulator.

use std::collections::BTreeMap;

use crate::array::synology::{DevAttribs, Lun, LunType, SetTarget, Target};
use crate::model::{LunSettings, ObservedChap, ObservedLun, ObservedTarget, Placement};

use super::super::BackendError;

/// The `synology.*` settings keys, each with the `dev_attrib` it stands for.
/// `synology.type` is separate: it is the LUN type, fixed at create.
pub const FLAG_KEYS: [(&str, &str); 7] = [
    ("synology.emulateCaw", "emulate_caw"),
    ("synology.emulate3pc", "emulate_3pc"),
    ("synology.emulateTpu", "emulate_tpu"),
    ("synology.emulateTpws", "emulate_tpws"),
    ("synology.emulateFuaWrite", "emulate_fua_write"),
    ("synology.emulateSyncCache", "emulate_sync_cache"),
    ("synology.canSnapshot", "can_snapshot"),
];

/// The settings key of the LUN type.
pub const TYPE_KEY: &str = "synology.type";

/// Whether a DSM LUN type is thin-provisioned, where it can be told.
///
/// From the DSM docs and SAN Manager: `BLUN` ("Thin Provisioning" on Btrfs),
/// `THIN` (its legacy ext4 name) and `ADV` (the ext4 "advanced" LUN, which
/// is thin) allocate on write, as do their Cinder/replica-sink twins
/// (`CINDER_BLUN`, `BLUN_SINK`). `BLUN_THICK`, `FILE` (regular file LUN,
/// preallocated) and `BLOCK` (a whole disk or RAID) are thick, as are the
/// `*_THICK*` twins. `CINDER` and `SINK` are not documented either way:
/// `None`, so the diff does not report drift it cannot be sure of.
pub fn thin_of_type(lun_type: &str) -> Option<bool> {
    match lun_type {
        "BLUN" | "THIN" | "ADV" | "CINDER_BLUN" | "BLUN_SINK" => Some(true),
        "BLUN_THICK" | "FILE" | "BLOCK" | "CINDER_BLUN_THICK" | "BLUN_THICK_SINK" => Some(false),
        _ => None,
    }
}

/// The client's [`LunType`] for a type word.
pub fn lun_type_of(word: &str) -> LunType {
    match word {
        "BLUN" => LunType::Blun,
        "BLUN_THICK" => LunType::BlunThick,
        "THIN" => LunType::Thin,
        "ADV" => LunType::Adv,
        "FILE" => LunType::File,
        other => LunType::Other(other.to_string()),
    }
}

fn flag_text(on: bool) -> String {
    if on { "true" } else { "false" }.to_string()
}

/// The LUN settings DSM reports: its type and the `dev_attribs` it lists.
pub fn lun_settings(lun: &Lun) -> LunSettings {
    let mut settings = LunSettings::new();
    if let Some(t) = &lun.type_str {
        settings.insert(TYPE_KEY.to_string(), t.clone());
    }
    for (key, attrib) in FLAG_KEYS {
        if let Some(a) = lun.dev_attribs.iter().find(|a| a.dev_attrib == attrib) {
            settings.insert(key.to_string(), flag_text(a.enable != 0));
        }
    }
    settings
}

/// LUN uuid → the ids of the targets mapping it, built once per listing so
/// that observing every LUN costs one pass over the mappings, not one pass
/// over every target per LUN (quadratic at 10,000 LUNs).
pub type TargetsByLun = std::collections::HashMap<String, Vec<String>>;

/// The [`TargetsByLun`] of a target listing.
pub fn targets_by_lun(targets: &[Target]) -> TargetsByLun {
    let mut by_lun = TargetsByLun::new();
    for t in targets {
        for m in &t.mapped_luns {
            by_lun
                .entry(m.lun_uuid.clone())
                .or_default()
                .push(t.target_id.to_string());
        }
    }
    by_lun
}

/// A DSM LUN as the neutral view; `targets` is the Target list, from which
/// the LUN's mappings are read (DSM's LUN list only says `is_mapped`).
pub fn observed_lun(lun: &Lun, targets: &TargetsByLun) -> ObservedLun {
    let mapped_targets = targets.get(&lun.uuid).cloned().unwrap_or_default();
    ObservedLun {
        id: lun.uuid.clone(),
        name: lun.name.clone(),
        size_bytes: lun.size,
        allocated_bytes: lun.allocated_size,
        lun_type: lun.type_str.clone(),
        placement: (!lun.location.is_empty()).then(|| Placement::Volume(lun.location.clone())),
        thin: lun.type_str.as_deref().and_then(thin_of_type),
        description: Some(lun.description.clone()),
        settings: lun_settings(lun),
        mapped_targets,
        status: lun.status_text(),
    }
}

/// A DSM target as the neutral view. DSM never returns CHAP secrets (the
/// `password` fields are always empty), so only user names are observed.
pub fn observed_target(t: &Target) -> ObservedTarget {
    let mut settings = BTreeMap::new();
    if let Some(m) = t.max_sessions {
        settings.insert("maxSessions".to_string(), m.to_string());
    }
    settings.insert("headerDigest".to_string(), flag_text(t.has_header_checksum));
    settings.insert("dataDigest".to_string(), flag_text(t.has_data_checksum));
    if let Some(v) = t.max_recv_seg_bytes {
        settings.insert("maxRecvSegBytes".to_string(), v.to_string());
    }
    if let Some(v) = t.max_send_seg_bytes {
        settings.insert("maxSendSegBytes".to_string(), v.to_string());
    }
    let chap = match t.auth_type {
        1 | 2 => Some(ObservedChap {
            username: t.user.clone(),
            password: None,
            mutual_username: (t.auth_type == 2).then(|| t.mutual_user.clone()),
            mutual_password: None,
        }),
        _ => None,
    };
    let mut mapped = t.mapped_luns.clone();
    // LUN-number order; an entry without a number sorts last, keeping DSM's
    // order among those.
    mapped.sort_by_key(|m| m.mapping_index.unwrap_or(i64::MAX));
    ObservedTarget {
        id: t.target_id.to_string(),
        name: t.name.clone(),
        iqn: t.iqn.clone(),
        enabled: t.is_enabled,
        settings,
        chap,
        // DSM's ACLs (host masking) are out of scope.
        initiators: Vec::new(),
        mapped_luns: mapped.into_iter().map(|m| m.lun_uuid).collect(),
        connected_sessions: u32::try_from(t.connected_sessions.len()).ok(),
        status: t.status.clone(),
    }
}

fn parse_bool(api_call: &str, key: &str, value: &str) -> Result<bool, BackendError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(BackendError::invalid(
            api_call,
            format!("spec.{key}: expected true or false, got {value:?}"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(
    api_call: &str,
    key: &str,
    value: &str,
) -> Result<T, BackendError> {
    value.parse().map_err(|_| {
        BackendError::invalid(
            api_call,
            format!("spec.{key}: expected a whole number, got {value:?}"),
        )
    })
}

/// The `dev_attribs` asked for by `synology.*` flag settings. `synology.type`
/// is skipped (the caller decides what a type means there); any other key
/// is refused, naming it.
pub fn dev_attribs_from(
    api_call: &str,
    settings: &LunSettings,
) -> Result<DevAttribs, BackendError> {
    let mut attribs = DevAttribs::default();
    for (key, value) in settings {
        if key == TYPE_KEY {
            continue;
        }
        let on = Some(parse_bool(api_call, key, value)?);
        match key.as_str() {
            "synology.emulateCaw" => attribs.emulate_caw = on,
            "synology.emulate3pc" => attribs.emulate_3pc = on,
            "synology.emulateTpu" => attribs.emulate_tpu = on,
            "synology.emulateTpws" => attribs.emulate_tpws = on,
            "synology.emulateFuaWrite" => attribs.emulate_fua_write = on,
            "synology.emulateSyncCache" => attribs.emulate_sync_cache = on,
            "synology.canSnapshot" => attribs.can_snapshot = on,
            _ => {
                return Err(BackendError::invalid(
                    api_call,
                    format!("spec.{key}: not a setting of a Synology LUN"),
                ));
            }
        }
    }
    Ok(attribs)
}

/// Target settings keys parsed into a `Target set` request (without CHAP).
/// `portalGroup` is NGXStorage's: Unsupported; unknown keys: InvalidRequest.
pub fn target_set_from(
    api_call: &str,
    settings: &BTreeMap<String, String>,
) -> Result<SetTarget, BackendError> {
    let mut set = SetTarget::default();
    for (key, value) in settings {
        match key.as_str() {
            "iqn" => set.iqn = Some(value.clone()),
            "maxSessions" => set.max_sessions = Some(parse_num(api_call, key, value)?),
            "headerDigest" => set.has_header_checksum = Some(parse_bool(api_call, key, value)?),
            "dataDigest" => set.has_data_checksum = Some(parse_bool(api_call, key, value)?),
            "maxRecvSegBytes" => set.max_recv_seg_bytes = Some(parse_num(api_call, key, value)?),
            "maxSendSegBytes" => set.max_send_seg_bytes = Some(parse_num(api_call, key, value)?),
            "portalGroup" => {
                return Err(BackendError::unsupported(
                    api_call,
                    "spec.portalGroup: DSM targets listen on every portal; portal groups are NGXStorage's",
                ));
            }
            _ => {
                return Err(BackendError::invalid(
                    api_call,
                    format!("spec.{key}: not a setting of a Synology target"),
                ));
            }
        }
    }
    Ok(set)
}

/// Text made fit for an IQN (RFC 3720 as DSM checks it: lower case letters,
/// digits, `.`, `-` and `:`): lower-cased, anything else becomes `-`.
fn iqn_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The prefix of every IQN DSM's UI generates.
pub const SYNOLOGY_IQN_PREFIX: &str = "iqn.2000-01.com.synology:";

/// The host part of a generated IQN when the DSM host name is unknown.
pub const FALLBACK_HOST: &str = "dsm";

/// The host name in an IQN DSM generated (`iqn.2000-01.com.synology:<host>.<name>`).
pub fn host_of_iqn(iqn: &str) -> Option<&str> {
    let rest = iqn.strip_prefix(SYNOLOGY_IQN_PREFIX)?;
    let (host, _) = rest.split_once('.')?;
    (!host.is_empty()).then_some(host)
}

/// The IQN DSM's UI would give target `name` on host `host`:
/// `iqn.2000-01.com.synology:<host>.<name>`, both parts made IQN-safe.
pub fn generated_iqn(host: &str, name: &str) -> String {
    format!("{SYNOLOGY_IQN_PREFIX}{}.{}", iqn_part(host), iqn_part(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::synology::MappedLun;
    use crate::array::synology::lun::DevAttrib;

    fn lun(json: serde_json::Value) -> Lun {
        serde_json::from_value(json).expect("lun")
    }

    #[test]
    fn thin_follows_the_type() {
        assert_eq!(thin_of_type("BLUN"), Some(true));
        assert_eq!(thin_of_type("THIN"), Some(true));
        assert_eq!(thin_of_type("ADV"), Some(true));
        assert_eq!(thin_of_type("BLUN_THICK"), Some(false));
        assert_eq!(thin_of_type("FILE"), Some(false));
        assert_eq!(thin_of_type("SINK"), None);
    }

    #[test]
    fn lun_settings_report_only_what_dsm_lists() {
        let mut l =
            lun(serde_json::json!({"uuid": "u", "name": "n", "size": 1, "type_str": "BLUN"}));
        l.dev_attribs = vec![
            DevAttrib {
                dev_attrib: "emulate_caw".into(),
                enable: 1,
            },
            DevAttrib {
                dev_attrib: "can_snapshot".into(),
                enable: 0,
            },
        ];
        let s = lun_settings(&l);
        assert_eq!(s.len(), 3);
        assert_eq!(s["synology.type"], "BLUN");
        assert_eq!(s["synology.emulateCaw"], "true");
        assert_eq!(s["synology.canSnapshot"], "false");
    }

    #[test]
    fn target_mappings_in_lun_number_order() {
        let t: Target = serde_json::from_value(serde_json::json!({
            "target_id": 4, "name": "t", "iqn": "iqn.2000-01.com.synology:nas01.t",
            "auth_type": 2, "user": "u", "mutual_user": "m", "password": "",
        }))
        .expect("target");
        let t = Target {
            mapped_luns: vec![
                MappedLun {
                    lun_uuid: "b".into(),
                    mapping_index: Some(2),
                },
                MappedLun {
                    lun_uuid: "a".into(),
                    mapping_index: Some(1),
                },
            ],
            ..t
        };
        let o = observed_target(&t);
        assert_eq!(o.mapped_luns, vec!["a", "b"]);
        let chap = o.chap.expect("chap");
        assert_eq!(chap.mutual_username.as_deref(), Some("m"));
        assert_eq!(chap.password, None);
        assert_eq!(o.id, "4");
    }

    #[test]
    fn settings_parse_and_refuse() {
        let s: LunSettings = [("synology.emulateTpu".to_string(), "false".to_string())].into();
        assert_eq!(
            dev_attribs_from("x", &s).expect("ok").emulate_tpu,
            Some(false)
        );
        let bad: LunSettings = [("ngxstorage.compression".to_string(), "lz4".to_string())].into();
        assert!(dev_attribs_from("x", &bad).is_err());
        let t: BTreeMap<String, String> = [
            ("maxSessions".to_string(), "4".to_string()),
            ("headerDigest".to_string(), "true".to_string()),
        ]
        .into();
        let set = target_set_from("x", &t).expect("ok");
        assert_eq!(set.max_sessions, Some(4));
        assert_eq!(set.has_header_checksum, Some(true));
        let pg: BTreeMap<String, String> = [("portalGroup".to_string(), "1".to_string())].into();
        assert_eq!(
            target_set_from("x", &pg).expect_err("pg").class,
            crate::array::error::ErrorClass::Unsupported
        );
    }

    #[test]
    fn iqn_generation_like_the_dsm_ui() {
        assert_eq!(
            generated_iqn("NAS01", "pvc_1"),
            "iqn.2000-01.com.synology:nas01.pvc-1"
        );
        assert_eq!(
            host_of_iqn("iqn.2000-01.com.synology:nas01.pvc-1"),
            Some("nas01")
        );
        assert_eq!(host_of_iqn("iqn.2005-10.org.freenas.ctl:x"), None);
    }
}
