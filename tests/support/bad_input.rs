//! The bad-input table of issue 14 (`tests/bad_input/cases.yaml`) as data
//! any test can drive: the schema check (tests/bad_input.rs), the engines
//! against the simulators (tests/bad_input.rs), a real apiserver and
//! operator (tests/e2e.rs), and `array-operator plan`.
//!
//! [`cases`] reads the table; [`schema_failures`] checks a manifest the way
//! the apiserver does and words each failure as the apiserver does, so one
//! expected substring serves both; [`array_manifests`] are the Secrets and
//! StorageArrays an engine-refused case's `arrayRef` (`dsm`, `ngx`) names.

#![allow(dead_code)]

use std::path::PathBuf;

use array_operator::crd::Vendor;
use array_operator::sim::faults::RecordedCall;
use serde::Deserialize;
use serde_json::{Value, json};

/// How a manifest must be refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The apiserver refuses it (422): one failure names `field` and
    /// contains `message`.
    Schema {
        /// The field path the failure names (`spec.size`, `spec.nics[0].mac`).
        field: String,
        /// A substring of the failure.
        message: String,
    },
    /// The apiserver stores it; the operator reports `Synced=False` with
    /// `reason` (`InvalidSpec` or `Unsupported`) and a message containing
    /// `message`, before any mutating array call.
    Engine {
        /// `InvalidSpec` or `Unsupported`.
        reason: String,
        /// A substring of the Synced condition's message.
        message: String,
        /// The vendor of the array the manifest names.
        vendor: Vendor,
    },
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique name of the case.
    pub name: String,
    /// The manifest as written in the table (YAML).
    pub manifest_yaml: String,
    /// The manifest read as JSON (YAML 1.2; the table keeps YAML 1.1 and 1.2
    /// readings equal, which tests/bad_input.rs checks).
    pub manifest: Value,
    /// Other manifests the case needs (Secrets, Luns), applied first.
    pub with: Vec<Value>,
    /// The same, as written.
    pub with_yaml: Vec<String>,
    /// How it must be refused.
    pub refusal: Refusal,
}

impl Case {
    /// The manifest's kind.
    pub fn kind(&self) -> &str {
        self.manifest["kind"].as_str().unwrap_or_default()
    }

    /// The manifest's metadata.name.
    pub fn object_name(&self) -> &str {
        self.manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    name: String,
    refusal: String,
    #[serde(default)]
    field: Option<String>,
    message: String,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    with: Vec<String>,
    manifest: String,
}

/// The table file.
pub fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input/cases.yaml")
}

fn yaml_value(text: &str, what: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"))
}

/// Every case of the table, in table order. Panics (naming the row) on a
/// malformed row.
pub fn cases() -> Vec<Case> {
    let path = table_path();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let rows: Vec<Row> = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a list of cases: {e}", path.display()));
    rows.into_iter()
        .map(|row| {
            let refusal = match row.refusal.as_str() {
                "Schema" => Refusal::Schema {
                    field: row
                        .field
                        .clone()
                        .unwrap_or_else(|| panic!("{}: a Schema case names its field", row.name)),
                    message: row.message.clone(),
                },
                reason @ ("InvalidSpec" | "Unsupported") => Refusal::Engine {
                    reason: reason.to_string(),
                    message: row.message.clone(),
                    vendor: match row.vendor.as_deref() {
                        Some("Synology") => Vendor::Synology,
                        Some("NGXStorage") => Vendor::NgxStorage,
                        other => panic!(
                            "{}: an engine case names its vendor (Synology or NGXStorage), not {other:?}",
                            row.name
                        ),
                    },
                },
                other => panic!("{}: unknown refusal {other:?}", row.name),
            };
            let manifest = yaml_value(&row.manifest, &row.name);
            let with = row
                .with
                .iter()
                .map(|w| yaml_value(w, &format!("{} (with)", row.name)))
                .collect();
            Case {
                name: row.name,
                manifest_yaml: row.manifest,
                manifest,
                with,
                with_yaml: row.with,
                refusal,
            }
        })
        .collect()
}

/// The name of the StorageArray engine cases of `vendor` name.
pub fn array_name(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Synology => "dsm",
        Vendor::NgxStorage => "ngx",
    }
}

/// The credentials and CA Secrets and the StorageArray an engine case of
/// `vendor` names, for an array at `endpoint` whose certificate `ca_pem`
/// signs. `credentials` are the Secret's keys (`username`/`password` for
/// Synology, `token` for NGXStorage); `ngx_owner` is the controller id NGX
/// mutations name.
pub fn array_manifests(
    vendor: Vendor,
    endpoint: &str,
    ca_pem: &str,
    credentials: Value,
    ngx_owner: Option<&str>,
) -> Vec<Value> {
    let name = array_name(vendor);
    let mut spec = json!({
        "vendor": match vendor { Vendor::Synology => "Synology", Vendor::NgxStorage => "NGXStorage" },
        "endpoint": endpoint,
        "credentialsSecretRef": {"name": format!("{name}-credentials")},
        "tls": {"caSecretRef": {"name": format!("{name}-ca")}},
        "resyncInterval": "30s",
    });
    if let Some(owner) = ngx_owner {
        spec["ngxstorage"] = json!({"owner": owner});
    }
    vec![
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{name}-credentials")},
            "type": "Opaque", "stringData": credentials,
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{name}-ca")},
            "type": "Opaque", "stringData": {"ca.crt": ca_pem},
        }),
        json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
            "metadata": {"name": name},
            "spec": spec,
        }),
    ]
}

/// True when `call` (recorded by the simulator of `vendor`) changes the
/// array: NGX answers every read to a GET; DSM names its reads (the
/// methods the client sends as `CallKind::Read`, the API table query, the
/// session's login and logout, and the system information a connection
/// reads).
pub fn is_mutating(vendor: Vendor, call: &RecordedCall) -> bool {
    match vendor {
        Vendor::NgxStorage => call.http_method != "GET",
        Vendor::Synology => {
            let method = call.operation.rsplit('.').next().unwrap_or_default();
            !matches!(
                method,
                "list"
                    | "get"
                    | "query"
                    | "login"
                    | "logout"
                    | "list_snapshot"
                    | "info"
                    | "getinfo"
            )
        }
    }
}

/// Every failure the apiserver would report creating `object`, worded as
/// it words them: the library's check (`array_operator::crd::validate`),
/// which `array-operator plan` runs too.
pub fn schema_failures(object: &Value) -> Vec<String> {
    array_operator::crd::validate::schema_failures(object)
}

/// True when one of `failures` names `field` and contains `message`.
pub fn refused_with(failures: &[String], field: &str, message: &str) -> bool {
    failures
        .iter()
        .any(|f| f.contains(field) && f.contains(message))
}
