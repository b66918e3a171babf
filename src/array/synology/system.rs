//! What the DSM says about itself: `SYNO.DSM.Info` `getinfo`, the call the
//! published clients make for the model and version (synology-api's
//! `dsm_info`, python-synology's `SynoDSMInformation`), with
//! `SYNO.Core.System` `info` as the fallback where `SYNO.DSM.Info` is not
//! offered.

use serde_json::Value;

use super::client::{CallKind, DsmClient};
use super::error::DsmError;
use super::params::Params;

/// The DSM information API.
pub const API_DSM_INFO: &str = "SYNO.DSM.Info";
/// The system information API (DSM 7).
pub const API_CORE_SYSTEM: &str = "SYNO.Core.System";

/// Model, version and serial of a DSM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DsmInfo {
    /// Model, for example `RS3621xs+`.
    pub model: Option<String>,
    /// The version as DSM shows it, for example `DSM 7.2.1-69057 Update 5`
    /// (`version_string`, or `firmware_ver` from `SYNO.Core.System`).
    pub version: Option<String>,
    /// The build number (`version`), for example `69057`.
    pub build: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
}

/// A string field that may come as a string or a number; empty is absent.
fn text(data: &Value, key: &str) -> Option<String> {
    match data.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl DsmInfo {
    /// Reads a `SYNO.DSM.Info` or `SYNO.Core.System` answer. Extra fields
    /// are ignored; an answer with neither a model nor a version is an
    /// error naming the fields and the call.
    pub(crate) fn decode(api_call: &str, data: &Value) -> Result<Self, DsmError> {
        let info = DsmInfo {
            model: text(data, "model"),
            version: text(data, "version_string").or_else(|| text(data, "firmware_ver")),
            build: text(data, "version"),
            serial: text(data, "serial"),
        };
        if info.model.is_none() && info.version.is_none() {
            return Err(DsmError::Decode {
                api_call: api_call.to_string(),
                subject: "the DSM".into(),
                detail: "missing field `model` and `version_string`/`firmware_ver`".into(),
            });
        }
        Ok(info)
    }
}

impl DsmClient {
    /// Model, version and serial: `SYNO.DSM.Info.getinfo`, or
    /// `SYNO.Core.System.info` when the DSM does not list `SYNO.DSM.Info`.
    pub async fn dsm_info(&self) -> Result<DsmInfo, DsmError> {
        let table = self.api_table().await?;
        let (api, method) =
            if table.contains_key(API_DSM_INFO) || !table.contains_key(API_CORE_SYSTEM) {
                (API_DSM_INFO, "getinfo")
            } else {
                (API_CORE_SYSTEM, "info")
            };
        let data = self
            .call_value(api, method, "the DSM", Params::new(), CallKind::Read)
            .await?;
        DsmInfo::decode(&format!("{api}.{method}"), &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_answers_decode_tolerantly() {
        // python-synology's DSM 6/7 fixtures (SYNO.DSM.Info) and a DSM 7
        // SYNO.Core.System answer.
        let rows = [
            (
                json!({"codepage": "enu", "model": "DS918+", "ram": 4096, "serial": "1920PDN001501",
                       "temperature": 40, "temperature_warn": false, "uptime": 155084,
                       "version": "24922", "version_string": "DSM 6.2.2-24922 Update 4"}),
                ("DS918+", "DSM 6.2.2-24922 Update 4", Some("24922")),
            ),
            (
                json!({"model": "DS213+", "version": 41222, "version_string": "DSM 7.0-41222"}),
                ("DS213+", "DSM 7.0-41222", Some("41222")),
            ),
            (
                json!({"model": "RS3621xs+", "firmware_ver": "DSM 7.2.1-69057 Update 5", "ram_size": 16384}),
                ("RS3621xs+", "DSM 7.2.1-69057 Update 5", None),
            ),
        ];
        for (data, (model, version, build)) in rows {
            let i = DsmInfo::decode("SYNO.DSM.Info.getinfo", &data).expect("decodes");
            assert_eq!(
                (i.model.as_deref(), i.version.as_deref(), i.build.as_deref()),
                (Some(model), Some(version), build)
            );
        }
        let e = DsmInfo::decode("SYNO.DSM.Info.getinfo", &json!({"ram": 1})).expect_err("empty");
        let text = e.to_string();
        assert!(
            text.contains("SYNO.DSM.Info.getinfo") && text.contains("`model`"),
            "{text}"
        );
    }
}
