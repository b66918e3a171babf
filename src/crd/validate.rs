//! The apiserver's check of a manifest against the CRD schema, in process:
//! the OpenAPI checks (types, patterns, enums, ranges, required fields),
//! then the CEL rules (`x-kubernetes-validations`) with the schema's
//! defaults applied, each failure worded as the apiserver words it in its
//! 422 answer. `array-operator plan` refuses a manifest this check fails,
//! so a plan never shows as planned what `kubectl apply` would reject; the
//! bad-input table's tests (tests/bad_input.rs) hold the wording to the
//! table, and tests/e2e.rs holds the table to a real apiserver.
//!
//! The schemas are the CRDs [`super::generate`] renders from the Rust
//! types, not the files under `crds/`, so the check cannot go stale
//! against the types.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

/// One kind's schema, and its OpenAPI validator compiled once (a plan
/// checks every object of its input) or why it does not compile.
struct Compiled {
    schema: Value,
    openapi: Result<jsonschema::Validator, String>,
}

/// Every kind's [`Compiled`] schema, rendered once.
fn compiled() -> &'static BTreeMap<String, Compiled> {
    static COMPILED: OnceLock<BTreeMap<String, Compiled>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        super::generate::all_crds()
            .into_iter()
            .filter_map(|(_, crd)| {
                let schema = crd
                    .spec
                    .versions
                    .first()?
                    .schema
                    .as_ref()?
                    .open_api_v3_schema
                    .as_ref()?;
                let schema = serde_json::to_value(schema).ok()?;
                let openapi = jsonschema::draft4::new(&schema).map_err(|e| e.to_string());
                Some((crd.spec.names.kind, Compiled { schema, openapi }))
            })
            .collect()
    })
}

/// The generated `openAPIV3Schema` of `kind` (`Lun`, `StorageArray`, ...),
/// or `None` when the kind is not one of the operator's.
pub fn schema(kind: &str) -> Option<&'static Value> {
    compiled().get(kind).map(|c| &c.schema)
}

/// `/spec/nics/0/mac` → `spec.nics[0].mac`, the apiserver's field path.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// A schema number as Go's `%v` prints it (`1`, not `1.0`).
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

/// A value as the apiserver quotes it in `Unsupported value: ...`.
fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// One OpenAPI failure, worded as apiextensions-apiserver words it
/// (`kubeOpenAPIResultToFieldErrors` over kube-openapi's messages), and
/// whether it stops the CEL rules from running (the apiserver skips them
/// after a type or enum failure).
fn openapi_failure(error: &jsonschema::ValidationError<'_>) -> (String, bool) {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    let path = field_path(error.instance_path().as_str());
    let text = match error.kind() {
        K::Pattern { pattern } => format!("{path} in body should match '{pattern}'"),
        K::Minimum { limit } => {
            format!(
                "{path} in body should be greater than or equal to {}",
                number(limit)
            )
        }
        K::Maximum { limit } => {
            format!(
                "{path} in body should be less than or equal to {}",
                number(limit)
            )
        }
        K::MinLength { limit } => format!("{path} in body should be at least {limit} chars long"),
        K::MinItems { limit } => format!("{path} in body should have at least {limit} items"),
        K::MaxLength { limit } => format!("Too long: may not be more than {limit} bytes"),
        K::MaxItems { limit } => format!("Too many: must have at most {limit} items"),
        K::Required { property } => {
            let property = property.as_str().unwrap_or_default();
            let path = if path.is_empty() {
                property.to_string()
            } else {
                format!("{path}.{property}")
            };
            return (format!("{path}: Required value"), false);
        }
        K::Enum { options } => {
            let supported: Vec<String> = options
                .as_array()
                // The apiserver lists every allowed value as a quoted
                // string (non-strings in their JSON form).
                .map(|o| {
                    o.iter()
                        .map(|v| match v {
                            Value::String(s) => format!("{s:?}"),
                            other => format!("{:?}", other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            return (
                format!(
                    "{path}: Unsupported value: {}: supported values: {}",
                    quoted(error.instance()),
                    supported.join(", ")
                ),
                true,
            );
        }
        K::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => format!("{set:?}"),
            };
            return (
                format!("{path}: Invalid value: {path} in body must be of type {expected}"),
                true,
            );
        }
        _ => error.to_string(),
    };
    (format!("{path}: Invalid value: {text}"), false)
}

/// Every failure the apiserver would report creating `object` (a manifest
/// of one of the operator's kinds, as JSON), as `field: message`: the
/// OpenAPI checks, then (unless a type or enum failure blocks them) the CEL
/// rules with the schema's defaults applied. Empty when the object is
/// accepted. A kind that is not the operator's is one failure on `kind`.
pub fn schema_failures(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some(Compiled { schema, openapi }) = compiled().get(kind) else {
        return vec![format!(
            "kind: Unsupported value: {kind:?}: not a kind of array-operator.io"
        )];
    };
    let validator = match openapi {
        Ok(v) => v,
        // The schemas are generated from the types and compiled by the
        // tests; should one not compile, say so rather than pass the
        // object unchecked.
        Err(e) => {
            return vec![format!(
                "<nil>: Internal error: the generated {kind} schema does not compile: {e}"
            )];
        }
    };
    let mut blocked = false;
    let mut failures: Vec<String> = validator
        .iter_errors(object)
        .map(|e| {
            let (text, blocks) = openapi_failure(&e);
            blocked |= blocks;
            text
        })
        .collect();
    // A CEL validator registers every Kubernetes function when built; it is
    // `Send` but not shared, so each thread keeps one.
    thread_local! {
        static CEL: kube_cel::Validator = kube_cel::Validator::new();
    }
    if !blocked && let Err(errors) = CEL.with(|cel| cel.validate(schema, object, None)) {
        failures.extend(errors.into_vec().into_iter().map(|e| {
            let path = if e.field_path.is_empty() {
                "<nil>".to_string()
            } else {
                e.field_path
            };
            format!("{path}: Invalid value: {}", e.message)
        }));
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_paths_are_the_apiservers() {
        assert_eq!(field_path("/spec/nics/0/mac"), "spec.nics[0].mac");
        assert_eq!(field_path(""), "");
    }

    #[test]
    fn every_kind_has_a_schema_and_a_valid_lun_passes() {
        for kind in [
            "StorageArray",
            "Lun",
            "IscsiTarget",
            "SnapshotSchedule",
            "ReplicationPlan",
            "VirtualMachine",
        ] {
            assert!(schema(kind).is_some(), "{kind}");
        }
        let lun = json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": {"name": "a"},
            "spec": {"arrayRef": {"name": "x"}, "size": "1Gi"},
        });
        assert_eq!(schema_failures(&lun), Vec::<String>::new());
    }

    #[test]
    fn a_type_failure_is_worded_as_the_apiserver_words_it() {
        let lun = json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": {"name": "a"},
            "spec": {"arrayRef": {"name": "x"}, "size": "1Gi", "thinProvisioning": "yes"},
        });
        assert_eq!(
            schema_failures(&lun),
            [
                "spec.thinProvisioning: Invalid value: spec.thinProvisioning in body must be of type boolean"
            ]
        );
    }

    #[test]
    fn a_kind_that_is_not_ours_is_one_failure() {
        let failures = schema_failures(&json!({"kind": "Pod"}));
        assert_eq!(failures.len(), 1);
        assert!(failures[0].starts_with("kind: Unsupported value: \"Pod\""));
    }
}
