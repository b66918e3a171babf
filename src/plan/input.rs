//! The manifests a plan reads: files, directories (recursively, `*.yaml` and
//! `*.yml`, in name order) or standard input, each multi-document YAML as a
//! GitOps repository, `kustomize build` or `helm template` gives it.
//!
//! Kinds that are not the operator's (Namespaces, Deployments, ...) are
//! counted and left alone; `v1` Secrets are kept, for the credentials and
//! CHAP Secrets the objects name. An object without a namespace is in
//! `default`, as `kubectl apply` without `-n` would put it.
//!
//! Each object of the operator's kinds is first checked against its CRD
//! schema, as the apiserver checks it on create
//! ([`crate::crd::validate::schema_failures`]); one that fails is kept
//! aside in [`Manifests::invalid`] with the apiserver's failures, never
//! read as its Rust type, and the plan reports it refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde::de::DeserializeOwned;

use crate::crd::{
    IscsiTarget, Lun, ReplicationPlan, SnapshotSchedule, StorageArray, VirtualMachine,
};

/// The namespace of an object whose manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where manifests come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file, or a directory read recursively.
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// `-` is standard input; anything else a path.
    pub fn parse(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::Path(PathBuf::from(arg))
        }
    }
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A document is not YAML, or not an object of its kind.
    #[error("{origin}: document {document}: {problem}")]
    Document {
        /// The file (or `<stdin>`).
        origin: String,
        /// Its position in the file, from 1.
        document: usize,
        /// What is wrong.
        problem: String,
    },
    /// Two documents define the same object.
    #[error("{origin}: {object} is defined twice")]
    Duplicate {
        /// Where the second one is.
        origin: String,
        /// `Kind namespace/name`.
        object: String,
    },
    /// Nothing the operator manages was found.
    #[error(
        "no StorageArray, Lun, IscsiTarget, SnapshotSchedule, ReplicationPlan or VirtualMachine in the input"
    )]
    Empty,
}

/// Everything the input holds that a plan uses. Secrets are kept out of
/// `Debug`.
#[derive(Clone, Default)]
pub struct Manifests {
    /// StorageArrays.
    pub storage_arrays: Vec<StorageArray>,
    /// Luns.
    pub luns: Vec<Lun>,
    /// IscsiTargets.
    pub targets: Vec<IscsiTarget>,
    /// SnapshotSchedules.
    pub schedules: Vec<SnapshotSchedule>,
    /// ReplicationPlans.
    pub replication_plans: Vec<ReplicationPlan>,
    /// VirtualMachines.
    pub vms: Vec<VirtualMachine>,
    /// `v1` Secrets by (namespace, name), `stringData` folded into `data`.
    pub secrets: BTreeMap<(String, String), Secret>,
    /// Objects of other kinds, as `Kind namespace/name`: left alone.
    pub ignored: Vec<String>,
    /// Objects of the operator's kinds the CRD schema refuses, as the
    /// apiserver would on create: reported refused, never planned.
    pub invalid: Vec<InvalidObject>,
}

/// An object of the operator's kinds that its CRD schema refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidObject {
    /// The kind (`Lun`, `StorageArray`, ...).
    pub kind: String,
    /// Namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.arrayRef.name` when the manifest has one as a string (a
    /// StorageArray's own name for itself), else empty.
    pub array: String,
    /// Every failure, worded as the apiserver words it (`field: message`).
    pub failures: Vec<String>,
}

impl std::fmt::Debug for Manifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifests")
            .field("storage_arrays", &self.storage_arrays.len())
            .field("luns", &self.luns.len())
            .field("targets", &self.targets.len())
            .field("schedules", &self.schedules.len())
            .field("replication_plans", &self.replication_plans.len())
            .field("vms", &self.vms.len())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("ignored", &self.ignored)
            .field("invalid", &self.invalid)
            .finish()
    }
}

impl Manifests {
    /// The number of objects the operator manages (StorageArrays included).
    pub fn object_count(&self) -> usize {
        self.storage_arrays.len()
            + self.luns.len()
            + self.targets.len()
            + self.schedules.len()
            + self.replication_plans.len()
            + self.vms.len()
            + self.invalid.len()
    }

