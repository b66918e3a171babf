//! The reference pages keep up with the code: every field of every
//! generated CRD (spec and status) is in its `docs/kinds/<kind>.md` page,
//! every condition and Event reason the code defines is in
//! `docs/troubleshooting.md`, and every metric the registry exports is in
//! `docs/metrics.md`. A new field, reason or metric without docs fails here.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

/// Every property path under `schema`, as the pages write them:
/// `spec.disks[].size` (`[]` for an array's items).
fn property_paths(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            let at = format!("{path}.{name}");
            out.push(at.clone());
            property_paths(sub, &at, out);
        }
    }
    if schema["items"].is_object() {
        let at = format!("{path}[]");
        out.push(at.clone());
        property_paths(&schema["items"], &at, out);
    }
}

#[test]
fn every_crd_field_is_in_its_kind_page() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for crd in support::generated_crds() {
        let kind = crd["spec"]["names"]["kind"].as_str().expect("kind");
        let page_path = format!("docs/kinds/{}.md", kind.to_lowercase());
        let page = read(&page_path);
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut paths = Vec::new();
        for top in ["spec", "status"] {
            assert!(schema["properties"][top].is_object(), "{kind} has no {top}");
            property_paths(&schema["properties"][top], top, &mut paths);
        }
        assert!(paths.len() > 10, "{kind}: {} fields", paths.len());
        for path in paths {
            checked += 1;
            if !page.contains(&format!("`{path}`")) {
                missing.push(format!("{page_path}: `{path}`"));
            }
        }
    }
    println!("{checked} field paths checked");
    assert!(
        missing.is_empty(),
        "fields without docs:\n{}",
        missing.join("\n")
    );
}

/// The string constants of every `pub mod <name>` block in `source` whose
/// name ends in `reason` or `_event` (the modules that hold reasons).
fn reason_modules(source: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut module: Option<String> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(rest) = line.strip_prefix("pub mod ") {
            let name = rest.trim_end_matches('{').trim().to_string();
            if name.ends_with("reason") || name.ends_with("_event") {
                module = Some(name);
            }
            continue;
        }
        if line.starts_with('}') {
            module = None;
            continue;
        }
        if let Some(m) = &module
            && let Some(rest) = trimmed.strip_prefix("pub const ")
            && let Some((_, value)) = rest.split_once("&str = \"")
        {
            let value = value.trim_end_matches("\";").to_string();
            found.push((m.clone(), value));
        }
    }
    found
}

/// Reasons written as literals rather than module constants: the kstatus
/// `Reconciling`/`Stalled` words (`engine/conditions.rs`) and the
/// StorageArray `Stalled` reasons (`controller/arrays.rs`).
fn literal_reasons(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["ConditionState::yes(\"", "ConditionState::no(\"", "Some(\""] {
        for piece in source.split(marker).skip(1) {
            if let Some((word, _)) = piece.split_once('"')
                && word.chars().all(|c| c.is_ascii_alphanumeric())
                && word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            {
                found.push(word.to_string());
            }
        }
    }
    // A reason chosen by an `if` (`RetryingAfterError` or `Progressing`).
    for line in source.lines() {
        let t = line.trim();
        if t.starts_with('"') && t.ends_with('"') && t.len() > 2 {
            let word = &t[1..t.len() - 1];
            if word.chars().all(|c| c.is_ascii_alphanumeric())
                && word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            {
                found.push(word.to_string());
            }
        }
    }
    found
}

/// Only the code, without its `#[cfg(test)]` module (whose literals are
/// test data, not reasons).
fn without_tests(source: &str) -> &str {
    source.split("#[cfg(test)]").next().unwrap_or(source)
}

#[test]
fn every_reason_is_in_the_troubleshooting_page() {
    let page = read("docs/troubleshooting.md");
    let mut reasons: BTreeSet<(String, String)> = BTreeSet::new();
    for file in [
        "src/crd/shared.rs",
        "src/engine/mod.rs",
        "src/engine/replication_plan.rs",
        "src/engine/snapshot_schedule.rs",
        "src/controller/storage_array.rs",
    ] {
        for (module, value) in reason_modules(&read(file)) {
            reasons.insert((format!("{file} {module}"), value));
        }
    }
    for file in ["src/engine/conditions.rs", "src/controller/arrays.rs"] {
        for value in literal_reasons(without_tests(&read(file))) {
            reasons.insert((file.to_string(), value));
        }
    }
    // The modules this test reads are the ones that exist: a new module of
    // reasons elsewhere would escape it, so look for any.
    for entry in walk(&root().join("src")) {
        let text = std::fs::read_to_string(&entry).expect("source");
        for (module, _) in reason_modules(&text) {
            let relative = entry
                .strip_prefix(root())
                .expect("under the root")
                .display()
                .to_string();
            assert!(
                reasons
                    .iter()
                    .any(|(from, _)| from == &format!("{relative} {module}")),
                "{relative} defines reasons in `mod {module}`, which this test does not read"
            );
        }
    }
    assert!(reasons.len() > 40, "{} reasons found", reasons.len());
    let missing: Vec<String> = reasons
        .iter()
        .filter(|(_, value)| !page.contains(&format!("`{value}`")))
        .map(|(from, value)| format!("{value} ({from})"))
        .collect();
    println!("{} reasons checked", reasons.len());
    assert!(
        missing.is_empty(),
        "reasons without docs in docs/troubleshooting.md:\n{}",
        missing.join("\n")
    );
    for condition in [
        "Ready",
        "Synced",
        "Reconciling",
        "Stalled",
        "Synchronizing",
        "TLSVerified",
    ] {
        assert!(page.contains(&format!("`{condition}")), "{condition}");
    }
    // The escape hatches the page promises.
    for needle in [
        array_operator::crd::shared::FINALIZER,
        array_operator::crd::shared::ANNOTATION_CREATE_PENDING,
        array_operator::crd::shared::ANNOTATION_EXTERNAL_NAME,
        array_operator::crd::shared::ANNOTATION_PAUSED,
        array_operator::controller::holds::IN_USE_FINALIZER,
        array_operator::controller::holds::SECRET_FINALIZER,
    ] {
        assert!(page.contains(needle), "docs/troubleshooting.md: {needle}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn every_metric_is_in_the_metrics_page() {
    let page = read("docs/metrics.md");
    let m = array_operator::metrics::global();
    // One sample in each family, so each is in the exposition.
    m.reconciled("Lun", std::time::Duration::from_millis(1));
    m.reconcile_failed("Lun", "InvalidSpec");
    m.array_call("Synology", "list_luns", "ok");
    m.replication_synced("ns", "plan", 1.0);
    m.replication_missed("ns", "plan", 1);
    let text = m.render();
    let families: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect();
    assert!(families.len() >= 6, "{text}");
    for (name, kind) in &families {
        let row = page
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}")))
            .unwrap_or_else(|| panic!("docs/metrics.md has no row for {name}"));
        assert!(
            row.contains(&format!("| {kind} |")),
            "{name}: type {kind}: {row}"
        );
        // Every label the exposition shows is named in the row.
        for sample in text.lines().filter(|l| l.starts_with(name.as_str())) {
            if let Some((_, labels)) = sample.split_once('{') {
                for label in labels.split(',').filter_map(|p| p.split_once('=')) {
                    let label = label.0;
                    if label != "le" {
                        assert!(row.contains(&format!("`{label}`")), "{name}: label {label}");
                    }
                }
            }
        }
    }
}
