//! Reading YAML the way kubectl and Helm do: as YAML 1.1, through PyYAML.
//!
//! PyYAML follows YAML 1.1 except that it reads `y` and `n` as strings; Go's
//! yaml.v2 (under kubectl's and Helm's sigs.k8s.io/yaml) reads them as
//! booleans, so the loader here adds them. Timestamps and other non-JSON
//! values come back as `{"!!<type>": "<text>"}`, which never equals what the
//! Rust code meant by a string.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The loader: reads a JSON list of YAML texts on stdin and writes, for each
/// text, the list of its non-empty documents as JSON.
const LOADER: &str = r#"
import json, re, sys, yaml

class Loader(yaml.SafeLoader):
    pass

Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
Loader.bool_values = dict(yaml.SafeLoader.bool_values, y=True, n=False)

def other(o):
    return {"!!" + type(o).__name__: str(o)}

texts = json.load(sys.stdin)
out = [[d for d in yaml.load_all(t, Loader=Loader) if d is not None] for t in texts]
json.dump(out, sys.stdout, default=other)
"#;

/// Whether YAML 1.1 checks must run (CI) rather than skip.
pub fn required() -> bool {
    std::env::var("ARRAY_OPERATOR_REQUIRE_CONFORMANCE").is_ok_and(|v| v == "1")
}

/// The Python interpreter with PyYAML (`ARRAY_OPERATOR_PYTHON`), or `None`
/// with a note on stderr. Panics instead when the checks are `required`.
pub fn python() -> Option<String> {
    let Ok(python) = std::env::var("ARRAY_OPERATOR_PYTHON") else {
        assert!(
            !required(),
            "ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1 but ARRAY_OPERATOR_PYTHON is not set"
        );
        eprintln!(
            "note: ARRAY_OPERATOR_PYTHON is not set; skipping the YAML 1.1 (PyYAML) check. \
             Set it to .ci/.venv/bin/python after `bash scripts/install-tools.sh`."
        );
        return None;
    };
    let check = Command::new(&python)
        .args(["-c", "import yaml; print(yaml.__version__)"])
        .output();
    match check {
        Ok(out) if out.status.success() => Some(python),
        other => {
            assert!(
                !required(),
                "ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1 but {python} cannot import yaml (PyYAML): {other:?}"
            );
            eprintln!("note: {python} has no PyYAML; skipping the YAML 1.1 check");
            None
        }
    }
}

/// Parses every text with PyYAML as YAML 1.1; for each text, its non-empty
/// documents as JSON. One interpreter for all texts. Blocking: call it from
/// `spawn_blocking` in async code.
pub fn load_all(python: &str, texts: &[String]) -> Vec<Vec<Value>> {
    let mut child = Command::new(python)
        .args(["-c", LOADER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {python}: {e}"));
    let input = serde_json::to_vec(texts).expect("texts as JSON");
    // Written from a thread so a large input cannot deadlock against a full
    // stdout pipe.
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("PyYAML loader ran");
    writer
        .join()
        .expect("writer thread")
        .expect("write to PyYAML");
    assert!(
        out.status.success(),
        "PyYAML could not read the YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).expect("loader output");
    assert_eq!(docs.len(), texts.len());
    docs
}

/// The documents of one YAML file, read as YAML 1.1.
pub fn load_file(python: &str, path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    load_all(python, &[text]).remove(0)
}

/// Every `.yaml` file under `dir`, recursively, sorted.
pub fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The first path where `a` and `b` differ, or `None` when they are equal.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let at = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(v), Some(w)) => {
                        if let Some(d) = first_difference(v, w, &at) {
                            return Some(d);
                        }
                    }
                    (v, w) => return Some(format!("{at}: {v:?} vs {w:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        _ if numbers_equal(a, b) => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

/// JSON numbers compare by value (`64` and `64.0` are the same to the
/// apiserver).
fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