    /// Whether the input already holds `kind namespace/name`, valid or
    /// not.
    fn holds(&self, kind: &str, namespace: &str, name: &str) -> bool {
        fn any<K: kube::Resource>(list: &[K], namespace: &str, name: &str) -> bool {
            list.iter().any(|o| {
                o.meta().namespace.as_deref() == Some(namespace)
                    && o.meta().name.as_deref() == Some(name)
            })
        }
        let valid = match kind {
            "StorageArray" => any(&self.storage_arrays, namespace, name),
            "Lun" => any(&self.luns, namespace, name),
            "IscsiTarget" => any(&self.targets, namespace, name),
            "SnapshotSchedule" => any(&self.schedules, namespace, name),
            "ReplicationPlan" => any(&self.replication_plans, namespace, name),
            "VirtualMachine" => any(&self.vms, namespace, name),
            _ => false,
        };
        valid
            || self
                .invalid
                .iter()
                .any(|o| o.kind == kind && o.namespace == namespace && o.name == name)
    }

    /// The Secret `namespace/name`, if the input has it.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.get(&(namespace.to_string(), name.to_string()))
    }
}

/// Reads every source into one set of manifests.
pub fn read(sources: &[Source]) -> Result<Manifests, InputError> {
    let mut m = Manifests::default();
    for source in sources {
        match source {
            Source::Stdin => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(
                    |source| InputError::Read {
                        path: PathBuf::from("-"),
                        source,
                    },
                )?;
                parse_into(&text, "<stdin>", &mut m)?;
            }
            Source::Path(path) => {
                for file in files(path)? {
                    let text =
                        std::fs::read_to_string(&file).map_err(|source| InputError::Read {
                            path: file.clone(),
                            source,
                        })?;
                    parse_into(&text, &file.display().to_string(), &mut m)?;
                }
            }
        }
    }
    if m.object_count() == 0 {
        return Err(InputError::Empty);
    }
    Ok(m)
}

