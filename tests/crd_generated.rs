//! The committed CRD files are what the code generates, and the generated
//! CRDs are what PRODUCT.md section 2 promises and a real apiserver accepts
//! (structural schemas).

mod support;

use std::path::Path;

use serde_json::Value;

const KINDS: [(&str, &str, &str); 6] = [
    ("StorageArray", "storagearrays", "sarr"),
    ("Lun", "luns", "lun"),
    ("IscsiTarget", "iscsitargets", "itgt"),
    ("SnapshotSchedule", "snapshotschedules", "snapsched"),
    ("ReplicationPlan", "replicationplans", "rplan"),
    ("VirtualMachine", "virtualmachines", "avm"),
];

#[test]
fn committed_crd_files_match_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = array_operator::crd::generate::crd_files().expect("render");
    let mut stale = Vec::new();
    for dir in ["crds", "charts/array-operator/files/crds"] {
        for (name, yaml) in &files {
            let path = root.join(dir).join(name);
            match std::fs::read_to_string(&path) {
                Ok(committed) if &committed == yaml => {}
                Ok(_) => stale.push(format!("{dir}/{name} differs")),
                Err(e) => stale.push(format!("{dir}/{name}: {e}")),
            }
        }
        let extra: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !files.iter().any(|(f, _)| f == n))
            .collect();
        for n in extra {
            stale.push(format!("{dir}/{n} is not generated"));
        }
    }
    assert!(
        stale.is_empty(),
        "generated CRDs are stale ({stale:?}); run `cargo run -- crds --dir crds --dir charts/array-operator/files/crds`"
    );
}

/// `plan` checks manifests against the schemas it renders in process
/// (`array_operator::crd::validate`); they are the ones the YAML files the
/// apiserver is given hold, read back.
#[test]
fn the_schemas_plan_checks_are_the_ones_the_crd_files_hold() {
    for (kind, _, _) in KINDS {
        assert_eq!(
            array_operator::crd::validate::schema(kind),
            Some(&support::schema(kind)),
            "{kind}"
        );
    }
}

#[test]
fn every_kind_has_its_names_category_scope_and_status_subresource() {
    let crds = support::generated_crds();
    assert_eq!(crds.len(), KINDS.len());
    for (kind, plural, short) in KINDS {
        let crd = support::crd(kind);
        assert_eq!(
            crd["metadata"]["name"],
            format!("{plural}.array-operator.io")
        );
        assert_eq!(crd["spec"]["group"], "array-operator.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let names = &crd["spec"]["names"];
        assert_eq!(names["plural"], plural);
        assert_eq!(names["shortNames"], serde_json::json!([short]), "{kind}");
        assert_eq!(
            names["categories"],
            serde_json::json!(["arrayop"]),
            "{kind}"
        );
        let versions = crd["spec"]["versions"].as_array().expect("versions");
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["name"], "v1alpha1");
        assert_eq!(versions[0]["served"], true);
        assert_eq!(versions[0]["storage"], true);
        assert_eq!(
            versions[0]["subresources"]["status"],
            serde_json::json!({}),
            "{kind}"
        );
    }
}

fn columns(kind: &str) -> Vec<(String, String)> {
    support::crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["jsonPath"].as_str().expect("jsonPath").to_string(),
            )
        })
        .collect()
}

#[test]
fn printer_columns_are_the_products() {
    let expected: [(&str, &[&str]); 6] = [
        (
            "StorageArray",
            &["VENDOR", "ENDPOINT", "READY", "VERSION", "AGE"],
        ),
        (
            "Lun",
            &[
                "ARRAY",
                "SIZE",
                "TYPE",
                "READY",
                "SYNCED",
                "EXTERNAL-ID",
                "AGE",
            ],
        ),
        (
            "IscsiTarget",
            &["ARRAY", "IQN", "LUNS", "SESSIONS", "READY", "AGE"],
        ),
        (
            "SnapshotSchedule",
            &[
                "SCHEDULE",
                "LUNS",
                "LAST",
                "NEXT",
                "SUSPENDED",
                "READY",
                "AGE",
            ],
        ),
        (
            "ReplicationPlan",
            &[
                "PLAN",
                "ROLE",
                "LAST-SYNC",
                "RESULT",
                "NEXT",
                "READY",
                "AGE",
            ],
        ),
        (
            "VirtualMachine",
            &["ARRAY", "STATUS", "CPUS", "MEMORY", "HOST", "READY", "AGE"],
        ),
    ];
    for (kind, names) in expected {
        let cols = columns(kind);
        let got: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, names, "{kind}");
        // Every column points at a field the schema has, so kubectl never
        // shows a column that can only be empty.
        let schema = support::schema(kind);
        for (name, path) in &cols {
            if path.starts_with(".metadata") {
                continue;
            }
            // Drop `[...]` filters (which contain dots of their own) first.
            let mut plain = String::new();
            let mut depth = 0;
            for c in path.chars() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ if depth == 0 => plain.push(c),
                    _ => {}
                }
            }
            let field_path: Vec<&str> = plain.trim_start_matches('.').split('.').collect();
            let mut node = &schema;
            for part in field_path {
                node = &node["properties"][part];
                if node.get("items").is_some() {
                    node = &node["items"];
                }
            }
            assert!(
                node.is_object(),
                "{kind} column {name} ({path}) has no schema"
            );
        }
    }
}

