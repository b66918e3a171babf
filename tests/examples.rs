//! Every manifest under `examples/` deserializes into the Rust types and is
//! accepted by the generated schema, and every kind has an example for each
//! vendor that serves it.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use array_operator::crd::{
    IscsiTarget, Lun, ReplicationPlan, SnapshotSchedule, StorageArray, VirtualMachine,
};
use serde_json::Value;

fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read examples") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Deserializes into the typed kind and returns its JSON form (with the Rust
/// defaults applied, as the apiserver would default them).
fn typed(kind: &str, doc: &Value) -> Value {
    fn round<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
        let typed: T = serde_json::from_value(doc.clone()).expect("deserializes");
        serde_json::to_value(typed).expect("serializes")
    }
    match kind {
        "StorageArray" => round::<StorageArray>(doc),
        "Lun" => round::<Lun>(doc),
        "IscsiTarget" => round::<IscsiTarget>(doc),
        "SnapshotSchedule" => round::<SnapshotSchedule>(doc),
        "ReplicationPlan" => round::<ReplicationPlan>(doc),
        "VirtualMachine" => round::<VirtualMachine>(doc),
        other => panic!("unexpected kind {other}"),
    }
}

#[test]
fn every_example_deserializes_and_matches_its_schema() {
    let files = example_files();
    assert!(!files.is_empty(), "no examples found");
    let mut seen = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let vendor = file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .expect("vendor directory");
        for doc in support::yaml_documents(&text) {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
            let at = format!("{} ({kind}/{name})", file.display());
            if kind == "Secret" {
                let secret: k8s_openapi::api::core::v1::Secret =
                    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert!(
                    secret.string_data.is_some() || secret.data.is_some(),
                    "{at}: empty Secret"
                );
                continue;
            }
            assert_eq!(doc["apiVersion"], "array-operator.io/v1alpha1", "{at}");
            if let Err(f) = support::check_create(&kind, &doc) {
                panic!("{at}: refused by the schema as written: {f:#?}");
            }
            let defaulted = typed(&kind, &doc);
            if let Err(f) = support::check_create(&kind, &defaulted) {
                panic!("{at}: refused by the schema after defaulting: {f:#?}");
            }
            if let Some(arr) = doc["spec"]["arrayRef"]["name"].as_str() {
                let expected = if vendor == "synology" { "dsm1" } else { "ngx1" };
                assert_eq!(arr, expected, "{at}: refers to another vendor's array");
            }
            seen.insert((vendor.clone(), kind));
        }
    }
    let want = [
        ("synology", "StorageArray"),
        ("synology", "Lun"),
        ("synology", "IscsiTarget"),
        ("synology", "SnapshotSchedule"),
        ("synology", "ReplicationPlan"),
        ("synology", "VirtualMachine"),
        ("ngxstorage", "StorageArray"),
        ("ngxstorage", "Lun"),
        ("ngxstorage", "IscsiTarget"),
        ("ngxstorage", "SnapshotSchedule"),
    ];
    for (vendor, kind) in want {
        assert!(
            seen.contains(&(vendor.to_string(), kind.to_string())),
            "no {vendor} example of {kind}"
        );
    }
}

#[test]
fn typed_round_trip_keeps_every_field_of_the_examples() {
    // A field the Rust type does not know would be dropped silently by serde;
    // the examples must use only fields the types (and so the schema) have.
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read");
        for doc in support::yaml_documents(&text) {
            let kind = doc["kind"].as_str().expect("kind");
            if kind == "Secret" {
                continue;
            }
            let back = typed(kind, &doc);
            let missing = missing_fields(&doc["spec"], &back["spec"], "spec");
            assert!(
                missing.is_empty(),
                "{}: {kind} drops {missing:?}",
                file.display()
            );
        }
    }
}

fn missing_fields(written: &Value, kept: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(w), Some(k)) = (written.as_object(), kept.as_object()) {
        for (key, value) in w {
            match k.get(key) {
                None => out.push(format!("{path}.{key}")),
                Some(kv) => out.extend(missing_fields(value, kv, &format!("{path}.{key}"))),
            }
        }
    }
    out
}

/// Every Secret the examples refer to holds what the vendor accepts: DSM
/// credentials (username, password), an NGX token, and CHAP secrets with a
/// username and a 12-16 character password (DSM's rule in
/// synology-iscsi-lun-target; most initiators, ESXi and Windows among them,
/// want the same on NGX).
#[test]
fn every_example_secret_meets_the_vendor_limits() {
    let mut checked = 0;
    for vendor in ["synology", "ngxstorage"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(vendor);
        let docs: Vec<Value> = support::yaml11::yaml_files(&dir)
            .iter()
            .flat_map(|f| support::yaml_documents(&std::fs::read_to_string(f).expect("read")))
            .collect();
        let secret = |name: &str| -> serde_json::Map<String, Value> {
            docs.iter()
                .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == name)
                .and_then(|d| d["stringData"].as_object().cloned())
                .unwrap_or_else(|| panic!("{vendor}: no Secret {name} with stringData"))
        };
        for doc in &docs {
            let name = doc["metadata"]["name"].as_str().unwrap_or("?");
            match doc["kind"].as_str() {
                Some("StorageArray") => {
                    let creds = secret(
                        doc["spec"]["credentialsSecretRef"]["name"]
                            .as_str()
                            .expect("credentialsSecretRef"),
                    );
                    let keys: Vec<&str> = if vendor == "synology" {
                        vec!["username", "password"]
                    } else {
                        vec!["token"]
                    };
                    for key in keys {
                        assert!(
                            creds
                                .get(key)
                                .and_then(Value::as_str)
                                .is_some_and(|v| !v.is_empty()),
                            "{vendor} StorageArray {name}: credentials lack {key}"
                        );
                    }
                    checked += 1;
                }
                Some("IscsiTarget") => {
                    for field in ["secretRef", "mutualSecretRef"] {
                        let Some(secret_name) = doc["spec"]["chap"][field]["name"].as_str() else {
                            continue;
                        };
                        let chap = secret(secret_name);
                        let user = chap.get("username").and_then(Value::as_str).unwrap_or("");
                        let password = chap.get("password").and_then(Value::as_str).unwrap_or("");
                        assert!(!user.is_empty(), "{vendor} {name}: {field} has no username");
                        let n = password.chars().count();
                        assert!(
                            (12..=16).contains(&n),
                            "{vendor} IscsiTarget {name}: the {field} CHAP password has {n} characters; 12 to 16 are accepted"
                        );
                        checked += 1;
                    }
                }
                _ => {}
            }
        }
    }
    // Two arrays, two CHAP secrets on DSM (mutual), one on NGX.
    assert_eq!(checked, 5, "Secrets checked");
}
