//! Every generated and shipped YAML file means to a YAML 1.1 reader (kubectl,
//! Helm; here PyYAML, with `y`/`n` as booleans like Go's yaml.v2) what the
//! Rust code meant: the CRD files are the serde_json form of
//! `all_crds()`, and the examples and the rendered chart read the same in
//! YAML 1.1 as in YAML 1.2 (serde_yaml).
//!
//! Needs `ARRAY_OPERATOR_PYTHON` (an interpreter with PyYAML; `bash
//! scripts/install-tools.sh` puts one in .ci/.venv) and, for the chart,
//! `.ci/tools/helm`. Without them the tests print a note and pass, unless
//! `ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1` (CI, scripts/test.sh), where they
//! fail.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::yaml11::{self, first_difference};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every word a YAML 1.1 reader takes for a boolean or null, as the YAML 1.1
/// type repository lists them (written out here rather than taken from the
/// code under test).
const YAML11_BOOL_OR_NULL: [&str; 26] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
];

/// Calls `f` with every `enum` list and `default` value in `schema`, with
/// its JSON path.
fn walk_schema(schema: &Value, path: &str, f: &mut dyn FnMut(&str, &str, &Value)) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                let at = format!("{path}/{key}");
                if key == "enum" || key == "default" {
                    f(key, &at, value);
                }
                walk_schema(value, &at, f);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_schema(item, &format!("{path}/{i}"), f);
            }
        }
        _ => {}
    }
}

#[test]
fn no_enum_value_of_any_crd_is_a_yaml11_boolean_or_null_word() {
    let mut offenders = Vec::new();
    let mut enums = 0;
    for (stem, crd) in array_operator::crd::generate::all_crds() {
        let crd = serde_json::to_value(&crd).expect("CRD as JSON");
        walk_schema(&crd["spec"]["versions"], stem, &mut |key, at, value| {
            let words: Vec<&Value> = match (key, value) {
                ("enum", Value::Array(items)) => {
                    enums += 1;
                    items.iter().collect()
                }
                ("default", v) => vec![v],
                _ => Vec::new(),
            };
            for word in words.into_iter().filter_map(Value::as_str) {
                if YAML11_BOOL_OR_NULL.contains(&word) {
                    offenders.push(format!("{at}: {word}"));
                }
            }
        });
    }
    // The walk saw the schemas' enums (managementPolicy, autorun, ...).
    assert!(enums >= 6, "found only {enums} enum lists");
    assert!(
        offenders.is_empty(),
        "enum values or defaults a YAML 1.1 reader takes for a boolean or null: {offenders:?}"
    );
}

#[test]
fn the_vm_autorun_values_are_never_last_state_and_always() {
    let crd = support::crd("VirtualMachine");
    let autorun = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["autorun"];
    assert_eq!(autorun["enum"], json!(["Never", "LastState", "Always"]));
    assert_eq!(autorun["default"], "Never");
}