/// Walks every node of a schema, calling `f` with its JSON path.
fn walk(node: &Value, path: &str, f: &mut dyn FnMut(&str, &Value)) {
    f(path, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            walk(v, &format!("{path}.{k}"), f);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), f);
    }
    if let Some(ap) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(ap, &format!("{path}{{}}"), f);
    }
}

#[test]
fn schemas_are_structural() {
    // The apiserver's structural-schema rules: every node has a type (or is
    // int-or-string / preserve-unknown), no $ref, no type inside logical
    // junctors, arrays have items, objects are not both properties and
    // additionalProperties, and metadata is only restricted in name.
    for (kind, _, _) in KINDS {
        let schema = support::schema(kind);
        let mut problems = Vec::new();
        walk(&schema, kind, &mut |path, node| {
            let obj = node.as_object().expect("schema node is an object");
            let typed = obj.contains_key("type")
                || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
                || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            if !typed {
                problems.push(format!("{path}: no type"));
            }
            if obj.contains_key("$ref")
                || obj.contains_key("definitions")
                || obj.contains_key("$defs")
            {
                problems.push(format!("{path}: $ref/definitions"));
            }
            for junctor in ["anyOf", "oneOf", "allOf", "not"] {
                if let Some(j) = obj.get(junctor) {
                    let s = j.to_string();
                    if s.contains("\"type\"")
                        || s.contains("\"description\"")
                        || s.contains("\"default\"")
                    {
                        problems.push(format!(
                            "{path}: {junctor} carries type/description/default"
                        ));
                    }
                }
            }
            if obj.get("type") == Some(&Value::String("array".into())) && !obj.contains_key("items")
            {
                problems.push(format!("{path}: array without items"));
            }
            if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
                problems.push(format!("{path}: both properties and additionalProperties"));
            }
        });
        let metadata = &schema["properties"]["metadata"];
        if !metadata.is_null() {
            let keys: Vec<&String> = metadata.as_object().expect("obj").keys().collect();
            assert!(
                keys.iter().all(|k| *k == "type"),
                "{kind}: metadata is restricted: {keys:?}"
            );
        }
        assert!(problems.is_empty(), "{kind}: {problems:#?}");
    }
}

#[test]
fn every_spec_field_is_documented_for_kubectl_explain() {
    for (kind, _, _) in KINDS {
        let schema = support::schema(kind);
        let mut missing = Vec::new();
        for top in ["spec", "status"] {
            walk(
                &schema["properties"][top],
                &format!("{kind}.{top}"),
                &mut |path, node| {
                    let is_item = path.ends_with("[]") || path.ends_with("{}");
                    if !is_item
                        && node
                            .get("description")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                    {
                        missing.push(path.to_string());
                    }
                },
            );
        }
        assert!(
            missing.is_empty(),
            "{kind}: fields without a description: {missing:#?}"
        );
    }
}

#[test]
fn cel_rules_fit_the_apiserver_cost_budget_inputs() {
    // The apiserver estimates CEL cost from maxLength/maxItems; a string a
    // rule runs a regex or comparison on without a bound can be refused at
    // CRD creation. Every string the spec has is bounded.
    for (kind, _, _) in KINDS {
        let schema = support::schema(kind);
        let mut unbounded = Vec::new();
        walk(
            &schema["properties"]["spec"],
            &format!("{kind}.spec"),
            &mut |path, node| {
                let is_string = node.get("type") == Some(&Value::String("string".into()));
                let bounded = node.get("maxLength").is_some() || node.get("enum").is_some();
                let in_label_selector = path.contains("lunSelector");
                if is_string && !bounded && !in_label_selector {
                    unbounded.push(path.to_string());
                }
            },
        );
        assert!(
            unbounded.is_empty(),
            "{kind}: strings without maxLength: {unbounded:#?}"
        );
    }
}
