//! Test helpers: the generated CRD schemas, and checks of objects against
//! them the way an apiserver checks (OpenAPI structure, then CEL rules with
//! defaults applied).

#![allow(dead_code)]

use serde_json::Value;

pub mod bad_input;
pub mod chart;
pub mod e2e;
pub mod yaml11;

/// Every generated CRD, parsed back from the YAML `array-operator crds` prints.
pub fn generated_crds() -> Vec<Value> {
    let yaml = array_operator::crd::generate::all_crds_yaml().expect("render CRDs");
    yaml_documents(&yaml)
}

/// Parses a multi-document YAML string into JSON values, skipping empty ones.
pub fn yaml_documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The generated CRD of `kind`.
pub fn crd(kind: &str) -> Value {
    generated_crds()
        .into_iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"))
}

/// The openAPIV3Schema of `kind`.
pub fn schema(kind: &str) -> Value {
    crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Validates `object` as the apiserver would on create: structure first,
/// then CEL rules. Returns every failure as `path: message`.
pub fn check_create(kind: &str, object: &Value) -> Result<(), Vec<String>> {
    check(kind, object, None)
}

/// Validates an update from `old` to `new`, transition rules included.
pub fn check_update(kind: &str, old: &Value, new: &Value) -> Result<(), Vec<String>> {
    check(kind, new, Some(old))
}

fn check(kind: &str, object: &Value, old: Option<&Value>) -> Result<(), Vec<String>> {
    let schema = schema(kind);
    let mut failures = structural_failures(&schema, object);
    if failures.is_empty()
        && let Err(errors) = kube_cel::Validator::new().validate(&schema, object, old)
    {
        failures.extend(
            errors
                .into_vec()
                .into_iter()
                .map(|e| format!("{}: {}", e.field_path, e.message)),
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// OpenAPI checks (types, patterns, enums, ranges, required) only.
pub fn structural_failures(schema: &Value, object: &Value) -> Vec<String> {
    let validator = jsonschema::draft4::new(schema).expect("schema compiles");
    validator
        .iter_errors(object)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect()
}

/// Asserts `result` failed and one failure mentions every needle.
pub fn assert_refused(result: Result<(), Vec<String>>, needles: &[&str]) {
    match result {
        Ok(()) => panic!("expected a refusal mentioning {needles:?}, but it was accepted"),
        Err(failures) => assert!(
            failures
                .iter()
                .any(|f| needles.iter().all(|n| f.contains(n))),
            "no failure mentions {needles:?}: {failures:#?}"
        ),
    }
}

/// Asserts `result` passed, printing every failure otherwise.
pub fn assert_accepted(result: Result<(), Vec<String>>) {
    if let Err(failures) = result {
        panic!("expected acceptance, got {failures:#?}");
    }
}