/// The manifest files under `path`: itself when it is a file, else every
/// `*.yaml` / `*.yml` below it, in path order (so a plan does not depend on
/// the order the file system lists them in).
fn files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let read_err = |source| InputError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            out.extend(files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml")
        {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The manifests of one multi-document YAML text (for callers that hold
/// the text, such as tests of bad input).
pub fn parse(text: &str) -> Result<Manifests, InputError> {
    let mut m = Manifests::default();
    parse_into(text, "<text>", &mut m)?;
    Ok(m)
}

/// Parses one multi-document YAML text into `m`. `origin` names it in
/// errors.
pub fn parse_into(text: &str, origin: &str, m: &mut Manifests) -> Result<(), InputError> {
    use serde::Deserialize;
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let bad = |problem: String| InputError::Document {
            origin: origin.to_string(),
            document,
            problem,
        };
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| bad(e.to_string()))?;
        if value.is_null() {
            // An empty document (a trailing `---`).
            continue;
        }
        let value: serde_json::Value =
            serde_json::to_value(&value).map_err(|e| bad(e.to_string()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some("List") {
            for item in value
                .get("items")
                .and_then(|i| i.as_array())
                .cloned()
                .unwrap_or_default()
            {
                add(item, origin, document, m)?;
            }
        } else {
            add(value, origin, document, m)?;
        }
    }
    Ok(())
}

fn object<K: DeserializeOwned + kube::Resource>(
    value: serde_json::Value,
    origin: &str,
    document: usize,
) -> Result<K, InputError> {
    let mut obj: K = serde_json::from_value(value).map_err(|e| InputError::Document {
        origin: origin.to_string(),
        document,
        problem: e.to_string(),
    })?;
    let meta = obj.meta_mut();
    if meta.name.as_deref().is_none_or(str::is_empty) {
        return Err(InputError::Document {
            origin: origin.to_string(),
            document,
            problem: "metadata.name is missing".into(),
        });
    }
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some(DEFAULT_NAMESPACE.to_string());
    }
    // As the apiserver would: a new object is at generation 1.
    meta.generation.get_or_insert(1);
    Ok(obj)
}

fn push_unique<K: kube::Resource<DynamicType = ()>>(
    list: &mut Vec<K>,
    obj: K,
    origin: &str,
) -> Result<(), InputError> {
    let key = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
    if list.iter().any(|o| key(o) == key(&obj)) {
        return Err(InputError::Duplicate {
            origin: origin.to_string(),
            object: format!(
                "{} {}/{}",
                K::kind(&()),
                obj.meta().namespace.as_deref().unwrap_or_default(),
                obj.meta().name.as_deref().unwrap_or_default()
            ),
        });
    }
    list.push(obj);
    Ok(())
}

/// The operator's kinds.
const KINDS: [&str; 6] = [
    "StorageArray",
    "Lun",
    "IscsiTarget",
    "SnapshotSchedule",
    "ReplicationPlan",
    "VirtualMachine",
];

/// Checks an object of the operator's `kind` against its CRD schema before
/// anything else reads it (its Rust type may not even read a manifest the
/// schema refuses); one the schema refuses goes to [`Manifests::invalid`]
/// and `true` is returned. A missing name or a second definition is an
/// input error whether the schema accepts the object or not.
fn schema_refused(
    value: &serde_json::Value,
    kind: &str,
    origin: &str,
    document: usize,
    m: &mut Manifests,
) -> Result<bool, InputError> {
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let metadata = value.get("metadata");
    let Some(name) = text(metadata.and_then(|x| x.get("name"))) else {
        return Err(InputError::Document {
            origin: origin.to_string(),
            document,
            problem: "metadata.name is missing".into(),
        });
    };
    let namespace = text(metadata.and_then(|x| x.get("namespace")))
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    if m.holds(kind, &namespace, &name) {
        return Err(InputError::Duplicate {
            origin: origin.to_string(),
            object: format!("{kind} {namespace}/{name}"),
        });
    }
    let failures = crate::crd::validate::schema_failures(value);
    if failures.is_empty() {
        return Ok(false);
    }
    let array = if kind == "StorageArray" {
        name.clone()
    } else {
        text(
            value
                .get("spec")
                .and_then(|s| s.get("arrayRef"))
                .and_then(|r| r.get("name")),
        )
        .unwrap_or_default()
    };
    m.invalid.push(InvalidObject {
        kind: kind.to_string(),
        namespace,
        name,
        array,
        failures,
    });
    Ok(true)
}

fn add(
    value: serde_json::Value,
    origin: &str,
    document: usize,
    m: &mut Manifests,
) -> Result<(), InputError> {
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() || api_version.is_empty() {
        return Err(InputError::Document {
            origin: origin.to_string(),
            document,
            problem: "not a Kubernetes object: apiVersion and kind are required".into(),
        });
    }
    let ours = api_version == "array-operator.io/v1alpha1";
    if ours && KINDS.contains(&kind.as_str()) && schema_refused(&value, &kind, origin, document, m)?
    {
        return Ok(());
    }
    match (ours, kind.as_str()) {
        (true, "StorageArray") => {
            let o = object(value, origin, document)?;
            push_unique(&mut m.storage_arrays, o, origin)
        }
        (true, "Lun") => {
            let o = object(value, origin, document)?;
            push_unique(&mut m.luns, o, origin)
        }
        (true, "IscsiTarget") => {
            let o = object(value, origin, document)?;
            push_unique(&mut m.targets, o, origin)
        }
        (true, "SnapshotSchedule") => {
            let o = object(value, origin, document)?;
            push_unique(&mut m.schedules, o, origin)
        }
        (true, "ReplicationPlan") => {
            let o = object(value, origin, document)?;
            push_unique(&mut m.replication_plans, o, origin)
        }
        (true, "VirtualMachine") => {
            let o = object(value, origin, document)?;
            push_unique(&mut m.vms, o, origin)
        }
        (true, other) => Err(InputError::Document {
            origin: origin.to_string(),
            document,
            problem: format!("array-operator.io/v1alpha1 has no kind {other}"),
        }),
        (false, "Secret") if api_version == "v1" => {
            let secret: Secret = object(value, origin, document)?;
            let secret = fold_string_data(secret);
            let key = (
                secret.metadata.namespace.clone().unwrap_or_default(),
                secret.metadata.name.clone().unwrap_or_default(),
            );
            m.secrets.insert(key, secret);
            Ok(())
        }
        (false, _) => {
            let meta = value.get("metadata");
            let name = meta
                .and_then(|x| x.get("name"))
                .and_then(|x| x.as_str())
                .unwrap_or_default();
            let namespace = meta
                .and_then(|x| x.get("namespace"))
                .and_then(|x| x.as_str());
            m.ignored.push(match namespace {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            });
            Ok(())
        }
    }
}

/// `stringData` into `data`, as the apiserver stores a Secret (a key in
/// both takes `stringData`'s value).
pub fn fold_string_data(mut secret: Secret) -> Secret {
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in strings {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_of_other_kinds_are_counted_and_secrets_folded() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: storage}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: storage}
stringData: {token: abc}
data: {other: eHl6}
---
apiVersion: array-operator.io/v1alpha1
kind: StorageArray
metadata: {name: ngx1}
spec:
  vendor: NGXStorage
  endpoint: https://ngx1.example.com
  credentialsSecretRef: {name: creds}
  ngxstorage: {owner: TAG_A}
---
"#;
        let mut m = Manifests::default();
        parse_into(text, "t.yaml", &mut m).expect("parses");
        assert_eq!(m.ignored, vec!["Namespace storage".to_string()]);
        assert_eq!(m.storage_arrays.len(), 1);
        assert_eq!(
            m.storage_arrays[0].metadata.namespace.as_deref(),
            Some(DEFAULT_NAMESPACE)
        );
        let data = m
            .secret("storage", "creds")
            .and_then(|s| s.data.clone())
            .expect("data");
        assert_eq!(data.get("token").map(|b| b.0.as_slice()), Some(&b"abc"[..]));
        assert_eq!(data.get("other").map(|b| b.0.as_slice()), Some(&b"xyz"[..]));
        assert!(!format!("{m:?}").contains("abc"));
    }

    #[test]
    fn a_document_that_is_not_an_object_names_its_file_and_position() {
        let mut m = Manifests::default();
        let err = parse_into("a: 1\n---\nkind: Lun\n", "x.yaml", &mut m).unwrap_err();
        assert!(err.to_string().starts_with("x.yaml: document 1:"), "{err}");
    }

    #[test]
    fn a_manifest_the_schema_refuses_is_kept_aside_with_the_apiservers_words() {
        // `thinProvisioning: "yes"` is a string; the Rust type could not
        // even read it, so the schema check must come first.
        let bad = "apiVersion: array-operator.io/v1alpha1\nkind: Lun\nmetadata: {name: a}\nspec: {arrayRef: {name: x}, size: 1Gi, thinProvisioning: \"yes\"}\n";
        let m = parse(bad).expect("parses");
        assert!(m.luns.is_empty());
        assert_eq!(m.object_count(), 1);
        assert_eq!(
            m.invalid,
            [InvalidObject {
                kind: "Lun".into(),
                namespace: DEFAULT_NAMESPACE.into(),
                name: "a".into(),
                array: "x".into(),
                failures: vec![
                    "spec.thinProvisioning: Invalid value: spec.thinProvisioning in body must be of type boolean".into()
                ],
            }]
        );
        // A valid object of the same name is still a second definition.
        let valid = "apiVersion: array-operator.io/v1alpha1\nkind: Lun\nmetadata: {name: a}\nspec: {arrayRef: {name: x}, size: 1Gi}\n";
        let err = parse(&format!("{bad}---\n{valid}")).unwrap_err();
        assert!(matches!(err, InputError::Duplicate { .. }), "{err}");
        let err = parse(&format!("{valid}---\n{bad}")).unwrap_err();
        assert!(matches!(err, InputError::Duplicate { .. }), "{err}");
        // And a manifest without a name is bad input, not a refusal.
        let err = parse(&bad.replace("{name: a}", "{}")).unwrap_err();
        assert!(
            err.to_string().contains("metadata.name is missing"),
            "{err}"
        );
    }

    #[test]
    fn the_same_object_twice_is_refused() {
        let lun = "apiVersion: array-operator.io/v1alpha1\nkind: Lun\nmetadata: {name: a}\nspec: {arrayRef: {name: x}, size: 1Gi}\n";
        let mut m = Manifests::default();
        parse_into(lun, "a.yaml", &mut m).expect("first");
        let err = parse_into(lun, "b.yaml", &mut m).unwrap_err();
        assert!(matches!(err, InputError::Duplicate { .. }), "{err}");
    }
}