#[test]
fn generated_crd_files_mean_to_a_yaml11_reader_what_the_code_meant() {
    let Some(python) = yaml11::python() else {
        return;
    };
    let meant: Vec<(String, Value)> = array_operator::crd::generate::all_crds()
        .into_iter()
        .map(|(stem, crd)| {
            (
                format!("{stem}.yaml"),
                serde_json::to_value(&crd).expect("CRD as JSON"),
            )
        })
        .collect();
    let mut files: Vec<(PathBuf, Value)> = Vec::new();
    for dir in ["crds", "charts/array-operator/files/crds"] {
        for (name, value) in &meant {
            files.push((root().join(dir).join(name), value.clone()));
        }
    }
    // What `array-operator crds` prints is held to the same rule.
    let printed = array_operator::crd::generate::all_crds_yaml().expect("render CRDs");
    let texts: Vec<String> = files
        .iter()
        .map(|(path, _)| {
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        })
        .chain([printed])
        .collect();
    let read = yaml11::load_all(&python, &texts);
    let mut wrong = Vec::new();
    for ((path, value), docs) in files.iter().zip(&read) {
        match docs.as_slice() {
            [doc] => {
                if let Some(d) = first_difference(value, doc, "") {
                    wrong.push(format!("{}: {d}", path.display()));
                }
            }
            other => wrong.push(format!(
                "{}: {} documents, want 1",
                path.display(),
                other.len()
            )),
        }
    }
    let printed_docs = read.last().expect("printed CRDs");
    assert_eq!(printed_docs.len(), meant.len(), "`crds` output documents");
    for ((name, value), doc) in meant.iter().zip(printed_docs) {
        if let Some(d) = first_difference(value, doc, "") {
            wrong.push(format!("`array-operator crds` ({name}): {d}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "a YAML 1.1 reader (kubectl, Helm) reads the CRDs differently from what the code \
         generated (regenerate with `cargo run -- crds --dir crds --dir charts/array-operator/files/crds` \
         if the files are stale):\n{}",
        wrong.join("\n")
    );
}

/// Compares the YAML 1.1 and YAML 1.2 readings of `texts` (named by
/// `names`), and returns every difference.
fn yaml11_vs_yaml12(python: &str, names: &[String], texts: &[String]) -> Vec<String> {
    let read = yaml11::load_all(python, texts);
    let mut wrong = Vec::new();
    for ((name, text), docs11) in names.iter().zip(texts).zip(read) {
        let docs12 = support::yaml_documents(text);
        if docs11.len() != docs12.len() {
            wrong.push(format!(
                "{name}: {} documents in YAML 1.1, {} in YAML 1.2",
                docs11.len(),
                docs12.len()
            ));
            continue;
        }
        for (i, (a, b)) in docs12.iter().zip(&docs11).enumerate() {
            if let Some(d) = first_difference(a, b, "") {
                wrong.push(format!("{name} document {i}: YAML 1.2 vs YAML 1.1 at {d}"));
            }
        }
    }
    wrong
}

#[test]
fn every_example_and_the_chart_values_mean_the_same_in_yaml11_and_yaml12() {
    let Some(python) = yaml11::python() else {
        return;
    };
    let mut files = yaml11::yaml_files(&root().join("examples"));
    assert!(files.len() >= 10, "examples found: {files:?}");
    // Users copy and override these too; Helm reads them as YAML 1.1.
    files.push(root().join("charts/array-operator/values.yaml"));
    files.push(root().join("charts/array-operator/Chart.yaml"));
    files.push(root().join("charts/array-operator/ci/full-values.yaml"));
    // kubectl applies this one to Argo CD's ConfigMap.
    files.push(root().join("charts/array-operator/argocd/argocd-cm-patch.yaml"));
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read example"))
        .collect();
    let wrong = yaml11_vs_yaml12(&python, &names, &texts);
    assert!(
        wrong.is_empty(),
        "examples or chart files kubectl and Helm read differently (quote the value):\n{}",
        wrong.join("\n")
    );
}

/// The helm binary: `.ci/tools/helm` (scripts/install-tools.sh), else
/// `ARRAY_OPERATOR_HELM`.
fn helm() -> Option<PathBuf> {
    let local = root().join(".ci/tools/helm");
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("ARRAY_OPERATOR_HELM").map(PathBuf::from)
}

#[test]
fn the_rendered_chart_means_the_same_in_yaml11_and_yaml12() {
    let Some(python) = yaml11::python() else {
        return;
    };
    let Some(helm) = helm() else {
        assert!(
            !yaml11::required(),
            "ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1 but there is no .ci/tools/helm (run `bash scripts/install-tools.sh`)"
        );
        eprintln!(
            "note: no helm (.ci/tools/helm or ARRAY_OPERATOR_HELM); skipping the rendered-chart YAML 1.1 check"
        );
        return;
    };
    let mut names = Vec::new();
    let mut texts = Vec::new();
    for (name, extra) in [
        ("default values", &[][..]),
        (
            "watchNamespace set",
            &["--set", "watchNamespace=array-operator"][..],
        ),
        (
            "every option on (ci/full-values.yaml)",
            &["-f", "charts/array-operator/ci/full-values.yaml"][..],
        ),
    ] {
        let out = Command::new(&helm)
            .args([
                "template",
                "array-operator",
                "charts/array-operator",
                "--namespace",
                "array-operator",
                "--include-crds",
                // The chart's kubeVersion floor; helm's built-in default
                // is older.
                "--kube-version",
                "1.33.0",
            ])
            .args(extra)
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", helm.display()));
        assert!(
            out.status.success(),
            "helm template ({name}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        names.push(format!("helm template ({name})"));
        texts.push(String::from_utf8(out.stdout).expect("helm prints UTF-8"));
    }
    // The render holds the chart's CRDs and its templates.
    assert!(texts[0].contains("kind: CustomResourceDefinition"));
    assert!(texts[0].contains("kind: Deployment"));
    let wrong = yaml11_vs_yaml12(&python, &names, &texts);
    assert!(
        wrong.is_empty(),
        "the rendered chart reads differently to a YAML 1.1 reader:\n{}",
        wrong.join("\n")
    );
}

/// A random string made of the characters and words YAML readers disagree
/// about.
fn tricky_string(rng: &mut rand::rngs::StdRng) -> String {
    const PIECES: [&str; 24] = [
        "Off",
        "on",
        "y",
        "N",
        "yes",
        "~",
        "null",
        "1_000",
        "12:30",
        "0x1F",
        "017",
        "2001-12-14",
        ".inf",
        "=",
        "<<",
        "1e3",
        "a",
        "Z",
        " ",
        ": ",
        " #",
        "\n",
        "'",
        "\"",
    ];
    const CHARS: &[u8] = b"aZ09 -:#'\"\\\t./_|>@`";
    let mut s = String::new();
    for _ in 0..rng.random_range(0..4) {
        if rng.random_bool(0.6) {
            s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        } else {
            s.push(CHARS[rng.random_range(0..CHARS.len())] as char);
        }
    }
    s
}

fn tricky_value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-100_000i64..100_000)),
        3 => json!(f64::from(rng.random_range(-1000i32..1000)) / 8.0 * 1e18),
        4 => json!(tricky_string(rng)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| tricky_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| (tricky_string(rng), tricky_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

#[test]
fn the_crd_emitter_writes_yaml_a_yaml11_reader_reads_back_exactly() {
    let Some(python) = yaml11::python() else {
        return;
    };
    let seed = std::env::var("ARRAY_OPERATOR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("seed {seed} (set ARRAY_OPERATOR_SEED={seed} to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let values: Vec<Value> = (0..400)
        .map(|_| {
            json!({
                "a": tricky_value(&mut rng, 3),
                "b": [tricky_string(&mut rng), tricky_value(&mut rng, 2)],
            })
        })
        .collect();
    // Fixed cases next to the random ones: blanks and tabs around line
    // breaks, trailing breaks, and what YAML 1.1 alone treats as a break.
    let mut values = values;
    values.extend(
        [
            "a\n\tb",
            "a\n  \n b",
            "x \ny",
            "a\n\n\nb",
            "\ta\nb",
            "a\nb\n",
            "a\nb\n\n",
            "\n",
            "a\u{85}b",
            "a\u{2028}b",
            "# not a comment",
            "a #b",
            "key: value",
            "- item",
            "@at",
            "`tick",
            "|pipe",
            ">fold",
            "%pct",
            "!tag",
            "&anchor",
            "*alias",
            "{a: 1}",
            "[1]",
            "?q",
            "0o17",
            "0b101",
            "+1",
            "-.5",
            ".5",
            "1.",
            "190:20:30",
            "2001-12-14t21:59:43.10-05:00",
        ]
        .map(|s| {
            let mut m = serde_json::Map::new();
            m.insert(s.to_string(), json!(s));
            m.insert("list".to_string(), json!([s]));
            Value::Object(m)
        }),
    );
    let texts: Vec<String> = values
        .iter()
        .map(array_operator::crd::yaml11::to_string)
        .collect();
    let read = yaml11::load_all(&python, &texts);
    for ((value, text), docs) in values.iter().zip(&texts).zip(&read) {
        assert_eq!(docs.len(), 1, "seed {seed}: {text}");
        if let Some(d) = first_difference(value, &docs[0], "") {
            panic!("seed {seed}: YAML 1.1 reads back a different value at {d}:\n{text}");
        }
    }
}
